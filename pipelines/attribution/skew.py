"""Detect clock skew between request logs and telemetry, per host.

If a host's request log runs ``d`` seconds ahead of its telemetry clock, its power rises ``d`` seconds before the
logged requests start. For each host we build, on a fine time grid, the number of active request-devices and the
host's total power (under the same sample semantics as the kernel), and find the lag that best correlates them.
A host whose best lag is at least ``min_skew_s`` away from zero, with a clearly better correlation than at zero,
is reported as likely skewed; the suggested offset goes into fleet/clock_offsets.csv.

numpy, with compiled passes where numba is installed (compiled_skew.py); imports no Dagster.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.attribution.arrays import US_PER_S, float_array, ts_us, window_us
from pipelines.attribution.engines import engine_name
from pipelines.attribution.prepare import device_codes
from pipelines.attribution.segments import power_segments
from pipelines.settings import DEFAULT_MAX_GAP_S


def _first_at_or_after(t: np.ndarray, t0: int, step_us: int) -> np.ndarray:
    """The first grid index i with t0 + (i + 1/2) step >= t, in integers (no rounding)."""
    return -((step_us - 2 * (t - t0)) // (2 * step_us))


def _held_on_grid(a: np.ndarray, b: np.ndarray, t0: int, n: int, step_us: int, weights=None) -> np.ndarray:
    """How many of the intervals [a, b) hold each of the n grid points, or with ``weights`` the sum of theirs: each
    interval counts from its first grid point at or after a to the one before its first at or after b, and a
    running sum adds up those changes (no sort, no search). Weighted, an interval between two grid points is left
    out: its weight put on and taken off in one bin would not cancel exactly."""
    first = np.clip(_first_at_or_after(a, t0, step_us), 0, n)
    past = np.clip(_first_at_or_after(b, t0, step_us), 0, n)
    if weights is not None:
        held = past > first
        first, past, weights = first[held], past[held], weights[held]
    change = np.bincount(first, weights, minlength=n + 1)[:n] - np.bincount(past, weights, minlength=n + 1)[:n]
    return np.cumsum(change)


def _lag_correlations(power: np.ndarray, active: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Correlation of power on the core window with activity shifted by each lag (activity as logged at t + lag
    against power at t): dot products against centred power, activity moments from prefix sums. The products are
    summed by einsum, not np.dot: a multi-threaded BLAS made the check 100x slower on a busy 2-core machine."""
    n = len(power)
    margin = len(lags)
    width = n - 2 * margin
    p_core = power[margin : n - margin]
    p_c = p_core - p_core.mean()
    p_norm = np.sqrt(np.dot(p_c, p_c))
    c1 = np.concatenate(([0.0], np.cumsum(active)))
    c2 = np.concatenate(([0.0], np.cumsum(active * active)))
    corrs = []
    for lag in lags:
        lo_i, hi_i = margin + lag, margin + lag + width
        window_a = active[lo_i:hi_i]
        mean_a = (c1[hi_i] - c1[lo_i]) / width
        ss_a = (c2[hi_i] - c2[lo_i]) - width * mean_a * mean_a
        if width < 3 or p_norm == 0 or ss_a <= 1e-12:
            corrs.append(float("nan"))
        else:
            corrs.append(float(np.einsum("i,i->", p_c, window_a) / (p_norm * np.sqrt(ss_a))))
    return np.array(corrs)


def _rows_by_code(codes: np.ndarray, n_codes: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows in code order (stable) and each code's first position in it (n_codes + 1)."""
    order = np.argsort(codes, kind="stable")
    return order, np.searchsorted(codes[order], np.arange(n_codes + 1))


def _by_host(requests: pa.Table) -> tuple[list, np.ndarray, np.ndarray]:
    """The hosts (first appearance, no null), and the request rows in host order with each host's first position
    in it."""
    enc = pc.dictionary_encode(requests["host"].combine_chunks())
    codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    order, first = _rows_by_code(codes, len(enc.dictionary))
    order = order[first[0] :]  # nulls (-1) sort first
    return enc.dictionary.to_pylist(), order, first - first[0]


def _compiled_skew(engine: str | None):
    """compiled_skew.py for the compiled engine (numba installed), else None: the numpy passes here."""
    if engine_name(engine) != "compiled":
        return None
    from pipelines.attribution import compiled_skew

    return compiled_skew


def _devices(requests: pa.Table, telemetry: pa.Table, max_gap_s: float, compiled):
    """The request rows' device codes (coded as the kernel codes them: sorted, strings or dictionary-encoded; no
    null); every device's power segments at once (the kernel's sample semantics), in device order, with each code's
    first segment (n_codes + 1); and each device's samples: how many, the first and the last time. ``compiled``:
    compiled_skew, or None for the numpy passes (and the numpy engine's segments)."""
    all_devices, (r_dev, t_codes) = device_codes(requests["device_id"], telemetry["device_id"])
    r_dev, t_codes = r_dev.astype(np.int64), t_codes.astype(np.int64)
    t_ts = ts_us(telemetry["ts"])
    t_power = float_array(telemetry["power_w"])
    t_window = window_us(telemetry["power_window_s"] if "power_window_s" in telemetry.column_names else None, len(t_ts))
    engine = "numpy" if compiled is None else "compiled"
    seg = power_segments(t_codes, t_ts, t_power, t_window, int(max_gap_s * US_PER_S), engine=engine)
    seg_first = np.searchsorted(seg.dev, np.arange(len(all_devices) + 1))
    if compiled is not None:
        return r_dev, (seg, seg_first), compiled.device_extents(t_codes, t_ts, len(all_devices))
    t_count = np.bincount(t_codes, minlength=len(all_devices))
    t_min = np.full(len(all_devices), np.iinfo(np.int64).max)
    t_max = np.full(len(all_devices), np.iinfo(np.int64).min)
    np.minimum.at(t_min, t_codes, t_ts)
    np.maximum.at(t_max, t_codes, t_ts)
    return r_dev, (seg, seg_first), (t_count, t_min, t_max)


def _host_series(compiled, segments, devices, request_times, r, grid) -> tuple[np.ndarray, np.ndarray]:
    """A host's power (its devices' segments may overlap, each device's do not) and its active request-devices on
    the grid (t0, n, step_us); ``compiled``: compiled_skew or None (numpy: the same numbers)."""
    (seg, seg_first), (r_start, r_end) = segments, request_times
    if compiled is not None:
        power = compiled.power_on_grid(seg_first, devices, seg.start_us, seg.end_us, seg.power_w, *grid)
        return power, compiled.active_on_grid(r, r_start, r_end, *grid)
    at = np.concatenate([np.arange(seg_first[d], seg_first[d + 1]) for d in devices])
    power = _held_on_grid(seg.start_us[at], seg.end_us[at], *grid, weights=seg.power_w[at])
    return power, _held_on_grid(r_start[r], r_end[r], *grid).astype(float)


def detect_clock_skew(
    requests: pa.Table,
    telemetry: pa.Table,
    *,
    max_lag_s: float = 10.0,
    step_s: float = 0.25,
    min_skew_s: float = 1.0,
    min_gain: float = 0.02,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    engine: str | None = None,
) -> list[dict]:
    """requests: host, device_id, started_at, ended_at; telemetry: device_id, ts, power_w[, power_window_s].

    Returns one dict per host: host, best_lag_s (logged request time minus telemetry time), suggested_offset_s,
    corr_at_best, corr_at_zero, likely_skew. ``engine``: "compiled" or "numpy" (None: the default engine); both
    give the same numbers.
    """
    out = []
    step_us = int(step_s * US_PER_S)
    lags = np.arange(-int(max_lag_s / step_s), int(max_lag_s / step_s) + 1)
    compiled = _compiled_skew(engine)
    r_dev, segments, (t_count, t_min, t_max) = _devices(requests, telemetry, max_gap_s, compiled)
    hosts, r_order, r_first = _by_host(requests)
    request_times = ts_us(requests["started_at"]), ts_us(requests["ended_at"])
    for k, host in enumerate(hosts):
        r = r_order[r_first[k] : r_first[k + 1]]
        devices = np.unique(r_dev[r])
        devices = devices[t_count[devices] > 0]
        if t_count[devices].sum() < 10 or len(r) < 10:
            continue
        t0, t1 = int(t_min[devices].min()), int(t_max[devices].max())
        n = int((t1 - t0) // step_us)
        if n < 4 * len(lags):
            continue
        power, active = _host_series(compiled, segments, devices, request_times, r, (t0, n, step_us))
        corrs = _lag_correlations(power, active, lags)
        if np.all(np.isnan(corrs)):
            continue
        best = int(np.nanargmax(corrs))
        zero = int(np.flatnonzero(lags == 0)[0])
        best_lag = float(lags[best] * step_s)
        likely = abs(best_lag) >= min_skew_s and corrs[best] - corrs[zero] >= min_gain
        out.append(
            {
                "host": host,
                "best_lag_s": best_lag,
                "suggested_offset_s": -best_lag if likely else 0.0,
                "corr_at_best": float(corrs[best]),
                "corr_at_zero": float(corrs[zero]),
                "likely_skew": bool(likely),
            }
        )
    return out
