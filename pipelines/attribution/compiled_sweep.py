"""The compiled sweep loop (numba): one pass per device, merging three time-sorted event streams.

Per device, three streams that are each already in time order are merged as they are read: the power segments
(sorted by construction), the request starts and the request ends (two argsorts of the requests, skipped when they
come sorted). No event table is built or sorted. The loop integrates power between consecutive event times,
splitting at bucket boundaries, and keeps running sums that restart at every (device, bucket) segment,
compensated (Kahan) so that no digits are lost. D(t), the sum of active rates, is reset to exactly 0 whenever no
weighted request is active. ``engine_compiled.py`` prepares the arrays and calls ``run_sweep``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from pipelines.attribution.compiled_placement import inner_event, load_of


@njit(cache=True, inline="always")  # small helpers are inlined: a call costs more than they do
def _kahan(total, comp, x):
    y = x - comp
    t = total + y
    return t, (t - total) - y


@njit(cache=True, inline="always")
def _emit_piece(
    r,
    q,
    bucket,
    ge,
    ge_c,
    gs,
    gs_c,
    gu,
    gm,
    gm_c,
    r_rate,
    r_pieces_start,
    st_f,
    st_i,
    p_bucket,
    p_energy,
    p_share,
    p_unmet,
    p_unc,
):
    """Request r's piece in this bucket: its rate times the compensated growth of the segment sums since it began,
    which its slot q holds (st_f[q]: the sums ge, gs, gm and their compensations then; st_i[q]: gu then, and how
    many pieces it has had)."""
    k = r_pieces_start[r] + st_i[q, 1]
    p_bucket[k] = bucket
    p_energy[k] = r_rate[r] * ((ge - st_f[q, 0]) - (ge_c - st_f[q, 1]))
    p_unc[k] = r_rate[r] * ((gm - st_f[q, 4]) - (gm_c - st_f[q, 5]))
    p_share[k] = r_rate[r] * ((gs - st_f[q, 2]) - (gs_c - st_f[q, 3]))
    p_unmet[k] = (gu - st_i[q, 0]) / 1e6
    st_i[q, 1] += 1


@njit(cache=True, inline="always")
def _begin(st_f, st_i, q, ge, ge_c, gs, gs_c, gu, gm, gm_c, pieces_so_far):
    """Slot q starts at the current sums."""
    st_f[q, 0] = ge
    st_f[q, 1] = ge_c
    st_f[q, 2] = gs
    st_f[q, 3] = gs_c
    st_f[q, 4] = gm
    st_f[q, 5] = gm_c
    st_i[q, 0] = gu
    st_i[q, 1] = pieces_so_far


@njit(cache=True, inline="always")
def _close_bucket(s_dev, s_bucket, s_vals, k, dev, bucket, v_span, v_met, v_busy, v_unmet, e_met, e_busy, e_idle):
    s_dev[k] = dev
    s_bucket[k] = bucket
    s_vals[k, 0] = v_span
    s_vals[k, 1] = v_met
    s_vals[k, 2] = v_busy
    s_vals[k, 3] = v_unmet
    s_vals[k, 4] = e_met
    s_vals[k, 5] = e_busy
    s_vals[k, 6] = e_idle


# fmt: off
@njit(cache=True, nogil=True, parallel=True)
def run_sweep(g_first, g_a, g_b, g_p, g_m, find_m, g_scale, g_idle, exponent, r_first, order_s, order_e, s, e,
              r_rate, r_weighted, r_positive, r_pieces_start, r_npieces, bucket_us, seg_first, p_bucket, p_energy,
              p_share, p_unmet, p_unc, s_dev, s_bucket, s_vals, st_f, st_i, active, active_pos):
    # fmt: on
    """Merge, per device, three time-sorted streams (power segments, request starts, request ends) and integrate
    between consecutive event times. At one time, events apply in the order: segment off, segment on, starts, ends.
    Devices are 0..len(g_first)-2; g_first/r_first give each device's range in the segments and in
    order_s/order_e, seg_first its first device-bucket row. Energy from segments flagged in g_m (modeled shape)
    is summed apart too: each piece's share of it is its energy_uncertainty_j (p_unc); with find_m, a segment's flag
    is found here as the segment begins instead (a weighted request starts or ends strictly inside it, as
    compiled_placement.scan's n_in > 0; read by two more pointers that only move forward). A segment whose energy is
    placed by activity (g_scale not NaN: compiled_placement.py; g_scale and g_idle empty when none is) draws
    g_scale x D ** exponent while a weighted request runs and g_idle otherwise. An active request's state (the sums
    when it began or its last piece was made) lives in a slot (st_f, st_i), not per request: a device's slots are
    base..base + n_active, compacted as requests end. Devices share nothing (each writes its own requests' pieces,
    its own slots and its own rows), so they run in parallel."""
    ndev = len(g_first) - 1
    big = np.iinfo(np.int64).max

    for dev in prange(ndev):
        lo, hi = _device_extent(dev, g_first, g_a, g_b, r_first, order_s, order_e, s, e)
        if lo > hi:
            continue
        nseg = seg_first[dev]
        base = r_first[dev]  # the device's active requests are active[base:base + n_active], in slots the same
        n_active = 0
        k, k_end = g_first[dev], g_first[dev + 1]  # segment stream
        in_seg = False  # the head of the segment stream is g_b[k] (its end) when in_seg, else g_a[k]
        i_s, i_e, i_end = r_first[dev], r_first[dev], r_first[dev + 1]
        m_s, m_e = i_s, i_e  # find_m's pointers: the next weighted start and end after the current segment's start
        t_cur = lo
        bucket = t_cur // bucket_us
        ge = 0.0
        ge_c = 0.0
        gs = 0.0
        gs_c = 0.0
        gu = 0
        gm = 0.0
        gm_c = 0.0
        modeled = False
        placed = False
        scale = 0.0
        p_idle = 0.0
        # this bucket's span, metered, busy and unmetered seconds; metered, busy and idle energy
        v_span = v_met = v_busy = v_unmet = e_met = e_busy = e_idle = 0.0
        d_rate = 0.0
        inv_d = 0.0  # 1 / d_rate, kept beside it: a division per interval costs more than the sweep's adds
        cnt = 0
        cnt_w = 0
        power = 0.0
        metered = False
        while True:
            t_seg = big if k >= k_end else (g_b[k] if in_seg else g_a[k])
            t_start = s[order_s[i_s]] if i_s < i_end else big
            t_end = e[order_e[i_e]] if i_e < i_end else big
            t_next = min(t_seg, t_start, t_end)
            if t_next == big:
                break
            # integrate [t_cur, t_next), closing every bucket boundary reached on the way (events exactly at a
            # boundary belong to the new bucket)
            while True:
                b_end = (bucket + 1) * bucket_us
                if t_cur >= b_end:
                    # close the bucket: pieces of active requests, then the device-bucket row
                    for q in range(base, base + n_active):
                        _emit_piece(active[q], q, bucket, ge, ge_c, gs, gs_c, gu, gm, gm_c, r_rate, r_pieces_start,
                                    st_f, st_i, p_bucket, p_energy, p_share, p_unmet, p_unc)
                        _begin(st_f, st_i, q, 0.0, 0.0, 0.0, 0.0, 0, 0.0, 0.0, st_i[q, 1])
                    _close_bucket(
                        s_dev,
                        s_bucket,
                        s_vals,
                        nseg,
                        dev,
                        bucket,
                        v_span,
                        v_met,
                        v_busy,
                        v_unmet,
                        e_met,
                        e_busy,
                        e_idle,
                    )
                    nseg += 1
                    v_span = v_met = v_busy = v_unmet = e_met = e_busy = e_idle = 0.0
                    ge = 0.0
                    ge_c = 0.0
                    gs = 0.0
                    gs_c = 0.0
                    gu = 0
                    gm = 0.0
                    gm_c = 0.0
                    bucket += 1
                    continue
                if t_cur >= t_next:
                    break
                t1 = t_next if t_next < b_end else b_end
                dt_us = t1 - t_cur
                dt = dt_us / 1e6
                busy_w = cnt_w > 0
                v_span += dt
                if metered:
                    if not placed:
                        energy = power * dt
                    elif busy_w:
                        energy = scale * load_of(d_rate, exponent) * dt
                    else:
                        energy = p_idle * dt
                    v_met += dt
                    e_met += energy
                    if busy_w:
                        e_busy += energy
                        ge, ge_c = _kahan(ge, ge_c, energy * inv_d)
                        if modeled:
                            gm, gm_c = _kahan(gm, gm_c, energy * inv_d)
                    else:
                        e_idle += energy
                else:
                    v_unmet += dt
                    gu += dt_us
                if cnt > 0:
                    v_busy += dt
                if busy_w:
                    gs, gs_c = _kahan(gs, gs_c, dt * inv_d)
                t_cur = t1
            # the events at t_next: segment off, segment on, starts, ends
            if in_seg and k < k_end and g_b[k] == t_next:
                metered = False
                in_seg = False
                k += 1
            if not in_seg and k < k_end and g_a[k] == t_next:
                metered = True
                power = g_p[k]
                if find_m:
                    m_s, m_e, modeled = inner_event(t_next, g_b[k], m_s, m_e, i_end, order_s, order_e, s, e, r_weighted)
                else:
                    modeled = g_m[k]
                if len(g_scale):  # empty: no segment is placed
                    scale = g_scale[k]
                    placed = scale == scale  # not NaN
                    p_idle = g_idle[k]
                in_seg = True
            while i_s < i_end and s[order_s[i_s]] == t_next:
                j = order_s[i_s]
                if r_positive[j]:  # a zero-length request is never active: its piece is made at its end
                    d_rate += r_rate[j]
                    inv_d = 1.0 / d_rate if d_rate > 0 else 0.0
                    cnt += 1
                    if r_weighted[j]:
                        cnt_w += 1
                    q = base + n_active
                    _begin(st_f, st_i, q, ge, ge_c, gs, gs_c, gu, gm, gm_c, 0)
                    active[q] = j
                    active_pos[j] = n_active
                    n_active += 1
                i_s += 1
            while i_e < i_end and e[order_e[i_e]] == t_next:
                j = order_e[i_e]
                if not r_positive[j]:  # began at this instant: its sums have not moved (a free slot holds them)
                    q = base + n_active
                    _begin(st_f, st_i, q, ge, ge_c, gs, gs_c, gu, gm, gm_c, 0)
                    _emit_piece(j, q, bucket, ge, ge_c, gs, gs_c, gu, gm, gm_c, r_rate, r_pieces_start, st_f, st_i,
                                p_bucket, p_energy, p_share, p_unmet, p_unc)
                    i_e += 1
                    continue
                pos = active_pos[j]
                q = base + pos
                # a request ending exactly at a bucket boundary got its last piece at the close
                if st_i[q, 1] < r_npieces[j]:
                    _emit_piece(j, q, bucket, ge, ge_c, gs, gs_c, gu, gm, gm_c, r_rate, r_pieces_start, st_f, st_i,
                                p_bucket, p_energy, p_share, p_unmet, p_unc)
                cnt -= 1
                if r_weighted[j]:
                    cnt_w -= 1
                d_rate -= r_rate[j]
                if cnt_w == 0:
                    d_rate = 0.0  # no residue of the running sum survives an idle moment
                inv_d = 1.0 / d_rate if d_rate > 0 else 0.0
                n_active -= 1
                last = base + n_active  # the last slot moves into the freed one
                active[q] = active[last]
                active_pos[active[q]] = pos
                for c in range(6):  # element by element: a slice assignment in a prange body is a parfor
                    st_f[q, c] = st_f[last, c]
                st_i[q, 0] = st_i[last, 0]
                st_i[q, 1] = st_i[last, 1]
                i_e += 1
        # the device's last bucket
        _close_bucket(s_dev, s_bucket, s_vals, nseg, dev, bucket, v_span, v_met, v_busy, v_unmet, e_met, e_busy, e_idle)


@njit(cache=True, nogil=True)
def count_segments(g_first, g_a, g_b, r_first, order_s, order_e, s, e, bucket_us):
    """Device-bucket rows of each device: the buckets between its first and last event."""
    ndev = len(g_first) - 1
    counts = np.zeros(ndev, np.int64)
    for dev in range(ndev):
        lo, hi = _device_extent(dev, g_first, g_a, g_b, r_first, order_s, order_e, s, e)
        if lo <= hi:
            counts[dev] = hi // bucket_us - lo // bucket_us + 1
    return counts


@njit(cache=True, inline="always")
def _device_extent(dev, g_first, g_a, g_b, r_first, order_s, order_e, s, e):
    """First and last event time of a device (lo > hi when it has none)."""
    lo = np.iinfo(np.int64).max
    hi = np.iinfo(np.int64).min
    if g_first[dev + 1] > g_first[dev]:
        lo = g_a[g_first[dev]]
        hi = g_b[g_first[dev + 1] - 1]
    if r_first[dev + 1] > r_first[dev]:
        lo = min(lo, s[order_s[r_first[dev]]])
        hi = max(hi, e[order_e[r_first[dev + 1] - 1]])
    return lo, hi


@njit(cache=True, nogil=True)
def in_order(dev, t):
    for i in range(1, len(t)):
        if dev[i] < dev[i - 1] or (dev[i] == dev[i - 1] and t[i] < t[i - 1]):
            return False
    return True
