"""Technique comparison with honest statistics: cost change against the baseline with a bootstrap confidence
interval and sample sizes, beside the latency side of the trade-off.

The statistic is the change of fully loaded cost per 1M output tokens (a ratio of sums) of a model's technique
against the untreated requests of its baseline model. Its 95 % interval comes from a Poisson bootstrap over
requests (each request drawn with a Poisson(1) weight, 1,000 resamples, seeded), resampling the technique and the
baseline independently; for more than 20,000 requests a side, its sums are drawn from their exact moments
(_bootstrap_ratio). Beside it: p50 and p95 time to first token and end-to-end duration, their change, and
the utilization of the devices that served each side.

Identical input gives identical output: requests are read in request_id order and each (model, technique) draws
from its own generator, seeded by ``seed`` and the pair's names. Requests whose cost is unknown, or that ran on a
device without a usable inventory row or before its in_service_from, or that were served from a cache
(``inventory_missing``, ``device_before_in_service``, ``served_from_cache`` in fct_request_cost: together
``cost_incomplete``), are left out and counted (requests_excluded, baseline_requests_excluded): their cost would be
a fraction of the truth, or no GPU's at all.

Pure numpy and DuckDB; imports no Dagster.
"""

from __future__ import annotations

import zlib

import duckdb
import numpy as np
import pandas as pd

from pipelines.settings import DEFAULT_COMPARISON_DAYS
from pipelines.warehouse.tables import create_tables

# above this many requests a side's bootstrap sums are drawn from their exact first two moments (below)
EXACT_BOOTSTRAP_MAX = 20_000


def _bootstrap_ratio(cost: np.ndarray, tokens: np.ndarray, n_boot: int, rng) -> np.ndarray:
    """Poisson-bootstrap draws of sum(cost) / sum(tokens).

    Up to EXACT_BOOTSTRAP_MAX requests, each draw weights every request by a Poisson(1) variate. Beyond, the
    weighted sums (sum w*cost, sum w*tokens) are drawn from a bivariate normal with the Poisson bootstrap's own
    moments (means sum cost and sum tokens, variances sum cost^2 and sum tokens^2, covariance sum cost*tokens,
    since Var w = 1): a sum of that many independent terms is normal to well within the interval's own noise, and
    a fleet-day of 10M requests costs O(N) instead of O(1,000 N)."""
    if len(cost) > EXACT_BOOTSTRAP_MAX:
        mean = np.array([cost.sum(), tokens.sum()])
        cov = np.array([[np.dot(cost, cost), np.dot(cost, tokens)], [np.dot(cost, tokens), np.dot(tokens, tokens)]])
        sums = rng.multivariate_normal(mean, cov, size=n_boot, method="cholesky")
        return sums[:, 0] / np.maximum(sums[:, 1], 1e-12)
    out = np.empty(n_boot)
    chunk = max(1, min(n_boot, 20_000_000 // max(len(cost), 1)))
    for lo in range(0, n_boot, chunk):
        w = rng.poisson(1.0, (min(chunk, n_boot - lo), len(cost))).astype(np.float64)
        out[lo : lo + len(w)] = (w @ cost) / np.maximum(w @ tokens, 1e-12)
    return out


def _group_rng(seed: int, model: str, technique: str) -> np.random.Generator:
    """A generator of its own for each comparison, so that no comparison's draws depend on which ran before."""
    return np.random.default_rng([seed, zlib.crc32(f"{model}\0{technique}".encode())])


def _usable(frame: pd.DataFrame) -> pd.Series:
    """Requests whose fully loaded cost is known and complete enough to compare."""
    usable = frame["fully_loaded_cost_usd"].notna()
    for flag in ("inventory_missing", "cost_incomplete"):
        if flag in frame:
            usable &= ~frame[flag].fillna(False).astype(bool)
    return usable


def compare(frame: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """frame: one row per request with family, model, technique, baseline_model, fully_loaded_cost_usd,
    completion_tokens, time_to_first_token_s, duration_s; optionally request_id (rows are taken in its order) and
    inventory_missing (such requests are left out and counted)."""
    if "request_id" in frame:
        frame = frame.sort_values("request_id", kind="stable")
    usable = _usable(frame)
    excluded = frame[~usable].groupby(["model", "technique"], observed=True).size().to_dict()
    everything = {k: g for k, g in frame.groupby(["model", "technique"], sort=True, observed=True)}
    groups = {k: g for k, g in frame[usable].groupby(["model", "technique"], sort=True, observed=True)}
    rows = []
    for model, technique in sorted(everything, key=lambda k: (str(k[0]), str(k[1]))):
        if technique == "baseline":
            continue
        base_model = everything[(model, technique)]["baseline_model"].iloc[0]
        g, base = groups.get((model, technique)), groups.get((base_model, "baseline"))
        if g is None or base is None or g["completion_tokens"].sum() == 0 or base["completion_tokens"].sum() == 0:
            if excluded.get((model, technique)) or excluded.get((base_model, "baseline")):
                rows.append(_no_comparison(everything[(model, technique)], g, base, excluded))
            continue
        rows.append(_compare_pair(g, base, n_boot, _group_rng(seed, str(model), str(technique)), excluded))
    return pd.DataFrame(rows)


def _no_comparison(everything: pd.DataFrame, g, base, excluded: dict) -> dict:
    """A comparison that leaving requests out made impossible: said so, with the counts, rather than dropped."""
    model, technique = everything["model"].iloc[0], everything["technique"].iloc[0]
    base_model = everything["baseline_model"].iloc[0]
    n, n_base = 0 if g is None else len(g), 0 if base is None else len(base)
    n_out, n_base_out = excluded.get((model, technique), 0), excluded.get((base_model, "baseline"), 0)
    return {
        "family": everything["family"].iloc[0],
        "model": model,
        "technique": technique,
        "baseline_model": base_model,
        "requests": n,
        "baseline_requests": n_base,
        "requests_excluded": n_out,
        "baseline_requests_excluded": n_base_out,
        "summary": (
            f"{model} {technique}: no comparison with {base_model} baseline, n={n:,} vs {n_base:,}; "
            f"left out {n_out:,} vs {n_base_out:,} requests without a usable cost (device missing from "
            f"inventory or cost unknown)"
        ),
    }


def _compare_pair(g: pd.DataFrame, base: pd.DataFrame, n_boot: int, rng, excluded: dict) -> dict:
    model, technique, base_model = g["model"].iloc[0], g["technique"].iloc[0], g["baseline_model"].iloc[0]
    cost, tok = g["fully_loaded_cost_usd"].to_numpy(float), g["completion_tokens"].to_numpy(float)
    bcost, btok = base["fully_loaded_cost_usd"].to_numpy(float), base["completion_tokens"].to_numpy(float)
    point = cost.sum() / tok.sum() / (bcost.sum() / btok.sum()) - 1
    draws = _bootstrap_ratio(cost, tok, n_boot, rng) / _bootstrap_ratio(bcost, btok, n_boot, rng) - 1
    low, high = np.percentile(draws, [2.5, 97.5])
    q = lambda s, p: float(np.nanpercentile(s.to_numpy(float), p)) if s.notna().any() else float("nan")  # noqa: E731
    p95, bp95 = q(g["duration_s"], 95), q(base["duration_s"], 95)
    duration_change = 100 * (p95 / bp95 - 1) if bp95 else float("nan")
    n_out, n_base_out = excluded.get((model, technique), 0), excluded.get((base_model, "baseline"), 0)
    left_out = (
        f"; left out {n_out:,} vs {n_base_out:,} requests without a usable cost (device missing from "
        f"inventory or cost unknown)"
        if n_out or n_base_out
        else ""
    )
    ttft, base_ttft = g["time_to_first_token_s"], base["time_to_first_token_s"]
    return {
        "family": g["family"].iloc[0],
        "model": model,
        "technique": technique,
        "baseline_model": base_model,
        "requests": len(g),
        "baseline_requests": len(base),
        "requests_excluded": n_out,
        "baseline_requests_excluded": n_base_out,
        "cost_per_1m_output_tokens_usd": 1e6 * cost.sum() / tok.sum(),
        "baseline_cost_per_1m_output_tokens_usd": 1e6 * bcost.sum() / btok.sum(),
        "cost_change_pct": 100 * point,
        "cost_change_ci_low_pct": 100 * low,
        "cost_change_ci_high_pct": 100 * high,
        "p50_time_to_first_token_s": q(ttft, 50),
        "baseline_p50_time_to_first_token_s": q(base_ttft, 50),
        "p95_time_to_first_token_s": q(ttft, 95),
        "baseline_p95_time_to_first_token_s": q(base_ttft, 95),
        "p50_duration_s": q(g["duration_s"], 50),
        "p95_duration_s": p95,
        "baseline_p95_duration_s": bp95,
        "p95_duration_change_pct": duration_change,
        "summary": (
            f"{model} {technique}: {100 * point:+.0f}% cost per 1M output tokens "
            f"[{100 * low:+.0f}%, {100 * high:+.0f}%] vs {base_model} baseline, "
            f"p95 latency {duration_change:+.0f}%, n={len(g):,} vs {len(base):,}{left_out}"
        ),
    }


def compare_and_store(
    con: duckdb.DuckDBPyConnection, *, n_boot: int = 1000, seed: int = 0, window_days: int = DEFAULT_COMPARISON_DAYS
) -> pd.DataFrame:
    """Compare the requests of the ``window_days`` days up to the last loaded day (INFERCOST_COMPARISON_DAYS, as
    technique_savings) and replace technique_comparison."""
    # names as categories, not a Python string per request: a fleet-day has millions of requests; in request_id
    # order, so that the bootstrap weights go to the same requests on every run
    last_day = con.sql("SELECT max(request_date) FROM agg_daily_technique_cost").fetchall()[0][0] or "1900-01-01"
    frame = (
        con.sql(
            "SELECT family, model, technique, baseline_model, fully_loaded_cost_usd, "
            "completion_tokens, time_to_first_token_s, duration_s, "
            "coalesce(inventory_missing OR device_before_in_service OR served_from_cache, false) "
            "AS cost_incomplete FROM fct_request_cost "
            f"WHERE request_date > DATE '{last_day}' - {int(window_days)} "
            "ORDER BY request_id"
        )
        .to_arrow_table()
        .to_pandas(strings_to_categorical=True)
    )
    result = compare(frame, n_boot=n_boot, seed=seed)
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
