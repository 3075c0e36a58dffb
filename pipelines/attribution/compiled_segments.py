"""Power segments from telemetry samples, compiled (numba): the same rule as the numpy engine's power_segments.

``engine_compiled.power_segments`` allocates the arrays (numpy asks the kernel for huge pages) and calls these.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def compact(dev, ts, power, window_us, u_dev, u_ts, u_p, u_w):
    """Valid samples (finite, non-negative power) with duplicates (same device and ts) merged: power averaged,
    widest window kept. Returns (rows kept, samples dropped)."""
    m = 0
    dropped = 0
    count = 0
    for i in range(len(ts)):
        p = power[i]
        if not (np.isfinite(p) and p >= 0):
            dropped += 1
            continue
        if m > 0 and u_dev[m - 1] == dev[i] and u_ts[m - 1] == ts[i]:
            count += 1
            u_p[m - 1] += p
            u_w[m - 1] = max(u_w[m - 1], window_us[i])
            continue
        if count > 1:
            u_p[m - 1] /= count
        u_dev[m] = dev[i]
        u_ts[m] = ts[i]
        u_p[m] = p
        u_w[m] = window_us[i]
        count = 1
        m += 1
    if count > 1:
        u_p[m - 1] /= count
    return m, dropped


@njit(cache=True, nogil=True)
def is_clean(dev, ts, power):
    """True when no sample is invalid or a duplicate (the usual case: nothing to compact)."""
    for i in range(len(ts)):
        if not (np.isfinite(power[i]) and power[i] >= 0):
            return False
        if i > 0 and dev[i] == dev[i - 1] and ts[i] == ts[i - 1]:
            return False
    return True


@njit(cache=True, inline="always")
def _coverage_start(dev, ts, window_us, max_gap_us, i):
    """Where sample i's coverage starts before overlaps are cut: a trailing average reaches back to the previous
    sample within max_gap (else its own window); an instantaneous reading starts at its own time."""
    if window_us[i] > 0:
        if i > 0 and dev[i - 1] == dev[i] and ts[i] - ts[i - 1] <= max_gap_us:
            return ts[i - 1]
        return ts[i] - window_us[i]
    return ts[i]


@njit(cache=True, nogil=True)
def build_segments(dev, ts, power, window_us, max_gap_us, out_dev, out_a, out_b, out_p, out_avg):
    m = len(ts)
    k = 0
    prev_end = 0
    for i in range(m):
        same_next = i + 1 < m and dev[i + 1] == dev[i]
        if window_us[i] > 0:
            end = ts[i]
        elif same_next:  # held until the next sample or what it covers, at most max_gap
            end = min(ts[i + 1], _coverage_start(dev, ts, window_us, max_gap_us, i + 1), ts[i] + max_gap_us)
        else:
            end = ts[i]  # the last instantaneous reading of a device covers no time
        a = _coverage_start(dev, ts, window_us, max_gap_us, i)
        if i > 0 and dev[i - 1] == dev[i] and prev_end > a:
            a = prev_end
        prev_end = end
        if end > a:
            out_dev[k] = dev[i]
            out_a[k] = a
            out_b[k] = end
            out_p[k] = power[i]
            out_avg[k] = window_us[i] > 0
            k += 1
    return k
