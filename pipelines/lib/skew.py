"""Detect clock skew between request logs and telemetry, per host.

If a host's request log runs ``d`` seconds ahead of its telemetry clock, its power rises ``d`` seconds before the
logged requests start. For each host we build, on a fine time grid, the number of active request-devices and the
host's total power (under the same sample semantics as the kernel), and find the lag that best correlates them.
A host whose best lag is at least ``min_skew_s`` away from zero, with a clearly better correlation than at zero,
is reported as likely skewed; the suggested offset goes into fleet/clock_offsets.csv.

Pure numpy; imports no Dagster.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.lib.attribution import US_PER_S, _float, _power_segments, _ts_us


def _grid(t0: int, n: int, step_us: int) -> np.ndarray:
    return t0 + (np.arange(n) + 0.5) * step_us


def _active_on_grid(starts: np.ndarray, ends: np.ndarray, grid: np.ndarray) -> np.ndarray:
    return (np.searchsorted(np.sort(starts), grid, "right") - np.searchsorted(np.sort(ends), grid, "right")).astype(
        float)


def _power_on_grid(seg_a: np.ndarray, seg_b: np.ndarray, seg_p: np.ndarray, grid: np.ndarray) -> np.ndarray:
    if len(seg_a) == 0:
        return np.zeros(len(grid))
    idx = np.clip(np.searchsorted(seg_a, grid, "right") - 1, 0, None)
    covered = (grid >= seg_a[idx]) & (grid < seg_b[idx])
    return np.where(covered, seg_p[idx], 0.0)


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def detect_clock_skew(requests: pa.Table, telemetry: pa.Table, *, max_lag_s: float = 10.0, step_s: float = 0.25,
                      min_skew_s: float = 1.0, min_gain: float = 0.02, max_gap_s: float = 5.0) -> list[dict]:
    """requests: host, device_id, started_at, ended_at; telemetry: device_id, ts, power_w[, power_window_s].

    Returns one dict per host: host, best_lag_s (logged request time minus telemetry time), suggested_offset_s,
    corr_at_best, corr_at_zero, likely_skew.
    """
    out = []
    step_us = int(step_s * US_PER_S)
    lags = np.arange(-int(max_lag_s / step_s), int(max_lag_s / step_s) + 1)
    hosts = [h for h in pc.unique(requests["host"]).to_pylist() if h is not None]
    for host in hosts:
        r = requests.filter(pc.equal(requests["host"], host))
        devices = pc.unique(r["device_id"])
        t = telemetry.filter(pc.is_in(telemetry["device_id"], devices))
        if t.num_rows < 10 or r.num_rows < 10:
            continue
        s, e = _ts_us(r["started_at"]), _ts_us(r["ended_at"])
        ts = _ts_us(t["ts"])
        codes = pc.index_in(t["device_id"], devices).to_numpy(zero_copy_only=False).astype(np.int64)
        window = (np.round(_float(t["power_window_s"], 0.0) * US_PER_S).astype(np.int64)
                  if "power_window_s" in t.column_names else np.zeros(len(ts), dtype=np.int64))
        t0, t1 = int(ts.min()), int(ts.max())
        n = int((t1 - t0) // step_us)
        if n < 4 * len(lags):
            continue
        grid = _grid(t0, n, step_us)
        power = np.zeros(n)
        for d in range(len(devices)):  # the host's power: the sum of its devices'
            m = codes == d
            _, a, b, p, *_ = _power_segments(codes[m], ts[m], _float(t["power_w"])[m], window[m],
                                             int(max_gap_s * US_PER_S))
            power += _power_on_grid(a, b, p, grid)
        active = _active_on_grid(s, e, grid)
        margin = len(lags)
        core = slice(margin, n - margin)
        corrs = []
        for lag in lags:
            # activity as logged at t + lag against power at t
            shifted = np.roll(active, -lag)
            corrs.append(_corr(power[core], shifted[core]))
        corrs = np.array(corrs)
        if np.all(np.isnan(corrs)):
            continue
        best = int(np.nanargmax(corrs))
        zero = int(np.flatnonzero(lags == 0)[0])
        best_lag = float(lags[best] * step_s)
        likely = abs(best_lag) >= min_skew_s and corrs[best] - corrs[zero] >= min_gain
        out.append({
            "host": host, "best_lag_s": best_lag, "suggested_offset_s": -best_lag if likely else 0.0,
            "corr_at_best": float(corrs[best]), "corr_at_zero": float(corrs[zero]), "likely_skew": bool(likely),
        })
    return out
