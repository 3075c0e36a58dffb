"""Technique comparison with honest statistics: cost change against the baseline with a bootstrap confidence
interval and sample sizes, beside the latency side of the trade-off.

The statistic is the change of fully loaded cost per 1M output tokens (a ratio of sums) of a model's technique
against the untreated requests of its baseline model. Its 95 % interval comes from a Poisson bootstrap over
requests (each request drawn with a Poisson(1) weight, 1,000 resamples, seeded), resampling the technique and the
baseline independently; for more than 20,000 requests a side, its sums are drawn from their exact moments
(_side_draws). Beside it: p50 and p95 time to first token and end-to-end duration, their change, and
the utilization of the devices that served each side.

Identical input gives identical output: requests are read in request_id order and each (model, technique) draws
from its own generator, seeded by ``seed`` and the pair's names. Requests whose cost is unknown, or that ran on a
device without a usable inventory row or before its in_service_from, or that were served from a cache
(``inventory_missing``, ``device_before_in_service``, ``served_from_cache`` in fct_request_cost: together
``cost_incomplete``), are left out and counted (requests_excluded, baseline_requests_excluded): their cost would be
a fraction of the truth, or no GPU's at all.

Pure numpy; imports no Dagster. compare_store.py runs it on the warehouse, with the per-side sums and quantiles
computed in DuckDB.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# above this many requests a side's bootstrap sums are drawn from their exact first two moments (below)
EXACT_BOOTSTRAP_MAX = 20_000


def _poisson_ratio(cost: np.ndarray, tokens: np.ndarray, n_boot: int, rng) -> np.ndarray:
    """Poisson-bootstrap draws of sum(cost) / sum(tokens): each draw weights every request by a Poisson(1) variate."""
    out = np.empty(n_boot)
    chunk = max(1, min(n_boot, 20_000_000 // max(len(cost), 1)))
    for lo in range(0, n_boot, chunk):
        w = rng.poisson(1.0, (min(chunk, n_boot - lo), len(cost))).astype(np.float64)
        out[lo : lo + len(w)] = (w @ cost) / np.maximum(w @ tokens, 1e-12)
    return out


def _moments_ratio(mean: np.ndarray, cov: np.ndarray, n_boot: int, rng) -> np.ndarray:
    """The same draws for a side above EXACT_BOOTSTRAP_MAX requests: the weighted sums (sum w*cost, sum w*tokens)
    drawn from a bivariate normal with the Poisson bootstrap's own moments (means sum cost and sum tokens, variances
    sum cost^2 and sum tokens^2, covariance sum cost*tokens, since Var w = 1): a sum of that many independent terms
    is normal to well within the interval's own noise, and a fleet-day of 10M requests costs O(N) instead of
    O(1,000 N)."""
    sums = rng.multivariate_normal(mean, cov, size=n_boot, method="cholesky")
    return sums[:, 0] / np.maximum(sums[:, 1], 1e-12)


def _group_rng(seed: int, model: str, technique: str) -> np.random.Generator:
    """A generator of its own for each comparison, so that no comparison's draws depend on which ran before."""
    return np.random.default_rng([seed, zlib.crc32(f"{model}\0{technique}".encode())])


@dataclass
class Side:
    """What a comparison needs of one side (a model and technique) over the window: names, counts, sums, latency
    quantiles and, for a side small enough for the Poisson bootstrap, its requests' costs and tokens in request_id
    order. ``cost_usd`` and the moments are sums over the usable requests."""

    family: str
    baseline_model: str
    requests: int
    excluded: int
    cost_usd: float = 0.0
    tokens: float = 0.0
    moments: tuple[float, float, float] = (0.0, 0.0, 0.0)  # sum cost^2, sum cost*tokens, sum tokens^2
    quantiles: dict[str, float] = field(default_factory=dict)  # p50/p95 of ttft and duration
    values: tuple[np.ndarray, np.ndarray] | None = None


QUANTILES = {"ttft_p50": ("time_to_first_token_s", 50), "ttft_p95": ("time_to_first_token_s", 95)} | {
    "duration_p50": ("duration_s", 50),
    "duration_p95": ("duration_s", 95),
}


def _usable(frame: pd.DataFrame) -> pd.Series:
    """Requests whose fully loaded cost is known and complete enough to compare."""
    usable = frame["fully_loaded_cost_usd"].notna()
    for flag in ("inventory_missing", "cost_incomplete"):
        if flag in frame:
            usable &= ~frame[flag].fillna(False).astype(bool)
    return usable


def _quantile(values: pd.Series, p: float) -> float:
    return float(np.nanpercentile(values.to_numpy(float), p)) if values.notna().any() else float("nan")


def sides_from_frame(frame: pd.DataFrame) -> dict[tuple, Side]:
    """Each side's statistics from one row per request (in request_id order when the frame has it)."""
    if "request_id" in frame:
        frame = frame.sort_values("request_id", kind="stable")
    usable = _usable(frame).to_numpy()
    sides = {}
    for key, rows in frame.groupby(["model", "technique"], sort=True, observed=True).indices.items():
        everything = frame.iloc[rows]
        g = everything[usable[rows]]
        sides[key] = _values_side(
            g["fully_loaded_cost_usd"].to_numpy(float),
            g["completion_tokens"].to_numpy(float),
            family=everything["family"].iloc[0],
            baseline_model=everything["baseline_model"].iloc[0],
            excluded=len(everything) - len(g),
            quantiles={name: _quantile(g[column], p) for name, (column, p) in QUANTILES.items()},
        )
    return sides


def _values_side(
    cost: np.ndarray, tokens: np.ndarray, family="", baseline_model="", excluded=0, quantiles=None
) -> Side:
    """The side of these usable requests' costs and tokens (kept only when the Poisson bootstrap draws from them)."""
    return Side(
        family=family,
        baseline_model=baseline_model,
        requests=len(cost),
        excluded=excluded,
        cost_usd=cost.sum(),
        tokens=tokens.sum(),
        moments=(np.dot(cost, cost), np.dot(cost, tokens), np.dot(tokens, tokens)),
        quantiles=quantiles or {},
        values=(cost, tokens) if len(cost) <= EXACT_BOOTSTRAP_MAX else None,
    )


def compare(frame: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """frame: one row per request with family, model, technique, baseline_model, fully_loaded_cost_usd,
    completion_tokens, time_to_first_token_s, duration_s; optionally request_id (rows are taken in its order) and
    inventory_missing (such requests are left out and counted)."""
    return compare_sides(sides_from_frame(frame), n_boot=n_boot, seed=seed)


def compare_sides(sides: dict[tuple, Side], *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (model, technique) that is not a baseline: against its baseline model's untreated requests."""
    rows = []
    for model, technique in sorted(sides, key=lambda k: (str(k[0]), str(k[1]))):
        if technique == "baseline":
            continue
        side = sides[(model, technique)]
        base = sides.get((side.baseline_model, "baseline"))
        if not side.requests or base is None or not base.requests or not side.tokens or not base.tokens:
            if side.excluded or (base is not None and base.excluded):
                rows.append(_no_comparison(model, technique, side, base))
            continue
        rows.append(_compare_pair(model, technique, side, base, n_boot, _group_rng(seed, str(model), str(technique))))
    return pd.DataFrame(rows)


def _left_out(side: Side, base: Side | None) -> str:
    return (
        f"left out {side.excluded:,} vs {0 if base is None else base.excluded:,} requests without a usable cost "
        f"(device missing from inventory or cost unknown)"
    )


def _no_comparison(model, technique, side: Side, base: Side | None) -> dict:
    """A comparison that leaving requests out made impossible: said so, with the counts, rather than dropped."""
    n_base = 0 if base is None else base.requests
    return {
        "family": side.family,
        "model": model,
        "technique": technique,
        "baseline_model": side.baseline_model,
        "requests": side.requests,
        "baseline_requests": n_base,
        "requests_excluded": side.excluded,
        "baseline_requests_excluded": 0 if base is None else base.excluded,
        "summary": (
            f"{model} {technique}: no comparison with {side.baseline_model} baseline, n={side.requests:,} vs "
            f"{n_base:,}; {_left_out(side, base)}"
        ),
    }


def _side_draws(side: Side, n_boot: int, rng) -> np.ndarray:
    """Bootstrap draws of the side's sum(cost) / sum(tokens): from its requests when it has them at hand (up to
    EXACT_BOOTSTRAP_MAX), else from its moments."""
    if side.values is not None:
        return _poisson_ratio(*side.values, n_boot, rng)
    cost_sq, cost_tokens, tokens_sq = side.moments
    cov = np.array([[cost_sq, cost_tokens], [cost_tokens, tokens_sq]])
    return _moments_ratio(np.array([side.cost_usd, side.tokens]), cov, n_boot, rng)


def _compare_pair(model, technique, side: Side, base: Side, n_boot: int, rng) -> dict:
    point = side.cost_usd / side.tokens / (base.cost_usd / base.tokens) - 1
    draws = _side_draws(side, n_boot, rng) / _side_draws(base, n_boot, rng) - 1
    low, high = np.percentile(draws, [2.5, 97.5])
    q, bq = side.quantiles, base.quantiles
    p95, bp95 = q["duration_p95"], bq["duration_p95"]
    duration_change = 100 * (p95 / bp95 - 1) if bp95 else float("nan")
    left_out = f"; {_left_out(side, base)}" if side.excluded or base.excluded else ""
    return {
        "family": side.family,
        "model": model,
        "technique": technique,
        "baseline_model": side.baseline_model,
        "requests": side.requests,
        "baseline_requests": base.requests,
        "requests_excluded": side.excluded,
        "baseline_requests_excluded": base.excluded,
        "cost_per_1m_output_tokens_usd": 1e6 * side.cost_usd / side.tokens,
        "baseline_cost_per_1m_output_tokens_usd": 1e6 * base.cost_usd / base.tokens,
        "cost_change_pct": 100 * point,
        "cost_change_ci_low_pct": 100 * low,
        "cost_change_ci_high_pct": 100 * high,
        "p50_time_to_first_token_s": q["ttft_p50"],
        "baseline_p50_time_to_first_token_s": bq["ttft_p50"],
        "p95_time_to_first_token_s": q["ttft_p95"],
        "baseline_p95_time_to_first_token_s": bq["ttft_p95"],
        "p50_duration_s": q["duration_p50"],
        "p95_duration_s": p95,
        "baseline_p95_duration_s": bp95,
        "p95_duration_change_pct": duration_change,
        "summary": (
            f"{model} {technique}: {100 * point:+.0f}% cost per 1M output tokens "
            f"[{100 * low:+.0f}%, {100 * high:+.0f}%] vs {side.baseline_model} baseline, "
            f"p95 latency {duration_change:+.0f}%, n={side.requests:,} vs {base.requests:,}{left_out}"
        ),
    }
