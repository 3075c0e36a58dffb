"""An independent, slow reference of the attribution rule: per device, per elementary interval, plain loops.

Written from the rule's text (README, "How energy is attributed"), not from the kernel: it scans samples and
requests for every interval instead of sweeping with prefix sums, and places each averaged window's energy by
looking at which requests run at the middle of each of its pieces. For small inputs only.
"""

from __future__ import annotations

import math
from collections import defaultdict

MIN_QUIET_WINDOWS = 10


def _median(values):
    v = sorted(values)
    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2


def _placed(segs, reqs, placement, inventory_idle, load_exponent):
    """segs: (a, b, p, averaged) of one device; reqs: its requests. Returns (a, b, p, modeled) pieces: a window
    with a weighted request starting or ending strictly inside is modeled; with the activity rule an averaged one
    is cut there, idle pieces at the idle power (at most the window's average), the rest by dt x D ** exponent."""
    weighted = [r for r in reqs if r[3] > r[2] and r[4] > 0]

    def inside(a, b):
        return sorted({t for r in weighted for t in (r[2], r[3]) if a < t < b})

    def rates_at(t):
        return [r[4] / (r[3] - r[2]) for r in weighted if r[2] <= t < r[3]]

    quiet = [p for a, b, p, avg in segs if avg and not any(r[2] < b and r[3] > a for r in weighted)]
    idle = _median(quiet) if len(quiet) >= MIN_QUIET_WINDOWS else inventory_idle
    out = []
    for a, b, p, avg in segs:
        cuts = inside(a, b)
        if not cuts or not avg or placement == "flat" or idle is None:
            out.append((a, b, p, bool(cuts)))
            continue
        edges = [a, *cuts, b]
        pieces = [(t0, t1, rates_at((t0 + t1) / 2)) for t0, t1 in zip(edges, edges[1:])]
        p_idle = min(idle, p)
        t_idle = sum(t1 - t0 for t0, t1, rates in pieces if not rates)
        load = sum((t1 - t0) * sum(rates) ** load_exponent for t0, t1, rates in pieces if rates)
        rest = p * (b - a) - p_idle * t_idle
        for t0, t1, rates in pieces:
            out.append((t0, t1, rest * sum(rates) ** load_exponent / load if rates else p_idle, True))
    return out


def reference_attribution(
    requests, samples, *, max_gap_s=5.0, bucket_s=3600, placement="activity", idle_w=None, load_exponent=0.0
):
    """requests: list of (request_id, device_id, start_s, end_s, weight); samples: (device_id, ts_s, power_w,
    window_s). Times are float seconds; idle_w: {device_id: inventory idle W}. Returns (energy by request_id, idle
    by device, metered by device, unmetered seconds by request_id, energy_uncertainty_j by request_id)."""
    by_dev = defaultdict(list)
    for d, ts, p, w in samples:
        if p is None or not math.isfinite(p) or p < 0:
            continue
        by_dev[d].append((ts, p, w))
    segments = defaultdict(list)  # device -> [(a, b, p)]
    for d, rows in by_dev.items():
        merged = {}
        for ts, p, w in rows:
            merged.setdefault(ts, []).append((p, w))
        pts = sorted((ts, sum(p for p, _ in v) / len(v), max(w for _, w in v)) for ts, v in merged.items())

        def own_start(i, pts=pts):
            ts, _, w = pts[i]
            if w > 0:
                return pts[i - 1][0] if i > 0 and ts - pts[i - 1][0] <= max_gap_s else ts - w
            return ts

        prev_end = -math.inf
        for i, (ts, p, w) in enumerate(pts):
            if w > 0:
                a, b = own_start(i), ts
            else:
                a = ts
                # hold until the next sample or what it covers, at most max_gap
                b = min(own_start(i + 1), ts + max_gap_s) if i + 1 < len(pts) else ts
            a = max(a, prev_end)
            prev_end = b
            if b > a:
                segments[d].append((a, b, p, w > 0))
        segments[d] = _placed(
            segments[d], [r for r in requests if r[1] == d], placement, (idle_w or {}).get(d), load_exponent
        )

    def power_at(d, t):
        for a, b, p, modeled in segments[d]:
            if a <= t < b:
                return p, modeled
        return None, False

    energy = defaultdict(float)
    uncertainty = defaultdict(float)
    unmetered = defaultdict(float)
    idle = defaultdict(float)
    metered = defaultdict(float)
    devices = set(segments) | {r[1] for r in requests}
    for d in devices:
        reqs = [r for r in requests if r[1] == d]
        pts = set()
        for _, _, s, e, _ in reqs:
            pts.update((s, e))
        for a, b, *_ in segments[d]:
            pts.update((a, b))
        if not pts:
            continue
        lo, hi = min(pts), max(pts)
        k = math.floor(lo / bucket_s) + 1
        while k * bucket_s < hi:
            pts.add(k * bucket_s)
            k += 1
        pts = sorted(pts)
        for t0, t1 in zip(pts, pts[1:]):
            mid = (t0 + t1) / 2
            p, modeled = power_at(d, mid)
            active = [r for r in reqs if r[2] <= mid < r[3] and r[3] > r[2]]
            rates = {r[0]: r[4] / (r[3] - r[2]) for r in active}
            total_rate = sum(rates.values())
            if p is None:
                for r in active:
                    unmetered[r[0]] += t1 - t0
                continue
            e_int = p * (t1 - t0)
            metered[d] += e_int
            if total_rate > 0:
                for rid, rate in rates.items():
                    energy[rid] += e_int * rate / total_rate
                    if modeled:
                        uncertainty[rid] += e_int * rate / total_rate
            else:
                idle[d] += e_int
    return dict(energy), dict(idle), dict(metered), dict(unmetered), dict(uncertainty)
