"""What an attribution engine is: the two steps it implements and the typed results they return.

An engine builds power segments from sorted telemetry samples and sweeps one group of devices. Two engines exist
(``engines.py`` is the registry that names them): vectorized numpy passes (``engine_numpy.py``) and one compiled
pass per group (``engine_compiled.py``, numba). Pure numpy; imports no Dagster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True)
class PowerSegments:
    """Sorted, deduplicated, non-overlapping stretches of constant power of a group's devices."""

    dev: np.ndarray
    """device code of each segment (int64)"""
    start_us: np.ndarray
    end_us: np.ndarray
    power_w: np.ndarray
    dropped: int
    """samples dropped for NaN, null or negative power"""
    counter_intervals: int = 0
    """intervals whose energy came from an energy-counter delta"""
    counter_resets: int = 0
    """counter deltas that went backwards (resets or wraps), where power filled in"""
    averaged: np.ndarray | None = None
    """per segment: True where it is a trailing average or a counter delta (a window's measured energy), False
    where it holds an instantaneous reading; None when not known"""
    modeled: np.ndarray | None = None
    """per segment: True where the requests' activity changes inside it, so how its energy is shaped over time is
    modeled, not measured (placement.py); None: nothing modeled"""


@dataclass(frozen=True)
class Placement:
    """How a window's measured energy is placed inside it (placement.py): ``rule`` "activity" (idle power where no
    request runs, the rest over the active sub-intervals by load) or "flat" (the window's average throughout);
    ``idle_w``: per device code, the idle power from the inventory (NaN: unknown); ``load_exponent``: an active
    sub-interval's share grows with its load D (sum of active rates) as D ** load_exponent."""

    rule: str = "activity"
    idle_w: np.ndarray | None = None
    load_exponent: float = 0.0


@dataclass(frozen=True)
class GroupRequests:
    """The requests of one device group: device code (0..ndev-1), start and end (int64 us), weight."""

    dev: np.ndarray
    start_us: np.ndarray
    end_us: np.ndarray
    weight: np.ndarray


@dataclass(frozen=True)
class SweepResult:
    """The attribution of one device group (or of all of them, concatenated), as numpy arrays.

    Pieces: one per (request row, bucket) the request overlaps. Device buckets: one per (device, bucket) between
    a device's first and last breakpoint."""

    row: np.ndarray
    """request row of each piece"""
    bucket: np.ndarray
    """bucket number of each piece (bucket_start / bucket length)"""
    energy_j: np.ndarray
    device_share_s: np.ndarray
    unmetered_s: np.ndarray
    energy_uncertainty_j: np.ndarray
    """the part of energy_j that came from segments whose shape inside is modeled (PowerSegments.modeled)"""
    seg_dev: np.ndarray
    """device code of each device-bucket row"""
    seg_bucket: np.ndarray
    span_s: np.ndarray
    metered_s: np.ndarray
    busy_s: np.ndarray
    seg_unmetered_s: np.ndarray
    metered_energy_j: np.ndarray
    busy_energy_j: np.ndarray
    idle_energy_j: np.ndarray
    dropped: int = 0
    counter_intervals: int = 0
    counter_resets: int = 0
    piece_dev: np.ndarray | None = None
    """device code of each piece (int16 or int32), set by the kernel from its group's rows (None from an engine)"""


_COUNTS = ("dropped", "counter_intervals", "counter_resets")
_INT_ARRAYS = ("row", "bucket", "seg_dev", "seg_bucket")


def concat_results(parts: list[SweepResult]) -> SweepResult:
    """The device groups' results as one (arrays concatenated, counts summed)."""
    if len(parts) == 1:
        return parts[0]
    values = {}
    for f in fields(SweepResult):
        if f.name in _COUNTS:
            values[f.name] = sum(getattr(p, f.name) for p in parts)
        elif f.name == "piece_dev":
            values[f.name] = (
                None if any(p.piece_dev is None for p in parts) else np.concatenate([p.piece_dev for p in parts])
            )
        elif parts:
            values[f.name] = np.concatenate([getattr(p, f.name) for p in parts])
        else:
            values[f.name] = np.zeros(0, dtype=np.int64 if f.name in _INT_ARRAYS else np.float64)
    return SweepResult(**values)


PowerSegmentsFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int], PowerSegments]
"""(dev, ts_us, power_w, window_us, max_gap_us) of samples sorted by (device, ts), counters already applied."""
SweepFn = Callable[[GroupRequests, PowerSegments, int, int, Placement | None], SweepResult]
"""(requests, segments, bucket_us, ndev, placement): pieces and device-bucket rows of one device group, the
segments' energy first placed by activity (placement.py) unless placement is None."""


@dataclass(frozen=True)
class Engine:
    name: str
    max_events_per_chunk: int
    """default size of a device group, in breakpoints (the engine's memory grows with it)"""
    power_segments: PowerSegmentsFn
    sweep: SweepFn
