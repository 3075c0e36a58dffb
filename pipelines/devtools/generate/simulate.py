"""Simulated load of a replica: requests from a diurnal arrival rate, per-second decode batch, power calibration.

Calibrated to figures measured on an H100 SXM 80GB: idle about 71 W; an 8B model decoding at batch 1 about 160 W
and 9 J per output token; batch 8 about 260 W; batch 32 about 430 W and 1.2 J per output token.
"""

from __future__ import annotations

import math

import numpy as np

from pipelines.devtools.generate.fleet import (
    CONFIG_EFFECT,
    DEVICE_TYPES,
    MODELS,
    REGIONS,
    Replica,
)

# H100 SXM, 8B bf16, continuous batching: (batch, board W) and (batch, J per output token)
_H100_POWER = ((0.0, 71.0), (1.0, 160.0), (8.0, 260.0), (32.0, 430.0), (128.0, 620.0))
_H100_J_PER_TOKEN = ((1.0, 9.0), (32.0, 1.2))


def power_w(batch: np.ndarray, effect_at_1: float = 1.0) -> np.ndarray:
    """H100 board power for an 8B model at a (fractional) decode batch, per the calibration points."""
    xs = np.log2(1.0 + np.array([b for b, _ in _H100_POWER]))
    ys = np.array([p for _, p in _H100_POWER])
    base = np.interp(np.log2(1.0 + np.asarray(batch, dtype=float)), xs, ys)
    # a technique's power effect is strongest at batch 1 and fades by batch 32
    fade = np.clip(np.log2(np.maximum(batch, 1.0)) / 5.0, 0, 1)
    factor = effect_at_1 + (1.0 - effect_at_1) * fade
    return 71.0 + (base - 71.0) * np.where(np.asarray(batch) > 0, factor, 1.0)


def j_per_token(batch: np.ndarray, effect_at_1: float = 1.0) -> np.ndarray:
    (_, j1), (b2, j2) = _H100_J_PER_TOKEN
    b = np.maximum(np.asarray(batch, dtype=float), 1.0)
    base = j1 * (j2 / j1) ** (np.log2(b) / np.log2(b2))
    fade = np.clip(np.log2(b) / 5.0, 0, 1)
    return base * (effect_at_1 + (1.0 - effect_at_1) * fade * 0.3)


def time_per_token_s(batch, config) -> np.ndarray:
    """Seconds per decode step at a batch: batch x J/token / power (the calibration's own identity)."""
    p_eff, j_eff = CONFIG_EFFECT[config]
    b = np.maximum(np.asarray(batch, dtype=float), 1.0)
    return b * j_per_token(b, j_eff) / power_w(b, p_eff)


def _diurnal(t_s: np.ndarray, utc_offset_h: int) -> np.ndarray:
    """Relative load in [0.25, 1]: low at night, peak mid-afternoon local time, a little lower on weekends."""
    local_h = (t_s / 3600.0 + utc_offset_h) % 24
    shape = 0.25 + 0.75 * np.exp(-0.5 * ((local_h - 14.5) / 4.0) ** 2)
    return shape


def _coverage_per_second(starts: np.ndarray, ends: np.ndarray, n_seconds: int) -> np.ndarray:
    """Average number of active intervals in each second [k, k+1), k = 0..n_seconds-1 (times in seconds)."""
    grid = np.arange(n_seconds + 1, dtype=float)
    ss, es = np.sort(starts), np.sort(ends)
    cs, ce = np.concatenate([[0.0], np.cumsum(ss)]), np.concatenate([[0.0], np.cumsum(es)])
    ns, ne = np.searchsorted(ss, grid), np.searchsorted(es, grid)
    integral = grid * ns - cs[ns] - (grid * ne - ce[ne])
    return np.diff(integral)


def _busy_per_second(starts: np.ndarray, ends: np.ndarray, n_seconds: int) -> np.ndarray:
    """Fraction of each second with at least one active interval (union of intervals)."""
    if len(starts) == 0:
        return np.zeros(n_seconds)
    order = np.argsort(starts)
    s, e = starts[order], ends[order]
    run_end = np.maximum.accumulate(e)
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] > run_end[:-1]
    gid = np.cumsum(new) - 1
    ms = s[new]
    me = np.maximum.reduceat(e, np.flatnonzero(new))
    del gid
    return _coverage_per_second(ms, me, n_seconds)


def simulate_replica(
    rep: Replica, t0: float, n_seconds: int, rng: np.random.Generator, load: float, slowdown: np.ndarray | None = None
):
    """Requests (dict of arrays, seconds since t0) and per-second decode batch of one replica. ``slowdown`` is a
    per-second factor on time per token (a throttled GPU)."""
    m = MODELS[rep.model]
    region = REGIONS[rep.region]
    dt = DEVICE_TYPES[rep.device_type]
    grid = np.arange(n_seconds, dtype=float)
    target_peak_batch = 7.0 * load
    # arrival rate per second so that concurrency ~ target at peak (Little's law with the mean duration at that batch)
    mean_out = m.output_median * math.exp(0.8**2 / 2)
    rel = _diurnal(t0 + grid, region.utc_offset_h)
    batch_exp = np.maximum(target_peak_batch * rel, 0.3)
    tpot_exp = time_per_token_s(batch_exp, rep.config) * m.speed_scale * dt.speed_scale
    if slowdown is not None:
        tpot_exp = tpot_exp * slowdown
    lam = batch_exp / (mean_out * tpot_exp + 0.4)
    cum = np.concatenate([[0.0], np.cumsum(lam)])
    n = rng.poisson(cum[-1])
    arr = np.sort(np.interp(rng.uniform(0, cum[-1], n), cum, np.arange(n_seconds + 1, dtype=float)))
    prompt = np.clip(np.round(rng.lognormal(math.log(700), 1.0, n)), 8, 16_000).astype(np.int64)
    out = np.clip(np.round(rng.lognormal(math.log(m.output_median), 0.8, n)), 1, 4_096).astype(np.int64)
    cached = np.where(rng.random(n) < 0.35, (prompt * rng.uniform(0.2, 0.9, n)).astype(np.int64), 0)
    sec = np.clip(arr.astype(np.int64), 0, n_seconds - 1)
    b = batch_exp[sec]
    queue = rng.exponential(0.05 + 0.02 * b)
    prefill = (prompt - cached) / (m.prefill_tok_per_s / dt.speed_scale)
    tpot = tpot_exp[sec] * rng.lognormal(0.0, 0.08, n)
    first = arr + queue + prefill + tpot
    end = first + (out - 1) * tpot
    status = np.where(rng.random(n) < 0.004, "error", "ok")
    out = np.where(status == "error", np.minimum(out, rng.integers(0, 8, n)), out)
    keep = end < n_seconds - 2  # the window's last requests finish in the next day's logs
    reqs = {
        "arrival": arr,
        "first": first,
        "end": end,
        "prompt": prompt,
        "out": out,
        "cached": cached,
        "status": status,
    }
    reqs = {k: v[keep] for k, v in reqs.items()}
    batch = _coverage_per_second(reqs["arrival"], reqs["end"], n_seconds)
    busy = _busy_per_second(reqs["arrival"], reqs["end"], n_seconds)
    return reqs, batch, busy
