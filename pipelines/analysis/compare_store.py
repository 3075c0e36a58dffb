"""The technique comparison of a period of the warehouse (the last ``window_days`` days, a report's period),
computed where the requests are.

Each side's counts, sums and latency quantiles are aggregates in DuckDB, over the window's requests and nothing
else; only the sides small enough for the Poisson bootstrap (compare.EXACT_BOOTSTRAP_MAX requests) come to Python,
in request_id order. A fleet's window holds tens of millions of requests: sorting them all by request_id and
turning them into a DataFrame cost 30 s a run on 10 days of a 64-accelerator fleet.

Sums are exact and so independent of the order DuckDB adds them in: costs are summed as DECIMAL(38, 20) (a cost is
kept to 1e-20 USD), squared costs as DECIMAL(38, 18), tokens as integers. A cost too large for them (above about
1e8 USD a request) or not a number (NaN) stops the comparison with DuckDB's conversion error, where a float sum
would have carried it into the result unremarked.

Imports no Dagster.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

from pipelines.analysis.compare import EXACT_BOOTSTRAP_MAX, QUANTILES, Side, compare_sides
from pipelines.settings import DEFAULT_COMPARISON_DAYS
from pipelines.warehouse.tables import create_tables


def _window_sql(first_day: date, last_day: date) -> str:
    return f"""
        SELECT request_id, family, model, technique, baseline_model, fully_loaded_cost_usd AS cost_usd,
            completion_tokens AS tokens, time_to_first_token_s, duration_s,
            fully_loaded_cost_usd IS NOT NULL
                AND NOT coalesce(inventory_missing OR device_before_in_service OR served_from_cache, false) AS usable
        FROM fct_request_cost WHERE request_date BETWEEN DATE '{first_day}' AND DATE '{last_day}'"""


def _side_stats_sql(window: str) -> str:
    quantiles = ", ".join(
        f"quantile_cont({column}, {p / 100}) FILTER (usable) AS {name}" for name, (column, p) in QUANTILES.items()
    )
    return f"""
        WITH window_requests AS ({window})
        SELECT model, technique,
            arg_min(family, request_id) AS family, arg_min(baseline_model, request_id) AS baseline_model,
            count(*) FILTER (usable) AS requests, count(*) FILTER (NOT usable) AS excluded,
            sum(cost_usd::DECIMAL(38, 20)) FILTER (usable)::DOUBLE AS cost_usd,
            sum(tokens::HUGEINT) FILTER (usable)::DOUBLE AS tokens,
            sum((cost_usd * cost_usd)::DECIMAL(38, 18)) FILTER (usable)::DOUBLE AS cost_sq,
            sum(cost_usd::DECIMAL(38, 20) * tokens) FILTER (usable)::DOUBLE AS cost_tokens,
            sum(tokens::HUGEINT * tokens) FILTER (usable)::DOUBLE AS tokens_sq,
            {quantiles}
        FROM window_requests GROUP BY model, technique"""


def _small_side_values(con, window: str, small: list[tuple]) -> dict[tuple, tuple[np.ndarray, np.ndarray]]:
    """The usable requests' costs and tokens of the small sides, in request_id order."""
    if not small:
        return {}
    con.register("_small_sides", pd.DataFrame(small, columns=["model", "technique"]))
    try:
        table = con.sql(f"""
            WITH window_requests AS ({window})
            SELECT r.model, r.technique, r.cost_usd, r.tokens FROM window_requests r
            SEMI JOIN _small_sides s ON s.model = r.model AND s.technique = r.technique
            WHERE r.usable ORDER BY r.request_id""").df()
    finally:
        con.unregister("_small_sides")
    return {
        key: (g["cost_usd"].to_numpy(float), g["tokens"].to_numpy(float))
        for key, g in table.groupby(["model", "technique"], sort=False)
    }


def period_sides(con: duckdb.DuckDBPyConnection, first_day: date, last_day: date) -> dict[tuple, Side]:
    """Each (model, technique)'s side of the comparison over the requests of [first_day, last_day]."""
    window = _window_sql(first_day, last_day)
    stats = con.sql(_side_stats_sql(window)).df()
    small = [(r.model, r.technique) for r in stats.itertuples() if 0 < r.requests <= EXACT_BOOTSTRAP_MAX]
    values = _small_side_values(con, window, small)
    sides = {}
    for r in stats.to_dict("records"):
        key = (r["model"], r["technique"])
        side_values = values.get(key)
        sides[key] = Side(
            family=r["family"],
            baseline_model=r["baseline_model"],
            requests=int(r["requests"]),
            excluded=int(r["excluded"]),
            # a small side's sums are numpy's over its values, as compare() on a frame gives
            cost_usd=side_values[0].sum() if side_values else float(r["cost_usd"] or 0.0),
            tokens=side_values[1].sum() if side_values else float(r["tokens"] or 0.0),
            moments=(float(r["cost_sq"] or 0), float(r["cost_tokens"] or 0), float(r["tokens_sq"] or 0)),
            quantiles={name: _float(r[name]) for name in QUANTILES},
            values=side_values,
        )
    return sides


def _float(value) -> float:
    return float("nan") if value is None or pd.isna(value) else float(value)


def compare_and_store(
    con: duckdb.DuckDBPyConnection, *, n_boot: int = 1000, seed: int = 0, window_days: int = DEFAULT_COMPARISON_DAYS
) -> pd.DataFrame:
    """Compare the requests of the ``window_days`` days up to the last loaded day (INFERCOST_COMPARISON_DAYS, as
    technique_savings) and replace technique_comparison."""
    last_day = con.sql("SELECT max(request_date) FROM agg_daily_technique_cost").fetchall()[0][0] or date(1900, 1, 1)
    first_day = last_day - timedelta(days=int(window_days) - 1)
    result = compare_sides(period_sides(con, first_day, last_day), n_boot=n_boot, seed=seed)
    create_tables(con, "technique_comparison", replace=True)
    if len(result):
        con.register("_cmp", result)
        # utilization of the devices that served each side, device-day weighted (agg_daily_technique_cost)
        con.execute(f"""
            INSERT INTO technique_comparison BY NAME
            WITH util AS (
                SELECT model, technique, sum(utilization * devices) / nullif(sum(devices), 0) AS utilization
                FROM agg_daily_technique_cost WHERE request_date > DATE '{last_day}' - {window_days} GROUP BY ALL
            )
            SELECT c.*, u.utilization, b.utilization AS baseline_utilization
            FROM _cmp c
            LEFT JOIN util u ON u.model = c.model AND u.technique = c.technique
            LEFT JOIN util b ON b.model = c.baseline_model AND b.technique = 'baseline'
        """)
        con.unregister("_cmp")
    return result
