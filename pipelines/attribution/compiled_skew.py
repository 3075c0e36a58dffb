"""The clock-skew check's series on its grid, compiled (numba): the same numbers as skew.py's numpy passes.

skew.py builds, per host, the power and the active request-devices at each grid point t0 + (i + 1/2) step. In
numpy that is a gather of the host's segments and requests, two bincounts and a running sum each; here one pass
reads the rows in place and adds them up in the same order (so the sums are equal to the bit), and one pass gives
every device's sample count and first and last time. Imported only when numba is installed (skew.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _grid_index(t, t0, step_us, n):
    """The first grid index i with t0 + (i + 1/2) step >= t, clipped to [0, n] (skew._first_at_or_after)."""
    i = -((step_us - 2 * (t - t0)) // (2 * step_us))
    return min(max(i, 0), n)


@njit(cache=True, nogil=True)
def power_on_grid(seg_first, devices, start_us, end_us, power_w, t0, n, step_us):
    """The devices' summed power at each grid point: each segment of each device (in device order, as skew.py
    gathers them) counts from its first grid point to the one before its end's; a segment between two grid points
    is left out."""
    on = np.zeros(n + 1)
    off = np.zeros(n + 1)
    for d in devices:
        for s in range(seg_first[d], seg_first[d + 1]):
            first = _grid_index(start_us[s], t0, step_us, n)
            past = _grid_index(end_us[s], t0, step_us, n)
            if past > first:
                on[first] += power_w[s]
                off[past] += power_w[s]
    out = np.empty(n)
    held = 0.0
    for i in range(n):
        held += on[i] - off[i]
        out[i] = held
    return out


@njit(cache=True, nogil=True)
def active_on_grid(rows, start_us, end_us, t0, n, step_us):
    """How many of the requests ``rows`` are active at each grid point, as float64."""
    change = np.zeros(n + 1, np.int64)
    for r in rows:
        change[_grid_index(start_us[r], t0, step_us, n)] += 1
        change[_grid_index(end_us[r], t0, step_us, n)] -= 1
    out = np.empty(n)
    held = 0
    for i in range(n):
        held += change[i]
        out[i] = held
    return out


@njit(cache=True, nogil=True)
def device_extents(codes, ts, n_codes):
    """Each device code's sample count, first and last time (int64 extremes where it has none)."""
    count = np.zeros(n_codes, np.int64)
    first = np.full(n_codes, np.iinfo(np.int64).max)
    last = np.full(n_codes, np.iinfo(np.int64).min)
    for i in range(len(codes)):
        c = codes[i]
        count[c] += 1
        first[c] = min(first[c], ts[i])
        last[c] = max(last[c], ts[i])
    return count, first, last
