"""The numpy engine: power segments and the attribution sweep as vectorized passes over packed (device, time) keys.

The sweep sorts every breakpoint of a device group (request starts and ends, segment starts and ends, bucket
boundaries) as one array of keys ``device * span + time``; elementary interval j is [keys[j], keys[j+1]). Running
sums restart at every (device, bucket) segment so that no long running sum loses digits. Its arrays grow with the
events of a group, hence smaller groups than the compiled engine. Pure numpy; imports no Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.attribution.arrays import US_PER_S
from pipelines.attribution.engine_api import (
    Engine,
    GroupRequests,
    Placement,
    PowerSegments,
    SweepResult,
)
from pipelines.attribution.placement import place
from pipelines.attribution.running_sums import exclusive_segmented_cumsum

__all__ = ["ENGINE", "exclusive_segmented_cumsum", "power_segments", "sweep"]


def power_segments(dev, ts, power, window_us, max_gap_us) -> PowerSegments:
    """Segments from samples sorted by (device, ts): invalid powers dropped (counted), duplicates averaged with the
    widest window kept, each sample's coverage (module docstring of kernel.py), overlaps cut."""
    valid = np.isfinite(power) & (power >= 0)
    dropped = int(np.count_nonzero(~valid))
    dev, ts, power, window_us = dev[valid], ts[valid], power[valid], window_us[valid]
    if len(ts):
        new = np.ones(len(ts), dtype=bool)
        new[1:] = (dev[1:] != dev[:-1]) | (ts[1:] != ts[:-1])
        if not new.all():  # average duplicates, keep the widest window
            g = np.cumsum(new) - 1
            power = np.bincount(g, weights=power) / np.bincount(g)
            window_us = np.maximum.reduceat(window_us, np.flatnonzero(new))
            dev, ts = dev[new], ts[new]
    n = len(ts)
    same_prev = np.zeros(n, dtype=bool)
    same_prev[1:] = dev[1:] == dev[:-1]
    same_next = np.zeros(n, dtype=bool)
    same_next[:-1] = same_prev[1:]
    prev_ts = np.where(same_prev, np.roll(ts, 1), np.iinfo(np.int64).min // 2)
    next_ts = np.where(same_next, np.roll(ts, -1), ts)
    trailing = window_us > 0
    # trailing average: back to the previous sample if close enough, else its own window
    start = np.where(trailing, np.where(ts - prev_ts <= max_gap_us, prev_ts, ts - window_us), ts)
    # instantaneous: hold forward until the next sample (or the start of what the next sample covers), at most
    # max_gap: a measured average (or counter interval) takes precedence over a held reading
    next_start = np.where(same_next, np.roll(start, -1), ts)
    end = np.where(trailing, ts, np.minimum(np.minimum(next_ts, next_start), ts + max_gap_us))
    prev_end = np.where(same_prev, np.roll(end, 1), np.iinfo(np.int64).min // 2)
    start = np.maximum(start, prev_end)
    keep = end > start
    return PowerSegments(dev[keep], start[keep], end[keep], power[keep], dropped, averaged=trailing[keep])


def _bucket_edges(dev_min: np.ndarray, dev_max: np.ndarray, bucket_us: int) -> tuple[np.ndarray, np.ndarray]:
    """Interior bucket boundaries (dev index, time) for each device between its first and last breakpoint."""
    lo = dev_min // bucket_us + 1
    hi = (dev_max - 1) // bucket_us  # boundaries strictly inside (min, max)
    counts = np.maximum(hi - lo + 1, 0)
    dev = np.repeat(np.arange(len(dev_min)), counts)
    offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return dev, (np.repeat(lo, counts) + offs) * bucket_us


@dataclass(frozen=True)
class _Breakpoints:
    """The sorted, distinct breakpoint keys of a group and what each elementary interval [keys[j], keys[j+1]) is."""

    t_min: int
    span: int
    keys: np.ndarray
    dev: np.ndarray
    bucket: np.ndarray
    dt: np.ndarray
    """length of elementary interval j in us (0 at a device's last key)"""
    seg_start: np.ndarray
    """True where a (device, bucket) segment begins"""

    def key(self, d: np.ndarray, t: np.ndarray) -> np.ndarray:
        return _pack(d, t, self.t_min, self.span)


def _pack(d: np.ndarray, t: np.ndarray, t_min: int, span: int) -> np.ndarray:
    """Packed (device, time) keys, in the order of device then time."""
    return d.astype(np.int64) * span + (t - t_min)


def _breakpoints(req: GroupRequests, seg: PowerSegments, ndev: int, bucket_us: int) -> _Breakpoints:
    s, e = req.start_us, req.end_us
    all_t = [s, e, seg.start_us, seg.end_us]
    t_min = min((int(a.min()) for a in all_t if len(a)), default=0)
    t_min = (t_min // bucket_us) * bucket_us  # keep bucket boundaries representable
    t_max = max((int(a.max()) for a in all_t if len(a)), default=0)
    span = t_max - t_min + 1
    if ndev and span * ndev >= 2**62:
        raise ValueError("input too wide for packed keys: split it by device or day (partition it)")
    # per-device extent of breakpoints, then interior bucket boundaries
    dev_min = np.full(ndev, np.iinfo(np.int64).max)
    dev_max = np.full(ndev, np.iinfo(np.int64).min)
    for d, t in ((req.dev, s), (req.dev, e), (seg.dev, seg.start_us), (seg.dev, seg.end_us)):
        np.minimum.at(dev_min, d, t)
        np.maximum.at(dev_max, d, t)
    has = dev_min <= dev_max
    bd, bt = _bucket_edges(dev_min[has], dev_max[has], bucket_us)
    bd = np.flatnonzero(has)[bd]
    keys = np.sort(
        np.concatenate(
            [
                _pack(d, t, t_min, span)
                for d, t in ((req.dev, s), (req.dev, e), (seg.dev, seg.start_us), (seg.dev, seg.end_us), (bd, bt))
            ]
        )
    )
    if len(keys) > 1:  # unique without np.unique's hashing (several times slower than a sort here)
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    k_dev = keys // span
    k_bucket = np.floor_divide(keys % span + t_min, bucket_us)
    nk = len(keys)
    dt = np.zeros(nk, dtype=np.int64)
    if nk > 1:
        same = k_dev[1:] == k_dev[:-1]
        dt[:-1] = np.where(same, keys[1:] - keys[:-1], 0)
    seg_start = np.ones(nk, dtype=bool)
    seg_start[1:] = (k_dev[1:] != k_dev[:-1]) | (k_bucket[1:] != k_bucket[:-1])
    return _Breakpoints(t_min, span, keys, k_dev, k_bucket, dt, seg_start)


def _interval_power(bp: _Breakpoints, seg: PowerSegments) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whether each elementary interval is metered, its power, and whether its power's shape is modeled."""
    seg_a_key = bp.key(seg.dev, seg.start_us)
    seg_b_key = bp.key(seg.dev, seg.end_us)
    idx = np.searchsorted(seg_a_key, bp.keys, side="right") - 1
    idx_c = np.clip(idx, 0, None)
    if len(seg_a_key):
        metered = (idx >= 0) & (bp.keys < seg_b_key[idx_c]) & (bp.dt > 0)
        modeled = metered & seg.modeled[idx_c] if seg.modeled is not None else np.zeros(len(bp.keys), dtype=bool)
        return metered, np.where(metered, seg.power_w[idx_c], 0.0), modeled
    none = np.zeros(len(bp.keys), dtype=bool)
    return none, np.zeros(len(bp.keys)), none


@dataclass(frozen=True)
class _Activity:
    """Per request: rate (weight per second), position of its start and end among the keys; per elementary
    interval: active requests, active weighted requests, D(t)."""

    rate: np.ndarray
    positive: np.ndarray
    pos_s: np.ndarray
    pos_e: np.ndarray
    cnt: np.ndarray
    cnt_w: np.ndarray
    d_rate: np.ndarray


def _activity(req: GroupRequests, bp: _Breakpoints) -> _Activity:
    s, e, w = req.start_us, req.end_us, req.weight
    nk = len(bp.keys)
    length_s = (e - s) / US_PER_S
    positive = e > s
    rate = np.zeros(len(s))
    rate[positive] = w[positive] / length_s[positive]
    pos_s = np.searchsorted(bp.keys, bp.key(req.dev, s))
    pos_e = np.searchsorted(bp.keys, bp.key(req.dev, e))
    weighted = positive & (rate > 0)
    cnt = np.cumsum(np.bincount(pos_s[positive], minlength=nk) - np.bincount(pos_e[positive], minlength=nk))
    cnt_w = np.cumsum(np.bincount(pos_s[weighted], minlength=nk) - np.bincount(pos_e[weighted], minlength=nk))
    d_rate = np.cumsum(np.bincount(pos_s, weights=rate, minlength=nk) - np.bincount(pos_e, weights=rate, minlength=nk))
    return _Activity(rate, positive, pos_s, pos_e, cnt, cnt_w, d_rate)


def _pieces(req: GroupRequests, bp: _Breakpoints, act: _Activity, bucket_us: int, increments: dict) -> dict:
    """One piece per (request row, bucket) it overlaps: its rate times the growth of each running sum over it.
    ``increments`` maps a piece column to (exclusive running sum, increment) per elementary interval."""
    s, e = req.start_us, req.end_us
    first_b = s // bucket_us
    last_b = np.where(act.positive, (e - 1) // bucket_us, first_b)
    npieces = last_b - first_b + 1
    row = np.repeat(np.arange(len(s)), npieces)
    b = np.repeat(first_b, npieces) + (np.arange(npieces.sum()) - np.repeat(np.cumsum(npieces) - npieces, npieces))
    ps = np.maximum(s[row], b * bucket_us)
    pe = np.minimum(e[row], (b + 1) * bucket_us)
    # a piece that starts (ends) where its request does reuses the request's position; only the bucket edges of
    # requests that cross a bucket boundary are searched
    p_lo = act.pos_s[row]
    p_hi = act.pos_e[row]
    inner_lo = ps != s[row]
    inner_hi = pe != e[row]
    if inner_lo.any():
        p_lo[inner_lo] = np.searchsorted(bp.keys, bp.key(req.dev[row][inner_lo], ps[inner_lo]))
    if inner_hi.any():
        p_hi[inner_hi] = np.searchsorted(bp.keys, bp.key(req.dev[row][inner_hi], pe[inner_hi]))
    has_len = p_hi > p_lo
    last_in = np.where(has_len, p_hi - 1, p_lo)  # last elementary interval inside the piece

    def growth(g, x):
        return np.where(has_len, (g[last_in] + x[last_in]) - g[p_lo], 0)

    out = {"row": row, "bucket": b}
    for name, (g, x) in increments.items():
        out[name] = growth(g, x)
    return out


def sweep(
    req: GroupRequests, seg: PowerSegments, bucket_us: int, ndev: int, placement: Placement | None = None
) -> SweepResult:
    """The attribution of one group of devices (device codes 0..ndev-1), each window's energy first placed by
    activity (placement.py) unless placement is None."""
    if placement is not None:
        seg = place(req, seg, ndev, placement)
    bp = _breakpoints(req, seg, ndev, bucket_us)
    metered, power, modeled = _interval_power(bp, seg)
    act = _activity(req, bp)
    busy_w = (act.cnt_w > 0) & (bp.dt > 0)
    safe_d = np.where(busy_w, act.d_rate, 1.0)
    dt_s = bp.dt / US_PER_S
    energy = power * dt_s
    x_energy = np.where(busy_w & metered, energy / safe_d, 0.0)
    x_share = np.where(busy_w, dt_s / safe_d, 0.0)
    x_modeled = np.where(modeled, x_energy, 0.0)
    unmetered_us = np.where(metered, 0, bp.dt)
    pieces = _pieces(
        req,
        bp,
        act,
        bucket_us,
        {
            "energy_j": (exclusive_segmented_cumsum(x_energy, bp.seg_start), x_energy),
            "device_share_s": (exclusive_segmented_cumsum(x_share, bp.seg_start), x_share),
            "energy_uncertainty_j": (exclusive_segmented_cumsum(x_modeled, bp.seg_start), x_modeled),
            "unmetered_us": (np.cumsum(unmetered_us) - unmetered_us, unmetered_us),  # exact in int64
        },
    )
    rate = act.rate[pieces["row"]]
    # per (device, bucket) totals
    seg_id = np.cumsum(bp.seg_start) - 1
    nseg = int(seg_id[-1]) + 1 if len(bp.keys) else 0
    first = np.flatnonzero(bp.seg_start)

    def seg_sum(v):
        return np.bincount(seg_id, weights=v, minlength=nseg)

    busy = (act.cnt > 0) & (bp.dt > 0)
    return SweepResult(
        row=pieces["row"],
        bucket=pieces["bucket"],
        energy_j=rate * pieces["energy_j"],
        device_share_s=rate * pieces["device_share_s"],
        unmetered_s=pieces["unmetered_us"] / US_PER_S,
        energy_uncertainty_j=rate * pieces["energy_uncertainty_j"],
        seg_dev=bp.dev[first],
        seg_bucket=bp.bucket[first],
        span_s=seg_sum(dt_s),
        metered_s=seg_sum(np.where(metered, dt_s, 0.0)),
        busy_s=seg_sum(np.where(busy, dt_s, 0.0)),
        seg_unmetered_s=seg_sum(unmetered_us / US_PER_S),
        metered_energy_j=seg_sum(energy),
        busy_energy_j=seg_sum(np.where(busy_w, energy, 0.0)),
        idle_energy_j=seg_sum(np.where(busy_w, 0.0, energy)),
    )


ENGINE = Engine("numpy", 4_000_000, power_segments, sweep)
