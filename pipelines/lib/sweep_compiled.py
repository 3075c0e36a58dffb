"""The attribution sweep as one compiled pass per device group (numba), same rule and outputs as the numpy sweep.

Events (power segment ends and starts, request starts and ends) are sorted once by (device, time, kind); a single
loop then integrates power between consecutive event times, splitting at bucket boundaries, and keeps running
sums that restart at every (device, bucket) segment, compensated (Kahan) so that no digits are lost. D(t), the sum
of active rates, is reset to exactly 0 whenever no weighted request is active.
"""

from __future__ import annotations

import numpy as np
from numba import njit

SEG_OFF, SEG_ON, START, END = 0, 1, 2, 3


@njit(cache=True)
def _kahan(total, comp, x):
    y = x - comp
    t = total + y
    return t, (t - total) - y


@njit(cache=True)
def _emit_piece(r, bucket, ge, ge_c, gs, gs_c, gu, r_rate, r_pieces_start, r_next_piece, r_ge0, r_ge0c, r_gs0,
                r_gs0c, r_gu0, p_bucket, p_energy, p_share, p_unmet):
    """Request r's piece in this bucket: its rate times the compensated growth of the segment sums since it began."""
    k = r_pieces_start[r] + r_next_piece[r]
    p_bucket[k] = bucket
    p_energy[k] = r_rate[r] * ((ge - r_ge0[r]) - (ge_c - r_ge0c[r]))
    p_share[k] = r_rate[r] * ((gs - r_gs0[r]) - (gs_c - r_gs0c[r]))
    p_unmet[k] = (gu - r_gu0[r]) / 1e6
    r_next_piece[r] += 1


@njit(cache=True)
def _run(ev_dev, ev_t, ev_kind, ev_idx, r_rate, r_weighted, r_positive, r_pieces_start, r_npieces, g_p,
         bucket_us, n_pieces, n_segments):
    # outputs: pieces (indexed through r_pieces_start + piece number of the request) and device-bucket rows
    p_bucket = np.zeros(n_pieces, np.int64)
    p_energy = np.zeros(n_pieces)
    p_share = np.zeros(n_pieces)
    p_unmet = np.zeros(n_pieces)
    s_dev = np.zeros(n_segments, np.int64)
    s_bucket = np.zeros(n_segments, np.int64)
    s_vals = np.zeros((n_segments, 7))  # span, metered, busy, unmetered, metered_e, busy_e, idle_e
    nseg = 0
    n_req = len(r_rate)
    r_next_piece = np.zeros(n_req, np.int64)
    r_ge0 = np.zeros(n_req)
    r_ge0c = np.zeros(n_req)
    r_gs0 = np.zeros(n_req)
    r_gs0c = np.zeros(n_req)
    r_gu0 = np.zeros(n_req)
    active = np.empty(n_req, np.int64)
    active_pos = np.full(n_req, -1, np.int64)
    n_active = 0

    n = len(ev_t)
    i = 0
    while i < n:
        dev = ev_dev[i]
        t_cur = ev_t[i]
        bucket = t_cur // bucket_us
        # per (device, bucket) running values
        ge = 0.0
        ge_c = 0.0
        gs = 0.0
        gs_c = 0.0
        gu = 0
        vals = np.zeros(7)
        d_rate = 0.0
        cnt = 0
        cnt_w = 0
        power = 0.0
        metered = False
        while i < n and ev_dev[i] == dev:
            t_next = ev_t[i]
            # integrate [t_cur, t_next), closing every bucket boundary reached on the way (events exactly at a
            # boundary belong to the new bucket)
            while True:
                b_end = (bucket + 1) * bucket_us
                if t_cur >= b_end:
                    # close the bucket: pieces of active requests, then the device-bucket row
                    for a in range(n_active):
                        r = active[a]
                        _emit_piece(r, bucket, ge, ge_c, gs, gs_c, gu, r_rate, r_pieces_start, r_next_piece, r_ge0,
                                    r_ge0c, r_gs0, r_gs0c, r_gu0, p_bucket, p_energy, p_share, p_unmet)
                        r_ge0[r] = 0.0
                        r_ge0c[r] = 0.0
                        r_gs0[r] = 0.0
                        r_gs0c[r] = 0.0
                        r_gu0[r] = 0
                    s_dev[nseg] = dev
                    s_bucket[nseg] = bucket
                    s_vals[nseg, :] = vals
                    nseg += 1
                    vals[:] = 0.0
                    ge = 0.0
                    ge_c = 0.0
                    gs = 0.0
                    gs_c = 0.0
                    gu = 0
                    bucket += 1
                    continue
                if t_cur >= t_next:
                    break
                t1 = t_next if t_next < b_end else b_end
                dt_us = t1 - t_cur
                dt = dt_us / 1e6
                busy_w = cnt_w > 0
                vals[0] += dt
                if metered:
                    energy = power * dt
                    vals[1] += dt
                    vals[4] += energy
                    if busy_w:
                        vals[5] += energy
                        ge, ge_c = _kahan(ge, ge_c, energy / d_rate)
                    else:
                        vals[6] += energy
                else:
                    vals[3] += dt
                    gu += dt_us
                if cnt > 0:
                    vals[2] += dt
                if busy_w:
                    gs, gs_c = _kahan(gs, gs_c, dt / d_rate)
                t_cur = t1
            # apply every event at t_next (kinds sorted: segment off, segment on, start, end)
            while i < n and ev_dev[i] == dev and ev_t[i] == t_next:
                kind = ev_kind[i]
                j = ev_idx[i]
                if kind == SEG_OFF:
                    metered = False
                elif kind == SEG_ON:
                    metered = True
                    power = g_p[j]
                elif kind == START:
                    r_ge0[j] = ge
                    r_ge0c[j] = ge_c
                    r_gs0[j] = gs
                    r_gs0c[j] = gs_c
                    r_gu0[j] = gu
                    if r_positive[j]:
                        d_rate += r_rate[j]
                        cnt += 1
                        if r_weighted[j]:
                            cnt_w += 1
                        active[n_active] = j
                        active_pos[j] = n_active
                        n_active += 1
                else:  # END (a request ending exactly at a bucket boundary got its last piece at the close)
                    if r_next_piece[j] < r_npieces[j]:
                        _emit_piece(j, bucket, ge, ge_c, gs, gs_c, gu, r_rate, r_pieces_start, r_next_piece, r_ge0,
                                    r_ge0c, r_gs0, r_gs0c, r_gu0, p_bucket, p_energy, p_share, p_unmet)
                    if r_positive[j]:
                        cnt -= 1
                        if r_weighted[j]:
                            cnt_w -= 1
                        d_rate -= r_rate[j]
                        if cnt_w == 0:
                            d_rate = 0.0  # no residue of the running sum survives an idle moment
                        pos = active_pos[j]
                        last = active[n_active - 1]
                        active[pos] = last
                        active_pos[last] = pos
                        n_active -= 1
                        active_pos[j] = -1
                i += 1
        # the device's last bucket
        s_dev[nseg] = dev
        s_bucket[nseg] = bucket
        s_vals[nseg, :] = vals
        nseg += 1
    return p_bucket, p_energy, p_share, p_unmet, s_dev[:nseg], s_bucket[:nseg], s_vals[:nseg]


def sweep(r_dev, s, e, w, g_dev, g_a, g_b, g_p, bucket_us):
    """Pieces and device-bucket rows of one device group, as the numpy sweep returns them (less the counters)."""
    n = len(s)
    positive = e > s
    length_s = (e - s) / 1e6
    rate = np.zeros(n)
    rate[positive] = w[positive] / length_s[positive]
    weighted = positive & (rate > 0)
    first_b = s // bucket_us
    last_b = np.where(positive, (e - 1) // bucket_us, first_b)
    npieces = last_b - first_b + 1
    pieces_start = np.concatenate(([0], np.cumsum(npieces)[:-1])).astype(np.int64)
    n_pieces = int(npieces.sum())
    ng = len(g_a)
    ev_dev = np.concatenate([r_dev, r_dev, g_dev, g_dev]).astype(np.int64)
    ev_t = np.concatenate([s, e, g_a, g_b]).astype(np.int64)
    ev_kind = np.concatenate([np.full(n, START), np.full(n, END), np.full(ng, SEG_ON),
                              np.full(ng, SEG_OFF)]).astype(np.int64)
    ev_idx = np.concatenate([np.arange(n), np.arange(n), np.arange(ng), np.arange(ng)]).astype(np.int64)
    if len(ev_t):
        # one argsort of packed (device, time, kind) keys; lexsort on three arrays is several times slower
        t_min = int(ev_t.min())
        span = int(ev_t.max()) - t_min + 1
        if (int(ev_dev.max()) + 1) * span * 4 < 2**62:
            order = np.argsort(((ev_dev * span + (ev_t - t_min)) << 2) | ev_kind)
        else:
            order = np.lexsort((ev_kind, ev_t, ev_dev))
    else:
        order = np.zeros(0, dtype=np.int64)
    ev_dev, ev_t, ev_kind, ev_idx = ev_dev[order], ev_t[order], ev_kind[order].astype(np.int64), ev_idx[order]
    # device-bucket rows: at most (buckets spanned by each device's events) in all
    if len(ev_t):
        starts = np.flatnonzero(np.concatenate(([True], ev_dev[1:] != ev_dev[:-1])))
        ends = np.concatenate((starts[1:], [len(ev_t)])) - 1
        n_segments = int(np.sum(ev_t[ends] // bucket_us - ev_t[starts] // bucket_us + 1))
    else:
        n_segments = 0
    p_bucket, p_energy, p_share, p_unmet, s_dev, s_bucket, s_vals = _run(
        ev_dev, ev_t, ev_kind, ev_idx, rate, weighted, positive, pieces_start, npieces.astype(np.int64),
        g_p.astype(np.float64),
        np.int64(bucket_us), n_pieces, n_segments)
    row = np.repeat(np.arange(n), npieces)
    return {
        "row": row, "bucket": p_bucket, "energy_j": p_energy, "device_share_s": p_share, "unmetered_s": p_unmet,
        "seg_dev": s_dev, "seg_bucket": s_bucket, "span_s": s_vals[:, 0], "metered_s": s_vals[:, 1],
        "busy_s": s_vals[:, 2], "seg_unmetered_s": s_vals[:, 3], "metered_energy_j": s_vals[:, 4],
        "busy_energy_j": s_vals[:, 5], "idle_energy_j": s_vals[:, 6],
    }
