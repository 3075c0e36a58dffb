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

from pipelines.attribution.arrays import US_PER_S, float_array, ts_us, window_us
from pipelines.attribution.segments import power_segments
from pipelines.settings import DEFAULT_MAX_GAP_S


def _grid(t0: int, n: int, step_us: int) -> np.ndarray:
    return t0 + (np.arange(n) + 0.5) * step_us


def _active_on_grid(starts: np.ndarray, ends: np.ndarray, grid: np.ndarray) -> np.ndarray:
    return (np.searchsorted(np.sort(starts), grid, "right") - np.searchsorted(np.sort(ends), grid, "right")).astype(
        float
    )


def _power_on_grid(seg_a: np.ndarray, seg_b: np.ndarray, seg_p: np.ndarray, grid: np.ndarray) -> np.ndarray:
    if len(seg_a) == 0:
        return np.zeros(len(grid))
    idx = np.clip(np.searchsorted(seg_a, grid, "right") - 1, 0, None)
    covered = (grid >= seg_a[idx]) & (grid < seg_b[idx])
    return np.where(covered, seg_p[idx], 0.0)


def _host_power(codes, ts, power_w, window, grid, max_gap_s: float) -> np.ndarray:
    """A host's power on the grid: the sum of its devices' (numpy power segments)."""
    power = np.zeros(len(grid))
    for d in np.unique(codes):
        m = codes == d
        seg = power_segments(codes[m], ts[m], power_w[m], window[m], int(max_gap_s * US_PER_S))
        power += _power_on_grid(seg.start_us, seg.end_us, seg.power_w, grid)
    return power


def _lag_correlations(power: np.ndarray, active: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Correlation of power on the core window with activity shifted by each lag (activity as logged at t + lag
    against power at t): dot products against centred power, activity moments from prefix sums."""
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
            corrs.append(float(np.dot(p_c, window_a) / (p_norm * np.sqrt(ss_a))))
    return np.array(corrs)


def _host_rows(requests: pa.Table, host, all_devices: pa.Array, t_codes: np.ndarray) -> np.ndarray:
    """The telemetry rows of the devices a host's requests ran on."""
    r = requests.filter(pc.equal(requests["host"], host))
    wanted = pc.index_in(pc.unique(r["device_id"]), all_devices).to_numpy(zero_copy_only=False)
    wanted = wanted[~np.isnan(wanted.astype(float))].astype(np.int64) if len(wanted) else wanted
    is_wanted = np.zeros(len(all_devices), dtype=bool)
    is_wanted[wanted] = True
    return np.flatnonzero(is_wanted[t_codes])


def detect_clock_skew(
    requests: pa.Table,
    telemetry: pa.Table,
    *,
    max_lag_s: float = 10.0,
    step_s: float = 0.25,
    min_skew_s: float = 1.0,
    min_gain: float = 0.02,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> list[dict]:
    """requests: host, device_id, started_at, ended_at; telemetry: device_id, ts, power_w[, power_window_s].

    Returns one dict per host: host, best_lag_s (logged request time minus telemetry time), suggested_offset_s,
    corr_at_best, corr_at_zero, likely_skew.
    """
    out = []
    step_us = int(step_s * US_PER_S)
    lags = np.arange(-int(max_lag_s / step_s), int(max_lag_s / step_s) + 1)
    hosts = [h for h in pc.unique(requests["host"]).to_pylist() if h is not None]
    # the telemetry's columns once, as arrays; each host then takes its devices' rows by code
    all_devices = pc.unique(telemetry["device_id"])
    t_codes = pc.index_in(telemetry["device_id"], all_devices).to_numpy(zero_copy_only=False).astype(np.int64)
    t_ts = ts_us(telemetry["ts"])
    t_power = float_array(telemetry["power_w"])
    t_window = window_us(telemetry["power_window_s"] if "power_window_s" in telemetry.column_names else None, len(t_ts))
    for host in hosts:
        r = requests.filter(pc.equal(requests["host"], host))
        rows = _host_rows(requests, host, all_devices, t_codes)
        if len(rows) < 10 or r.num_rows < 10:
            continue
        s, e = ts_us(r["started_at"]), ts_us(r["ended_at"])
        ts = t_ts[rows]
        t0, t1 = int(ts.min()), int(ts.max())
        n = int((t1 - t0) // step_us)
        if n < 4 * len(lags):
            continue
        grid = _grid(t0, n, step_us)
        power = _host_power(t_codes[rows], ts, t_power[rows], t_window[rows], grid, max_gap_s)
        corrs = _lag_correlations(power, _active_on_grid(s, e, grid), lags)
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
