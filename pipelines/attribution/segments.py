"""Power segments from telemetry samples: sorted, energy counters applied, then built by an engine.

The rule (kernel.py's module docstring): a sample with ``power_window_s == 0`` holds until the next sample of its
device, at most ``max_gap``; a trailing average covers the time since the previous sample (within ``max_gap``) or
its own window; an energy-counter delta between two consecutive samples at most ``max_gap`` apart makes the
sample a trailing average over exactly that interval. Used by the kernel and the clock-skew check. Pure numpy;
imports no Dagster.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pipelines.attribution.arrays import US_PER_S
from pipelines.attribution.engine_api import Engine, PowerSegments
from pipelines.attribution.engines import get_engine


def apply_counters(dev, ts, power, window_us, counter, max_gap_us):
    """On samples sorted by (device, ts): where two consecutive counters of a device give a non-negative delta over
    at most max_gap, replace the sample's power by delta / dt and its window by dt. Returns (power, window, used,
    resets)."""
    n = len(ts)
    if n < 2:
        return power, window_us, 0, 0
    prev_ok = np.zeros(n, dtype=bool)
    prev_ok[1:] = (dev[1:] == dev[:-1]) & np.isfinite(counter[1:]) & np.isfinite(counter[:-1])
    d_e = np.zeros(n)
    d_t = np.zeros(n, dtype=np.int64)
    d_e[1:] = counter[1:] - counter[:-1]
    d_t[1:] = ts[1:] - ts[:-1]
    use = prev_ok & (d_t > 0) & (d_t <= max_gap_us) & (d_e >= 0)
    resets = prev_ok & (d_e < 0)
    power = np.where(use, d_e / np.where(use, d_t, 1) * US_PER_S, power)
    window_us = np.where(use, d_t, window_us)
    return power, window_us, int(use.sum()), int(resets.sum())


def power_segments(
    dev, ts, power, window_us, max_gap_us, counter=None, engine: str | Engine | None = "numpy"
) -> PowerSegments:
    """Sorted, deduplicated, non-overlapping power segments of samples in any order (dev: int device codes, ts
    and window_us: int64 us, counter: energy_counter_j or None), with the dropped count and the counter
    statistics."""
    if len(ts) and not (np.all(dev[1:] >= dev[:-1]) and np.all((ts[1:] >= ts[:-1]) | (dev[1:] != dev[:-1]))):
        order = np.lexsort((ts, dev))  # telemetry usually comes in (device, time) order already
        dev, ts, power, window_us = dev[order], ts[order], power[order], window_us[order]
        counter = None if counter is None else counter[order]
    used = resets = 0
    if counter is not None:
        power, window_us, used, resets = apply_counters(dev, ts, power, window_us, counter, max_gap_us)
    segments = get_engine(engine).power_segments(dev, ts, power, window_us, max_gap_us)
    return replace(segments, counter_intervals=used, counter_resets=resets)
