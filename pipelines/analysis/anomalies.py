"""Cost anomalies on the daily rollups: robust, day-of-week aware, with a minimum effect size and a likely cause.

For every series (per model, per model and technique, per device type) and metric, a day is compared with the
trailing ``window_days`` before it: the expected value is the median of the same weekday when at least 2 such days
exist, else of the same kind of day (weekday or weekend), else of all of them; the spread is the MAD (x 1.4826, floored at 5 % of the expected value so that a
very steady series does not flag noise). A day is an anomaly when |observed - expected| / spread >= ``threshold``
and the change is at least the metric's minimum effect. The likely cause is read from the same day's signals
against their own trailing medians: a telemetry gap, a price spike, slower decoding (throttling), a utilization
change, a volume change.

Pure pandas and numpy; imports no Dagster.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

from pipelines.warehouse.tables import create_tables

# metric -> (minimum effect, relative?) : a 15 % change, or 5 points of idle share
METRICS = {
    "cost_per_1m_output_tokens_usd": (0.15, True),
    "energy_cost_per_1m_output_tokens_usd": (0.5, True),
    "j_per_output_token": (0.15, True),
    "idle_share": (0.05, False),
    "fully_loaded_cost_usd": (0.25, True),
}
SERIES = {
    "model": ("agg_daily_model_cost", "model"),
    "technique": ("agg_daily_technique_cost", "model || ' / ' || technique"),
    "device_type": ("agg_daily_device_type_cost", "device_type"),
}
SIGNALS = ("caveat_share", "effective_price_usd_per_mwh", "s_per_output_token", "utilization", "requests")


@dataclass(frozen=True)
class Settings:
    window_days: int = 28
    min_history: int = 5
    threshold: float = 4.0


def load_series(con: duckdb.DuckDBPyConnection, first: date | None = None, last: date | None = None) -> pd.DataFrame:
    """The daily series of the rollups, on the days from ``first`` to ``last`` (every day when not given)."""
    where = "" if first is None else f"WHERE request_date BETWEEN DATE '{first}' AND DATE '{last}'"
    parts = []
    for dimension, (table, key) in SERIES.items():
        parts.append(f"""
            SELECT '{dimension}' AS dimension, {key} AS series_key, request_date AS day,
                   {", ".join(METRICS)},
                   requests_with_caveat / requests AS caveat_share, effective_price_usd_per_mwh,
                   s_per_output_token, utilization, requests
            FROM {table} {where}""")
    return con.sql(" UNION ALL ".join(parts)).df()


def _baseline(history: pd.DataFrame, day: pd.Timestamp, column: str) -> tuple[float, float]:
    """Median and MAD of the same weekday (>= 2 days), else of the same kind of day (weekday or weekend, >= 2
    days), else of all days in the history."""
    values = history[column].dropna()
    weekdays = history.loc[values.index, "day"].dt.day_of_week
    same_day = values[weekdays == day.day_of_week]
    same_kind = values[(weekdays >= 5) == (day.day_of_week >= 5)]
    values = same_day if len(same_day) >= 2 else same_kind if len(same_kind) >= 2 else values
    if values.empty:
        return float("nan"), float("nan")
    median = float(values.median())
    mad = float((values - median).abs().median()) * 1.4826
    return median, mad


# which signals can explain a metric, in the order they are tried
_CAUSES = {
    "energy_cost_per_1m_output_tokens_usd": ("gap", "price", "slowdown", "utilization", "volume"),
    "cost_per_1m_output_tokens_usd": ("gap", "price", "slowdown", "utilization", "volume"),
    "fully_loaded_cost_usd": ("gap", "price", "volume", "slowdown", "utilization"),
    "j_per_output_token": ("gap", "slowdown", "utilization", "volume"),
    "idle_share": ("gap", "utilization", "volume", "slowdown"),
}


def _likely_cause(row: pd.Series, history: pd.DataFrame, day: pd.Timestamp, metric: str) -> str:
    def change(col):
        expected, _ = _baseline(history, day, col)
        observed = row[col]
        if not np.isfinite(expected) or pd.isna(observed) or expected == 0:
            return 0.0
        return (observed - expected) / abs(expected)

    for cause in _CAUSES[metric]:
        if cause == "gap" and row["caveat_share"] > 0.01 and _baseline(history, day, "caveat_share")[0] <= 0.001:
            return "telemetry gap"
        if cause == "price" and change("effective_price_usd_per_mwh") >= 0.3:
            return "price spike"
        if cause == "slowdown" and change("s_per_output_token") >= 0.25:
            return "slower decoding (throttling?)"
        if cause == "utilization" and abs(change("utilization")) >= 0.2:
            return "utilization drop" if change("utilization") < 0 else "utilization rise"
        if cause == "volume" and abs(change("requests")) >= 0.3:
            return "volume change"
    return "unexplained"


def detect(series: pd.DataFrame, days: list[date] | None = None, settings: Settings = Settings()) -> pd.DataFrame:
    """Anomalies on ``days`` (all days when None) of the daily series."""
    series = series.copy()
    series["day"] = pd.to_datetime(series["day"])
    wanted = None if days is None else {pd.Timestamp(d) for d in days}
    found = []
    for (dimension, key), s in series.groupby(["dimension", "series_key"], sort=True):
        s = s.sort_values("day")
        for _, row in s.iterrows():
            day = row["day"]
            if wanted is not None and day not in wanted:
                continue
            history = s[(s["day"] < day) & (s["day"] >= day - pd.Timedelta(days=settings.window_days))]
            if len(history) < settings.min_history:
                continue
            for metric, (min_effect, relative) in METRICS.items():
                observed = row[metric]
                expected, mad = _baseline(history, day, metric)
                if pd.isna(observed) or not np.isfinite(expected):
                    continue
                spread = max(mad, 0.05 * abs(expected), 1e-12)
                score = (observed - expected) / spread
                effect = (observed - expected) / abs(expected) if expected else float("inf")
                big_enough = abs(effect) >= min_effect if relative else abs(observed - expected) >= min_effect
                if abs(score) >= settings.threshold and big_enough:
                    found.append(
                        {
                            "anomaly_id": hashlib.sha1(f"{day.date()}|{dimension}|{key}|{metric}".encode()).hexdigest()[
                                :16
                            ],
                            "day": day.date(),
                            "dimension": dimension,
                            "series_key": key,
                            "metric": metric,
                            "expected": expected,
                            "observed": float(observed),
                            "score": float(score),
                            "effect_pct": 100 * effect,
                            "likely_cause": _likely_cause(row, history, day, metric),
                        }
                    )
    columns = [
        "anomaly_id",
        "day",
        "dimension",
        "series_key",
        "metric",
        "expected",
        "observed",
        "score",
        "effect_pct",
        "likely_cause",
    ]
    return pd.DataFrame(found, columns=columns)


def detect_and_store(con: duckdb.DuckDBPyConnection, days: list[date], settings: Settings = Settings()) -> pd.DataFrame:
    """Score ``days``, and the loaded days up to ``window_days`` after them (their trailing history holds ``days``,
    so a re-run of a past day scores them again), against the history in the rollups; replace those days' rows of
    cost_anomalies. Reads only the rollups' rows of that window."""
    create_tables(con, "cost_anomalies")
    window = timedelta(days=settings.window_days)
    series = load_series(con, min(days) - window, max(days) + window)
    later = {d.date() for d in pd.to_datetime(series["day"]) if d.date() > max(days)}
    scored = sorted(set(days) | later)
    found = detect(series, scored, settings)
    con.execute(f"DELETE FROM cost_anomalies WHERE day IN ({', '.join('?' for _ in scored)})", scored)
    if len(found):
        con.register("_found", found)
        con.execute("INSERT INTO cost_anomalies SELECT *, now() FROM _found")
        con.unregister("_found")
    return found
