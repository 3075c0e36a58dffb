"""Place a window's measured energy where the work was (README, "How energy is attributed").

A trailing average (``power_window_s = w > 0``) or an energy-counter delta measures how much energy a window used,
not where inside it. When the activity of a device changes inside such a window (a weighted request starts or
ends strictly inside it), the ``activity`` rule splits the window at those instants and gives:

* each sub-interval where no weighted request runs the device's idle power, capped at the window's average power
  (idle never takes more than its share of the window's energy, and no active stretch draws less than idle);
* the rest of the window's energy to the active sub-intervals, each in proportion to ``dt x D ** load_exponent``
  (D: the sum of the active requests' rates; exponent 0, the default: evenly over the active time).

Each window's energy is conserved (to rounding). A device's idle power is learned from its quiet windows (averaged
segments with no weighted request running): their median power when it has at least ``MIN_QUIET_WINDOWS``; else
the inventory's ``idle_w``; else it is unknown, and the device's windows stay flat. The ``flat`` rule keeps the
window's average throughout (the rule before placement); held instantaneous readings are never split.

Either way, a segment inside which the activity changes is marked ``modeled``: how its energy spreads over time is
a model, not a measurement, and what requests receive from it is their ``energy_uncertainty_j``.

Two implementations of the same rule: vectorized numpy here (the numpy engine) and compiled_placement.py (the
compiled engine); the idle estimate (``idle_per_device``) is shared. Pure numpy; imports no Dagster.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pipelines.attribution.arrays import US_PER_S
from pipelines.attribution.engine_api import GroupRequests, Placement, PowerSegments
from pipelines.attribution.running_sums import exclusive_segmented_cumsum

RULES = ("activity", "flat")
MIN_QUIET_WINDOWS = 10
"""quiet windows a device needs before its idle power is learned from them rather than taken from the inventory"""


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"placement must be one of {', '.join(RULES)}, not {rule!r}")
    return rule


def idle_per_device(q_dev: np.ndarray, q_power: np.ndarray, ndev: int, inventory_idle_w) -> np.ndarray:
    """Per device code: the median power of its quiet windows when it has MIN_QUIET_WINDOWS of them, else the
    inventory's idle_w (NaN when unknown)."""
    idle = np.full(ndev, np.nan) if inventory_idle_w is None else np.asarray(inventory_idle_w, np.float64).copy()
    if len(q_dev):
        order = np.lexsort((q_power, q_dev))
        q_power = q_power[order]
        counts = np.bincount(q_dev, minlength=ndev)
        first = np.cumsum(counts) - counts
        ok = counts >= MIN_QUIET_WINDOWS
        lo, hi = (first + (counts - 1) // 2)[ok], (first + counts // 2)[ok]
        idle[ok] = (q_power[lo] + q_power[hi]) / 2
    return idle


def _events(req: GroupRequests, t_min: int, span: int):
    """The distinct (device, time) keys at which a weighted request starts or ends, and the number of weighted
    requests active and the sum of their rates just after each."""
    s, e, w = req.start_us, req.end_us, req.weight
    positive = e > s
    rate = np.zeros(len(s))
    rate[positive] = w[positive] / ((e[positive] - s[positive]) / US_PER_S)
    wt = positive & (rate > 0)
    n = int(wt.sum())
    dev = np.concatenate((req.dev[wt], req.dev[wt])).astype(np.int64)
    keys = dev * span + (np.concatenate((s[wt], e[wt])) - t_min)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    cnt = np.cumsum(np.concatenate((np.ones(n, np.int64), -np.ones(n, np.int64)))[order])
    x = np.concatenate((rate[wt], -rate[wt]))[order]
    restart = np.ones(len(keys), dtype=bool)  # the rate sum restarts after every idle moment
    restart[1:] = cnt[:-1] == 0
    d = exclusive_segmented_cumsum(x, restart) + x if len(x) else x
    d[cnt == 0] = 0.0
    last = np.ones(len(keys), dtype=bool)
    last[:-1] = keys[1:] != keys[:-1]
    return keys[last], cnt[last], d[last]


def place(req: GroupRequests, seg: PowerSegments, ndev: int, placement: Placement) -> PowerSegments:
    """The segments with the energy of each averaged window placed by activity (``modeled`` set either way)."""
    if len(seg.start_us) == 0:
        return replace(seg, modeled=np.zeros(0, dtype=bool))
    all_t = [req.start_us, req.end_us, seg.start_us, seg.end_us]
    t_min = min(int(a.min()) for a in all_t if len(a))
    span = max(int(a.max()) for a in all_t if len(a)) - t_min + 1
    ukeys, ucnt, ud = _events(req, t_min, span)
    ka = seg.dev.astype(np.int64) * span + (seg.start_us - t_min)
    kb = seg.dev.astype(np.int64) * span + (seg.end_us - t_min)
    lo = np.searchsorted(ukeys, ka, side="right")
    n_in = np.searchsorted(ukeys, kb, side="left") - lo
    at = np.clip(lo - 1, 0, None)
    cnt_a = np.where(lo > 0, ucnt[at] if len(ukeys) else 0, 0)
    d_a = np.where(lo > 0, ud[at] if len(ukeys) else 0.0, 0.0)
    averaged = seg.averaged if seg.averaged is not None else np.zeros(len(ka), dtype=bool)
    modeled = n_in > 0
    quiet = averaged & (cnt_a == 0) & ~modeled
    if placement.rule == "flat":
        return replace(seg, modeled=modeled)
    idle = idle_per_device(seg.dev[quiet], seg.power_w[quiet], ndev, placement.idle_w)[seg.dev]
    split = modeled & averaged & np.isfinite(idle)
    if not split.any():
        return replace(seg, modeled=modeled)
    return _split(seg, split, lo, n_in, cnt_a, d_a, ukeys % span + t_min, ucnt, ud, idle, placement.load_exponent)


def _split(seg, split, lo, n_in, cnt_a, d_a, ut, ucnt, ud, idle, exponent) -> PowerSegments:
    """Each split segment cut at its events: idle sub-intervals at idle power (capped at the average), the rest of
    the window's energy over the active ones by dt x D ** exponent."""
    nsub = np.where(split, n_in + 1, 1)
    of = np.repeat(np.arange(len(nsub)), nsub)
    m = np.arange(int(nsub.sum())) - np.repeat(np.cumsum(nsub) - nsub, nsub)
    ev = np.clip(lo[of] + m - 1, 0, max(len(ut) - 1, 0))
    ev_next = np.clip(lo[of] + m, 0, max(len(ut) - 1, 0))
    first, last = m == 0, m == nsub[of] - 1
    a = np.where(first, seg.start_us[of], ut[ev] if len(ut) else 0)
    b = np.where(last, seg.end_us[of], ut[ev_next] if len(ut) else 0)
    cnt = np.where(first, cnt_a[of], ucnt[ev] if len(ut) else 0)
    d = np.where(first, d_a[of], ud[ev] if len(ut) else 0.0)
    dt = (b - a).astype(np.float64)
    active = cnt > 0
    f = np.ones(len(d)) if exponent == 0 else np.maximum(d, 0.0) ** exponent
    t_idle = np.bincount(of, weights=np.where(active, 0.0, dt), minlength=len(nsub))
    load = np.bincount(of, weights=np.where(active, dt * f, 0.0), minlength=len(nsub))
    p = seg.power_w
    p_idle = np.minimum(idle, p)
    e_active = p * (seg.end_us - seg.start_us).astype(np.float64) - p_idle * t_idle
    placed = split & (load > 0)
    safe_load = np.where(placed, load, 1.0)
    power = np.where(placed[of], np.where(active, e_active[of] * f / safe_load[of], p_idle[of]), p[of])
    return PowerSegments(
        seg.dev[of],
        a,
        b,
        power,
        seg.dropped,
        seg.counter_intervals,
        seg.counter_resets,
        averaged=None if seg.averaged is None else seg.averaged[of],
        modeled=(n_in > 0)[of],
    )
