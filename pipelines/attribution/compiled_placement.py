"""Placing a window's energy by activity, compiled (numba): the same rule as placement.py (read its docstring).

Per device, the power segments (time-sorted) and the weighted request starts and ends (the sweep's two orders)
are walked together: ``scan`` finds, per segment, how many distinct event times fall strictly inside it, its
idle time and its active time weighted by load. From these ``engine_compiled.place`` derives each split segment's
idle power and the scale of its active power, and the sweep (compiled_sweep.py) applies them as it integrates:
power = scale x D ** exponent while a weighted request runs, the idle power otherwise. No sub-segment is written.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _skip(order, i, i_end, weighted):
    while i < i_end and not weighted[order[i]]:
        i += 1
    return i


@njit(cache=True, inline="always")
def _advance(t, i_s, i_e, i_end, order_s, order_e, s, e, rate, weighted, cnt, d):
    """Apply every weighted start, then every weighted end, at or before t: (i_s, i_e, active count, rate sum)."""
    i_s = _skip(order_s, i_s, i_end, weighted)
    while i_s < i_end and s[order_s[i_s]] <= t:
        cnt += 1
        d += rate[order_s[i_s]]
        i_s = _skip(order_s, i_s + 1, i_end, weighted)
    i_e = _skip(order_e, i_e, i_end, weighted)
    while i_e < i_end and e[order_e[i_e]] <= t:
        cnt -= 1
        d -= rate[order_e[i_e]]
        if cnt == 0:
            d = 0.0
        i_e = _skip(order_e, i_e + 1, i_end, weighted)
    return i_s, i_e, cnt, d


@njit(cache=True, inline="always")
def _next_time(i_s, i_e, i_end, order_s, order_e, s, e, weighted, cap):
    """The next weighted event time after the applied ones, at most cap."""
    t = cap
    j = _skip(order_s, i_s, i_end, weighted)
    if j < i_end and s[order_s[j]] < t:
        t = s[order_s[j]]
    j = _skip(order_e, i_e, i_end, weighted)
    if j < i_end and e[order_e[j]] < t:
        t = e[order_e[j]]
    return t


@njit(cache=True, inline="always")
def load_of(d, exponent):
    """An active stretch's load: D ** exponent (1 for exponent 0)."""
    if exponent == 0.0:
        return 1.0
    return max(d, 0.0) ** exponent


# fmt: off
@njit(cache=True, nogil=True, parallel=True)
def scan(g_first, g_a, g_b, r_first, order_s, order_e, s, e, rate, weighted, exponent, n_in, cnt_a, t_idle, load):
    # fmt: on
    """One pass per device over its segments and its weighted request events. Per segment: the distinct event
    times strictly inside it (n_in), the weighted requests active at its start (cnt_a), its time with none active
    (t_idle, us) and its active time weighted by D ** exponent (load, us)."""
    for dev in prange(len(g_first) - 1):
        i_s, i_e, i_end = r_first[dev], r_first[dev], r_first[dev + 1]
        cnt, d = 0, 0.0
        for k in range(g_first[dev], g_first[dev + 1]):
            a, b = g_a[k], g_b[k]
            i_s, i_e, cnt, d = _advance(a, i_s, i_e, i_end, order_s, order_e, s, e, rate, weighted, cnt, d)
            cnt_a[k] = cnt
            m = 0
            ti = 0.0
            ld = 0.0
            t0 = a
            while True:
                t1 = _next_time(i_s, i_e, i_end, order_s, order_e, s, e, weighted, b)
                if cnt > 0:
                    ld += (t1 - t0) * load_of(d, exponent)
                else:
                    ti += t1 - t0
                if t1 >= b:
                    break
                i_s, i_e, cnt, d = _advance(t1, i_s, i_e, i_end, order_s, order_e, s, e, rate, weighted, cnt, d)
                m += 1
                t0 = t1
            n_in[k] = m
            t_idle[k] = ti
            load[k] = ld


@njit(cache=True, inline="always")
def inner_event(a, b, m_s, m_e, i_end, order_s, order_e, s, e, weighted):
    """Whether a weighted request starts or ends strictly inside (a, b), the pointers moved past events at or
    before a: compiled_sweep.run_sweep's find_m, for a segment not placed by activity (scan's n_in > 0 for it)."""
    while m_s < i_end and (not weighted[order_s[m_s]] or s[order_s[m_s]] <= a):
        m_s += 1
    inside = m_s < i_end and s[order_s[m_s]] < b
    if not inside:
        while m_e < i_end and (not weighted[order_e[m_e]] or e[order_e[m_e]] <= a):
            m_e += 1
        inside = m_e < i_end and e[order_e[m_e]] < b
    return m_s, m_e, inside


# fmt: off
@njit(cache=True, nogil=True, parallel=True)
def finish(g_first, g_p, g_avg, n_in, cnt_a, t_idle, load, dt_us, inventory_idle, min_quiet, placed_rule, g_m,
           g_scale, g_idle):
    # fmt: on
    """Per device: its idle power (the median of its quiet windows' power when it has min_quiet of them, else the
    inventory's), then per segment whether its shape is modeled and, where the activity rule places it, its idle
    power (capped at its average) and the scale of its active power (NaN: not placed). placement.idle_per_device
    is the same estimate in numpy."""
    for dev in prange(len(g_first) - 1):
        lo, hi = g_first[dev], g_first[dev + 1]
        for k in range(lo, hi):
            g_m[k] = n_in[k] > 0
            g_scale[k] = np.nan
            g_idle[k] = 0.0
        if not placed_rule:
            continue
        n_quiet = 0
        for k in range(lo, hi):
            if g_avg[k] and cnt_a[k] == 0 and n_in[k] == 0:
                n_quiet += 1
        idle = inventory_idle[dev]
        if n_quiet >= min_quiet:
            quiet = np.empty(n_quiet)
            j = 0
            for k in range(lo, hi):
                if g_avg[k] and cnt_a[k] == 0 and n_in[k] == 0:
                    quiet[j] = g_p[k]
                    j += 1
            quiet.sort()
            idle = (quiet[(n_quiet - 1) // 2] + quiet[n_quiet // 2]) / 2
        if not np.isfinite(idle):
            continue
        for k in range(lo, hi):
            if n_in[k] > 0 and g_avg[k] and load[k] > 0:
                p_idle = min(idle, g_p[k])
                g_idle[k] = p_idle
                g_scale[k] = (g_p[k] * float(dt_us[k]) - p_idle * t_idle[k]) / load[k]
