"""The compiled engine: the attribution sweep and the power segments as numba passes, same rule and outputs as the
numpy engine (engine_numpy.py).

This module prepares arrays and allocates every output with numpy; the compiled loops live in compiled_sweep.py
(the sweep) and compiled_segments.py (the segments).
"""

from __future__ import annotations

import numpy as np

from pipelines.attribution import compiled_placement
from pipelines.attribution.compiled_prepare import order_within_devices, piece_rows, prepare_requests
from pipelines.attribution.compiled_segments import build_segments, compact, is_clean
from pipelines.attribution.compiled_sweep import (
    count_segments,
    in_order,
    run_sweep,
)
from pipelines.attribution.engine_api import (
    Engine,
    GroupRequests,
    Placement,
    PowerSegments,
    SweepResult,
)
from pipelines.attribution.placement import MIN_QUIET_WINDOWS


def _readonly(*arrays):
    """Views that are read-only whatever the source (Arrow's zero-copy arrays are, numpy's copies are not): numba
    compiles one specialization per flag, and loading a second one costs as much as a small run."""
    out = []
    for a in arrays:
        v = a.view()
        v.flags.writeable = False
        out.append(v)
    return out


def _order_within_devices(dev: np.ndarray, t: np.ndarray, ndev: int) -> np.ndarray:
    """Row order by (device, time), stable: nothing to do when the rows are in order already; rows grouped by
    device (as the kernel passes them) are sorted device by device, in parallel; others by one packed argsort."""
    if len(t) == 0:
        return np.zeros(0, dtype=np.int64)
    if in_order(dev, t):
        return np.arange(len(t), dtype=np.int64)
    if bool(np.all(dev[1:] >= dev[:-1])):
        order = np.empty(len(t), dtype=np.int64)
        order_within_devices(np.searchsorted(dev, np.arange(ndev + 1)).astype(np.int64), t, order)
        return order
    t_min = int(t.min())
    span = int(t.max()) - t_min + 1
    if ndev * span < 2**62:
        return np.argsort(dev * span + (t - t_min), kind="stable").astype(np.int64, copy=False)
    return np.lexsort((t, dev)).astype(np.int64, copy=False)


def _as(a: np.ndarray, dtype) -> np.ndarray:
    return a.astype(dtype, copy=False)


def _prepared_requests(req: GroupRequests, bucket_us: int, ndev: int) -> dict:
    """Per request: rate, flags, pieces; the request rows in (device, start) and (device, end) order and each
    device's first row in them."""
    n = len(req.start_us)
    s, e, w, r_dev = _readonly(
        _as(req.start_us, np.int64), _as(req.end_us, np.int64), _as(req.weight, np.float64), _as(req.dev, np.int64)
    )
    rate, npieces, pieces_start = np.empty(n), np.empty(n, np.int64), np.empty(n, np.int64)
    weighted, positive = np.empty(n, np.bool_), np.empty(n, np.bool_)
    n_pieces = prepare_requests(s, e, w, np.int64(bucket_us), rate, weighted, positive, npieces, pieces_start)
    order_s = _order_within_devices(r_dev, s, ndev)
    order_e = _order_within_devices(r_dev, e, ndev)
    r_first = np.searchsorted(r_dev[order_s], np.arange(ndev + 1)).astype(np.int64)
    order_s, order_e = _readonly(order_s, order_e)
    return {
        "s": s,
        "e": e,
        "rate": rate,
        "weighted": weighted,
        "positive": positive,
        "npieces": npieces,
        "pieces_start": pieces_start,
        "n_pieces": n_pieces,
        "order_s": order_s,
        "order_e": order_e,
        "r_first": r_first,
    }


def place(r: dict, seg: PowerSegments, g_first: np.ndarray, placement: Placement):
    """placement.py's rule, compiled: per segment, whether its shape is modeled (None: the sweep finds it), and
    where it is placed its idle power and the scale of its active power (NaN: not placed), which the sweep applies
    as it integrates."""
    g_a, g_b, g_p = _readonly(_as(seg.start_us, np.int64), _as(seg.end_us, np.int64), _as(seg.power_w, np.float64))
    nseg, ndev = len(g_a), len(g_first) - 1
    if placement.rule != "activity" or seg.averaged is None or not seg.averaged.any():
        # nothing to place (instantaneous readings, or the flat rule): whether each segment's shape is modeled is
        # all the sweep needs, and it finds that itself as each segment begins (g_m None; no scale, no idle power)
        return None, None, None
    n_in, cnt_a, t_idle, load = np.empty(nseg, np.int64), np.empty(nseg, np.int64), np.empty(nseg), np.empty(nseg)
    args = (r["r_first"], r["order_s"], r["order_e"], r["s"], r["e"], r["rate"], r["weighted"])
    exponent = np.float64(placement.load_exponent)
    compiled_placement.scan(g_first, g_a, g_b, *args, exponent, n_in, cnt_a, t_idle, load)
    averaged = np.zeros(nseg, dtype=bool) if seg.averaged is None else seg.averaged
    inventory = np.full(ndev, np.nan) if placement.idle_w is None else _as(placement.idle_w, np.float64)
    g_m, g_scale, g_idle = np.empty(nseg, np.bool_), np.empty(nseg), np.empty(nseg)
    # fmt: off
    compiled_placement.finish(g_first, g_p, averaged, n_in, cnt_a, t_idle, load, g_b - g_a, inventory,
                              np.int64(MIN_QUIET_WINDOWS), placement.rule == "activity", g_m, g_scale, g_idle)
    # fmt: on
    return g_m, g_scale, g_idle


def sweep(
    req: GroupRequests, seg: PowerSegments, bucket_us: int, ndev: int, placement: Placement | None = None
) -> SweepResult:
    """Pieces and device-bucket rows of one device group (device codes 0..ndev-1), as the numpy sweep returns
    them, each window's energy first placed by activity unless placement is None. The power segments come sorted
    by device and time, as power_segments returns them."""
    n = len(req.start_us)
    r = _prepared_requests(req, bucket_us, ndev)
    g_a, g_b, g_p = _readonly(_as(seg.start_us, np.int64), _as(seg.end_us, np.int64), _as(seg.power_w, np.float64))
    g_first = np.searchsorted(_as(seg.dev, np.int64), np.arange(ndev + 1)).astype(np.int64)
    g_m, g_scale, g_idle = np.zeros(len(g_a), np.bool_), None, None  # no placement: nothing modeled or placed
    if placement is not None:
        g_m, g_scale, g_idle = place(r, seg, g_first, placement)
    exponent = np.float64(0.0 if placement is None else placement.load_exponent)
    find_m = g_m is None
    g_m = np.zeros(0, np.bool_) if find_m else g_m
    g_scale, g_idle = (np.zeros(0), np.zeros(0)) if g_scale is None else (g_scale, g_idle)
    g_m, g_scale, g_idle = _readonly(g_m, g_scale, g_idle)
    seg_counts = count_segments(
        g_first, g_a, g_b, r["r_first"], r["order_s"], r["order_e"], r["s"], r["e"], np.int64(bucket_us)
    )
    seg_first = np.concatenate(([0], np.cumsum(seg_counts)[:-1])).astype(np.int64)
    n_segments = int(seg_counts.sum())
    # outputs, allocated by numpy (huge pages) rather than inside the compiled code
    n_pieces = r["n_pieces"]
    p_bucket, p_energy = np.zeros(n_pieces, np.int64), np.zeros(n_pieces)
    p_share, p_unmet, p_unc = np.zeros(n_pieces), np.zeros(n_pieces), np.zeros(n_pieces)
    s_dev, s_bucket = np.zeros(n_segments, np.int64), np.zeros(n_segments, np.int64)
    s_vals = np.zeros((n_segments, 7))  # span, metered, busy, unmetered, metered_e, busy_e, idle_e
    # the active requests' state, in slots: a device's slots start at its first request row and it uses as many
    # as it has requests running at once (a few), so the pages of these arrays are mostly never touched
    st_f, st_i = np.empty((n, 6)), np.empty((n, 2), np.int64)
    active, active_pos = np.empty(n, np.int64), np.empty(n, np.int64)
    # the compiled pass takes its arguments positionally, in its own order; one per line would hide the order
    # fmt: off
    run_sweep(g_first, g_a, g_b, g_p, g_m, find_m, g_scale, g_idle, exponent, r["r_first"], r["order_s"], r["order_e"],
              r["s"], r["e"], r["rate"], r["weighted"], r["positive"], r["pieces_start"], r["npieces"],
              np.int64(bucket_us), seg_first, p_bucket, p_energy, p_share, p_unmet, p_unc, s_dev, s_bucket, s_vals,
              st_f, st_i, active, active_pos)
    # fmt: on
    row = np.empty(n_pieces, np.int64)
    piece_rows(r["npieces"], r["pieces_start"], row)
    return SweepResult(
        row=row,
        bucket=p_bucket,
        energy_j=p_energy,
        device_share_s=p_share,
        unmetered_s=p_unmet,
        energy_uncertainty_j=p_unc,
        seg_dev=s_dev,
        seg_bucket=s_bucket,
        span_s=s_vals[:, 0],
        metered_s=s_vals[:, 1],
        busy_s=s_vals[:, 2],
        seg_unmetered_s=s_vals[:, 3],
        metered_energy_j=s_vals[:, 4],
        busy_energy_j=s_vals[:, 5],
        idle_energy_j=s_vals[:, 6],
    )


def power_segments(dev, ts, power, window_us, max_gap_us) -> PowerSegments:
    """The same segments as engine_numpy.power_segments, compiled, from samples sorted by (device, ts): invalid
    powers dropped (counted), duplicates averaged, coverage as in compiled_segments, overlaps cut. Arrays are
    allocated here, by numpy (which asks the kernel for huge pages), not inside the compiled code."""
    dropped = 0
    dev, ts, power, window_us = _readonly(
        _as(dev, np.int64), _as(ts, np.int64), _as(power, np.float64), _as(window_us, np.int64)
    )
    if not is_clean(dev, ts, power):
        u_dev, u_ts = np.empty_like(dev), np.empty_like(ts)
        u_p, u_w = np.empty_like(power), np.empty_like(window_us)
        m, dropped = compact(dev, ts, power, window_us, u_dev, u_ts, u_p, u_w)
        dev, ts, power, window_us = _readonly(u_dev[:m], u_ts[:m], u_p[:m], u_w[:m])
    n = len(ts)
    out_dev, out_a, out_b = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    out_p, out_avg = np.empty(n), np.empty(n, np.bool_)
    k = build_segments(dev, ts, power, window_us, np.int64(max_gap_us), out_dev, out_a, out_b, out_p, out_avg)
    return PowerSegments(out_dev[:k], out_a[:k], out_b[:k], out_p[:k], int(dropped), averaged=out_avg[:k])


ENGINE = Engine("compiled", 1_000_000, power_segments, sweep)  # README "Two device groups at once"
