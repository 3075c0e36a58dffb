"""Exact energy attribution: split each device's measured energy across the requests running on it.

Pure numpy/pyarrow; imports no Dagster. The rule (README, "How energy is attributed"):

* Power is piecewise constant. A telemetry sample with ``power_window_s == 0`` (or no window column) is an
  instantaneous reading that holds from its timestamp until the next sample of its device, but never longer than
  ``max_gap_s``. A sample with ``power_window_s = w > 0`` is a trailing average (nvidia-smi/NVML ``power.draw``):
  it covers the time since the previous sample of its device when that is at most ``max_gap_s`` ago, else the
  ``w`` seconds before its timestamp. Time covered by no sample is *unmetered*.
* On each device at each instant t, with D(t) = sum over active requests of ``weight_r / (ended_r - started_r)``,
  request r receives ``weight_r / (ended_r - started_r) * integral of P(t) / D(t)`` over its interval. Metered
  time with no active (positive-weight) request is *idle*. The same rule with P = 1 splits device-seconds
  (``device_share_s``), which is what capex and overhead are priced on.
* Energy is kept apart per time bucket (``bucket_s``, aligned to the UTC epoch) so each part can be priced at the
  price of its own interval.

Documented edge cases (all tested):
* zero-length requests (ended == started) occupy no instant: energy 0, device_share_s 0;
* zero-weight requests receive nothing; time when only zero-weight requests run counts as idle;
* requests outside any telemetry: energy 0 and their whole duration in ``unmetered_s``;
* duplicate samples (same device and timestamp): power averaged, widest window kept;
* unsorted input: sorted here; samples with NaN, null or negative power are dropped and counted in
  ``dropped_samples`` (the time they covered falls to their neighbours under the rules above);
* the last instantaneous sample of a device covers no time (there is no next sample to hold until).

Energy counters: when telemetry has ``energy_counter_j`` (NVML total energy, DCGM TOTAL_ENERGY_CONSUMPTION), the
counter delta between two consecutive samples of a device at most ``max_gap_s`` apart is the energy of that
interval: the sample becomes a trailing average over exactly that interval. Where a counter is missing, or goes
backwards (a reset, or a wrap of a narrower counter; counted in ``counter_resets``), the power reading fills in.

Computed as a sorted sweep over merged breakpoints, devices in bounded groups, with running sums that restart at
every (device, bucket) segment so that no long running sum loses digits: O((N+M) log(N+M)). Two engines, one
compiled pass per group (engine_compiled.py, numba) and vectorized numpy passes (engine_numpy.py), agree within
about 1e-6 J a request (3e-6 relative on a 0.25 J one beside 5e4 J ones); both are checked against a slow reference.
This module converts the inputs (arrays.py), turns ids into codes and rows into device order (prepare.py: rows
may come in any order, typically time order as logged), builds power segments (segments.py), sweeps device groups
with the chosen engine and assembles the output tables (results.py: chunked by group, request ids in the caller's
type). The compiled engine's code is loaded in a background thread on the first call (warm_up, warmup.py).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np
import pyarrow as pa

from pipelines.attribution.arrays import TS_TYPE, US_PER_S, float_array, ts_us, window_us
from pipelines.attribution.columns import Chunked, aligned, chunked, from_pieces, request_lengths
from pipelines.attribution.engine_api import Engine, GroupRequests, Placement, SweepResult
from pipelines.attribution.engines import default_engine, engine_name, get_engine
from pipelines.attribution.group_threads import launch_lock, map_groups
from pipelines.attribution.memory import release_freed_memory, small_pages
from pipelines.attribution.placement import check_rule
from pipelines.attribution.prepare import RowsByDevice, device_codes, plain_request_ids, rows_by_device
from pipelines.attribution.results import AttributionResult, attribution_result
from pipelines.attribution.segments import power_segments
from pipelines.attribution.warmup import start_warm_up
from pipelines.settings import DEFAULT_MAX_GAP_S, DEFAULT_PROMPT_TOKEN_WEIGHT

__all__ = [
    "TS_TYPE",
    "US_PER_S",
    "AttributionResult",
    "attribute_energy",
    "default_engine",
    "request_weights",
    "warm_up",
]


def request_weights(
    completion_tokens, prompt_tokens, prompt_token_weight: float = DEFAULT_PROMPT_TOKEN_WEIGHT
) -> np.ndarray:
    """Default weight of a request: output tokens plus ``prompt_token_weight`` times prompt tokens."""
    c = np.nan_to_num(np.asarray(completion_tokens, dtype=np.float64))
    p = np.nan_to_num(np.asarray(prompt_tokens, dtype=np.float64))
    return c + prompt_token_weight * p


@dataclass(frozen=True)
class _Inputs:
    """Both tables' big columns as their chunks (columns.py: no full-length copies); devices as codes into
    ``devices`` (sorted device ids)."""

    devices: pa.Array
    r_dev: np.ndarray | None
    """None once the rows are in device order (_by_device)"""
    start_us: Chunked
    end_us: Chunked
    weight: Chunked
    t_dev: np.ndarray | None
    """None once the rows are in device order (_by_device)"""
    ts_us: Chunked
    power_w: Chunked
    window_us: Chunked | None
    """None when the telemetry has no power_window_s column (every sample instantaneous)"""
    counter: Chunked | None
    """energy_counter_j, or None when the telemetry has no usable counter"""


def _request_arrays(requests: pa.Table, prompt_token_weight: float) -> tuple[Chunked, Chunked, Chunked]:
    """Start, end (int64 us) and weight of each request row; ended before started or a bad weight is an error."""
    s = chunked(requests["started_at"], ts_us)
    e = chunked(requests["ended_at"], ts_us)
    if any(np.any(ep < sp) for sp, ep in aligned(s, e)):
        raise ValueError("requests with ended_at before started_at must be quarantined before attribution")
    if "weight" in requests.column_names:
        w = chunked(requests["weight"], lambda c: float_array(c, 0.0))
    elif "completion_tokens" in requests.column_names:
        prompt = requests["prompt_tokens"] if "prompt_tokens" in requests.column_names else pa.nulls(len(s))
        c, p = (chunked(col, lambda x: float_array(x, 0.0)) for col in (requests["completion_tokens"], prompt))
        w = from_pieces([request_weights(cp, pp, prompt_token_weight) for cp, pp in aligned(c, p)], np.float64)
    else:
        w = from_pieces([np.ones(len(s))], np.float64)
    if any(np.any(~np.isfinite(wp) | (wp < 0)) for wp in w.chunks):
        raise ValueError("request weights must be finite and >= 0")
    return s, e, w


def _inputs(requests: pa.Table, telemetry: pa.Table, prompt_token_weight: float) -> _Inputs:
    s, e, w = _request_arrays(requests, prompt_token_weight)
    devices, (r_dev, t_dev) = device_codes(requests["device_id"], telemetry["device_id"])
    t_ts = chunked(telemetry["ts"], ts_us)
    t_p = chunked(telemetry["power_w"], float_array)
    # no window column: every sample instantaneous (zeros made per group, not gathered)
    t_w = None
    if "power_window_s" in telemetry.column_names:
        t_w = chunked(telemetry["power_window_s"], lambda c: window_us(c, len(c)))
    counter = None
    if "energy_counter_j" in telemetry.column_names:
        counter = chunked(telemetry["energy_counter_j"], float_array)
        if not any(np.isfinite(c).any() for c in counter.chunks):
            counter = None
    return _Inputs(devices, r_dev, s, e, w, t_dev, t_ts, t_p, t_w, counter)


def _chunks(r_first: np.ndarray, t_first: np.ndarray, max_events: int) -> list[tuple[int, int]]:
    """Consecutive device ranges [lo, hi) of at most about max_events breakpoints each (a device is never split);
    r_first, t_first: each device's first request and telemetry row in device order (RowsByDevice.first)."""
    events = 2 * np.diff(r_first) + 2 * np.diff(t_first)
    group = np.cumsum(events) // max(max_events, 1)
    edges = np.flatnonzero(np.diff(group)) + 1
    bounds = np.concatenate(([0], edges, [len(events)]))
    return [(int(lo), int(hi)) for lo, hi in pairwise(bounds) if hi > lo]


def _group_segments(inp: _Inputs, t_rows: RowsByDevice, lo: int, hi: int, max_gap_us: int, engine: Engine):
    """The power segments of devices [lo, hi): their samples gathered in device order."""
    ti = t_rows.rows(lo, hi)
    ts = inp.ts_us.take(ti)
    return power_segments(
        t_rows.codes(lo, hi),
        ts,
        inp.power_w.take(ti),
        np.zeros(len(ts), np.int64) if inp.window_us is None else inp.window_us.take(ti),
        max_gap_us,
        None if inp.counter is None else inp.counter.take(ti),
        engine,
    )


def _idle_by_code(devices: pa.Array, idle_w) -> np.ndarray | None:
    """The inventory's idle power per device code (NaN where unknown), from {device_id: idle_w} or a table with
    device_id and idle_w."""
    if idle_w is None:
        return None
    if isinstance(idle_w, pa.Table):
        idle_w = dict(zip(idle_w["device_id"].to_pylist(), idle_w["idle_w"].to_pylist(), strict=True))
    out = np.array([idle_w.get(d) for d in pa.array(devices).cast(pa.string()).to_pylist()], dtype=np.float64)
    return np.where(np.isfinite(out) & (out >= 0), out, np.nan)


def _by_device(inp: _Inputs) -> tuple[_Inputs, RowsByDevice, RowsByDevice]:
    """Both tables' rows in device order; the inputs without their device codes (the orders replace them)."""
    ndev = len(inp.devices)
    with ThreadPoolExecutor(2) as pool:  # the compiled counting sorts release the GIL: both tables at once
        r_rows, t_rows = pool.map(lambda dev: rows_by_device(dev, ndev), (inp.r_dev, inp.t_dev))
    return replace(inp, t_dev=None, r_dev=None), r_rows, t_rows


def _sweep_groups(
    inp: _Inputs,
    r_rows: RowsByDevice,
    t_rows: RowsByDevice,
    engine: Engine,
    bucket_us: int,
    max_gap_us: int,
    max_events: int,
    placement: Placement | None,
) -> list[SweepResult]:
    """Devices are independent: sweep them in groups so that memory stays bounded whatever the input size. Each
    group's result keeps its own arrays (the output tables are chunked by group: nothing is concatenated), with
    the table's request rows (int32 below 2**31 rows) and global device codes, its pieces' too (int16 below 2**15
    devices; gathered in the group's thread from the group's rows)."""
    row_type = np.int32 if len(inp.start_us) < 2**31 else np.int64
    code_type = np.int16 if len(inp.devices) < 2**15 else np.int32

    def swept(bounds: tuple[int, int]) -> SweepResult:
        lo, hi = bounds
        ri = r_rows.rows(lo, hi)
        dev = r_rows.codes(lo, hi)
        requests = GroupRequests(dev, inp.start_us.take(ri), inp.end_us.take(ri), inp.weight.take(ri))
        segments = _group_segments(inp, t_rows, lo, hi, max_gap_us, engine)
        group_placement = placement
        if placement is not None and placement.idle_w is not None:
            group_placement = replace(placement, idle_w=placement.idle_w[lo:hi])
        part = engine.sweep(requests, segments, bucket_us, hi - lo, group_placement)
        return replace(
            part,
            piece_dev=(dev + lo).astype(code_type).take(part.row),
            row=r_rows.table_rows(lo, hi, part.row).astype(row_type, copy=False),
            seg_dev=part.seg_dev + lo,
            dropped=segments.dropped,
            counter_intervals=segments.counter_intervals,
            counter_resets=segments.counter_resets,
        )

    groups = _chunks(r_rows.first, t_rows.first, max_events)
    return map_groups(swept, groups, compiled=engine.name == "compiled")  # group_threads.py: two at a time


def warm_up():
    """Import numba and load the compiled engine in a background thread (once per process; see warmup.py): the
    first call in a process then overlaps it with its own work (reading the inputs, in Arrow). Returns the thread
    (None without numba)."""
    return start_warm_up(
        lambda requests, telemetry: attribute_energy(requests, telemetry, bucket_s=3600, engine="compiled").per_request
    )


def attribute_energy(
    requests: pa.Table,
    telemetry: pa.Table,
    *,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    bucket_s: int = 3600,
    prompt_token_weight: float = DEFAULT_PROMPT_TOKEN_WEIGHT,
    max_events_per_chunk: int | None = None,
    engine: str | None = None,
    placement: str = "activity",
    idle_w=None,
    load_exponent: float = 0.0,
) -> AttributionResult:
    """Attribute measured device energy to requests; see the module docstring for the rule.

    requests: request_id, device_id, started_at, ended_at and weight (or completion_tokens and prompt_tokens,
    from which the default weight is computed). A request on several devices (a tensor-parallel replica) has one
    row per device under the same request_id.
    telemetry: device_id, ts, power_w and optionally power_window_s and energy_counter_j.
    Devices are swept in groups of about ``max_events_per_chunk`` breakpoints, so memory stays bounded (default:
    4M for the numpy engine, whose arrays grow with the events of a group, 1M for the compiled one, which sweeps two
    groups at once: group_threads.py).
    engine: "compiled" (one numba pass per group, the default when numba is installed) or "numpy" (vectorized
    passes); both implement the same rule and are tested against each other and the slow reference.
    placement: "activity" (the default: a window's measured energy placed where the requests ran, placement.py)
    or "flat" (the window's average throughout). idle_w: the inventory's idle power per device ({device_id: W}, or
    a table with device_id and idle_w), used where a device has too few quiet windows to learn its own.
    load_exponent: an active stretch's share of a window grows as (sum of active rates) ** load_exponent.
    """
    if engine_name(engine) == "compiled":
        warm_up()  # the first call in a process: import numba and load the compiled code while the inputs are read
    if bucket_s <= 0 or 86400 % bucket_s and bucket_s % 86400:
        raise ValueError("bucket_s must divide a day (or be a whole number of days)")
    bucket_us = int(bucket_s) * US_PER_S
    max_gap_us = round(max_gap_s * US_PER_S)
    with small_pages():  # memory.py: fresh huge pages cost more than they give here
        return _attributed(
            requests,
            telemetry,
            bucket_us,
            max_gap_us,
            prompt_token_weight,
            check_rule(placement),
            float(load_exponent),
            engine=engine,
            max_events_per_chunk=max_events_per_chunk,
            idle_w=idle_w,
        )


def _attributed(
    requests: pa.Table,
    telemetry: pa.Table,
    bucket_us: int,
    max_gap_us: int,
    prompt_token_weight: float,
    placement: str,
    load_exponent: float,
    *,
    engine: str | None,
    max_events_per_chunk: int | None,
    idle_w,
) -> AttributionResult:
    """attribute_energy's work, its arguments checked."""
    release_freed_memory()  # what the caller freed before this call (an earlier result): not held while it allocates
    rid = plain_request_ids(requests["request_id"])  # no null, dictionaries as their values, text in one chunk
    inp = _inputs(requests, telemetry, prompt_token_weight)
    release_freed_memory()  # the conversions' temporaries (dictionary codes, casts)
    chosen = get_engine(engine)  # imported here, not before the inputs: see warm_up
    max_events = chosen.max_events_per_chunk if max_events_per_chunk is None else max_events_per_chunk
    rule = Placement(placement, _idle_by_code(inp.devices, idle_w), load_exponent)
    with launch_lock(chosen.name == "compiled"):  # calls take turns where numba needs it (group_threads.py)
        inp, r_rows, t_rows = _by_device(inp)
        parts = _sweep_groups(inp, r_rows, t_rows, chosen, bucket_us, max_gap_us, max_events, rule)
        del r_rows, t_rows
        lengths = request_lengths(requests, inp.start_us, inp.end_us)
        devices = inp.devices
        del inp  # the input arrays are freed before the output tables are built
        release_freed_memory()
        result = attribution_result(rid, devices, lengths, parts, bucket_us)
    release_freed_memory()  # the tables' temporaries (device codes, row numbers)
    return result
