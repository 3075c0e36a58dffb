"""Placing a window's energy by activity, compiled (numba): the same rule as placement.py (read its docstring).

Per device, the power segments (time-sorted) and the weighted request starts and ends (the sweep's two orders)
are walked together. ``scan`` finds, per segment, the activity at its start and how many distinct event times
fall strictly inside it; ``place`` writes the sub-segments. ``engine_compiled.place`` allocates the arrays.
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


# fmt: off
@njit(cache=True, parallel=True)
def scan(g_first, g_a, g_b, r_first, order_s, order_e, s, e, rate, weighted, n_in, cnt_a):
    # fmt: on
    """Per segment: the distinct event times strictly inside it (n_in) and the weighted requests active at its
    start (cnt_a)."""
    for dev in prange(len(g_first) - 1):
        i_s, i_e, i_end = r_first[dev], r_first[dev], r_first[dev + 1]
        cnt, d = 0, 0.0
        for k in range(g_first[dev], g_first[dev + 1]):
            i_s, i_e, cnt, d = _advance(g_a[k], i_s, i_e, i_end, order_s, order_e, s, e, rate, weighted, cnt, d)
            cnt_a[k] = cnt
            js, je, c, dd = i_s, i_e, cnt, d
            m = 0
            t = _next_time(js, je, i_end, order_s, order_e, s, e, weighted, g_b[k])
            while t < g_b[k]:
                m += 1
                js, je, c, dd = _advance(t, js, je, i_end, order_s, order_e, s, e, rate, weighted, c, dd)
                t = _next_time(js, je, i_end, order_s, order_e, s, e, weighted, g_b[k])
            n_in[k] = m


@njit(cache=True, inline="always")
def _load(d, exponent):
    if exponent == 0.0:
        return 1.0
    return max(d, 0.0) ** exponent


# fmt: off
@njit(cache=True, parallel=True)
def place(g_first, g_a, g_b, g_p, r_first, order_s, order_e, s, e, rate, weighted, n_in, split, idle, exponent,
          out_first, o_dev, o_a, o_b, o_p, o_m):
    # fmt: on
    """Write each segment, or its sub-segments when split: idle power (capped at the window's average) where no
    weighted request runs, the rest of the window's energy over the active ones by dt x D ** exponent."""
    for dev in prange(len(g_first) - 1):
        i_s, i_e, i_end = r_first[dev], r_first[dev], r_first[dev + 1]
        cnt, d = 0, 0.0
        for k in range(g_first[dev], g_first[dev + 1]):
            a, b, p, o = g_a[k], g_b[k], g_p[k], out_first[k]
            i_s, i_e, cnt, d = _advance(a, i_s, i_e, i_end, order_s, order_e, s, e, rate, weighted, cnt, d)
            if not split[k]:
                o_dev[o], o_a[o], o_b[o], o_p[o], o_m[o] = dev, a, b, p, n_in[k] > 0
                continue
            t_idle = 0.0
            load = 0.0
            js, je, c, dd, t0 = i_s, i_e, cnt, d, a
            while t0 < b:
                t1 = _next_time(js, je, i_end, order_s, order_e, s, e, weighted, b)
                if c > 0:
                    load += (t1 - t0) * _load(dd, exponent)
                else:
                    t_idle += t1 - t0
                js, je, c, dd = _advance(t1, js, je, i_end, order_s, order_e, s, e, rate, weighted, c, dd)
                t0 = t1
            p_idle = min(idle[dev], p)
            e_active = p * float(b - a) - p_idle * t_idle
            js, je, c, dd, t0 = i_s, i_e, cnt, d, a
            while t0 < b:
                t1 = _next_time(js, je, i_end, order_s, order_e, s, e, weighted, b)
                if load <= 0.0:
                    power = p
                elif c > 0:
                    power = e_active * _load(dd, exponent) / load
                else:
                    power = p_idle
                o_dev[o], o_a[o], o_b[o], o_p[o], o_m[o] = dev, t0, t1, power, True
                o += 1
                js, je, c, dd = _advance(t1, js, je, i_end, order_s, order_e, s, e, rate, weighted, c, dd)
                t0 = t1
