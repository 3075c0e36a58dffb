"""The kernel's output: per-request-bucket pieces and per-device-bucket totals as Arrow tables.

Pure numpy/pyarrow; imports no Dagster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa

from pipelines.attribution.arrays import TS_TYPE
from pipelines.attribution.columns import chunked
from pipelines.attribution.engine_api import SweepResult
from pipelines.attribution.group_threads import launch_lock
from pipelines.attribution.memory import small_pages
from pipelines.attribution.prepare import request_codes, sum_pieces

Lengths = Callable[[np.ndarray | slice], np.ndarray]
"""the seconds of request rows, by row numbers or a slice of them (columns.request_lengths)"""

_SUMS = ("energy_j", "device_share_s", "unmetered_s", "energy_uncertainty_j")
"""the pieces' columns a request's total sums"""


@dataclass
class AttributionResult:
    per_request_bucket: pa.Table
    """request_id, device_id, bucket_start, energy_j, device_share_s, unmetered_s, energy_uncertainty_j (one row
    per piece). request_id keeps the input's type (a dictionary's as its values: prepare.plain_request_ids)."""
    per_device_bucket: pa.Table
    """device_id, bucket_start, span_s, metered_s, busy_s, unmetered_s, metered_energy_j, busy_energy_j,
    idle_energy_j."""
    dropped_samples: int
    """Telemetry samples dropped for NaN, null or negative power."""
    counter_intervals: int = 0
    """Intervals whose energy came from an energy counter delta."""
    counter_resets: int = 0
    """Counter deltas that went backwards (resets or wraps), where power filled in."""
    _per_request: object = field(default=None, repr=False)

    @property
    def per_request(self) -> pa.Table:
        """request_id, energy_j, device_share_s, unmetered_s, energy_uncertainty_j, device_s (one row per distinct
        request_id, in no set order: sort or join by request_id); built on first use (the warehouse keeps the
        pieces, so the daily run never needs it)."""
        if callable(self._per_request):
            with small_pages(), launch_lock():  # as the call that made the pieces (memory.py, group_threads.py)
                self._per_request = self._per_request()
        return self._per_request

    @property
    def metered_energy_j(self) -> float:
        return float(np.sum(self.per_device_bucket["metered_energy_j"].to_numpy()))

    @property
    def idle_energy_j(self) -> float:
        return float(np.sum(self.per_device_bucket["idle_energy_j"].to_numpy()))

    @property
    def attributed_energy_j(self) -> float:
        return float(np.sum(self.per_request_bucket["energy_j"].to_numpy()))


def _device_ids(devices: pa.Array, codes: np.ndarray) -> pa.Array:
    """Device ids of codes: strings (a dictionary array would be smaller, but Arrow cannot sort by one)."""
    return devices.take(pa.array(codes))


def _bucket_starts(bucket: np.ndarray, bucket_us: int) -> pa.Array:
    """Bucket numbers as their start times, in place (the sweep's bucket array is not used again)."""
    bucket *= bucket_us
    return pa.array(bucket, pa.int64()).cast(TS_TYPE)


def _chunked(arrays: list, type_: pa.DataType) -> pa.ChunkedArray:
    """One column from the groups' arrays (or chunked columns), zero-copy where Arrow can (no concatenation)."""
    chunks = []
    for a in arrays:
        chunks.extend(a.chunks if isinstance(a, pa.ChunkedArray) else [pa.array(a, type_)])
    return pa.chunked_array(chunks, type=type_)


def _piece_request_ids(rid: pa.Array | pa.ChunkedArray, parts: list[SweepResult]) -> list:
    """Each group's pieces' request ids (the caller's type), shared by the pieces table and the per-request one."""
    in_chunks = chunked(rid, lambda c: c.to_numpy()) if isinstance(rid, pa.ChunkedArray) else None

    def request_ids(row: np.ndarray) -> pa.Array | pa.ChunkedArray:
        # one piece per request row, in row order (one bucket, one group, rows grouped by device): no gather
        identity = len(row) == len(rid) and (len(row) == 0 or (row[0] == 0 and bool(np.all(row[1:] > row[:-1]))))
        if identity:
            return rid
        # integer ids in their chunks (kernel.py): gathered from them, no concatenated copy
        return rid.take(pa.array(row)) if in_chunks is None else pa.array(in_chunks.take(row), rid.type)

    return [request_ids(p.row) for p in parts]


def _per_request_bucket(
    rid: pa.Array, ids: list, devices: pa.Array, parts: list[SweepResult], bucket_us: int
) -> pa.Table:
    return pa.table(
        {
            "request_id": _chunked(ids, rid.type),
            "device_id": _chunked([_device_ids(devices, p.piece_dev) for p in parts], pa.string()),
            "bucket_start": _chunked([_bucket_starts(p.bucket, bucket_us) for p in parts], TS_TYPE),
            **{name: _chunked([getattr(p, name) for p in parts], pa.float64()) for name in _SUMS},
        }
    )


def _per_device_bucket(devices: pa.Array, parts: list[SweepResult], bucket_us: int) -> pa.Table:
    def column(name: str, dtype=np.float64) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts]) if parts else np.zeros(0, dtype)

    return pa.table(
        {
            "device_id": _device_ids(devices, column("seg_dev", np.int64)),
            "bucket_start": pa.array(column("seg_bucket", np.int64) * bucket_us, pa.int64()).cast(TS_TYPE),
            "span_s": column("span_s"),
            "metered_s": column("metered_s"),
            "busy_s": column("busy_s"),
            "unmetered_s": column("seg_unmetered_s"),
            "metered_energy_j": column("metered_energy_j"),
            "busy_energy_j": column("busy_energy_j"),
            "idle_energy_j": column("idle_energy_j"),
        }
    )


def _runs(row: np.ndarray) -> tuple[int, np.ndarray]:
    """A group's pieces as runs of one request row each (the sweeps emit a row's pieces together): how many
    leading pieces are runs of their own (the compiled engine puts the rows of one piece first), and where each
    later run begins, counted from the first of them."""
    change = row[1:] != row[:-1]
    if change.all():  # every piece a row of its own (fewer than two pieces included)
        return len(row), np.zeros(0, np.int64)
    singles = int(np.argmin(change))  # piece `singles` and the next share a row
    return singles, np.concatenate(([0], np.flatnonzero(change[singles:]) + 1))


def _per_request_unique(
    ids: list, parts: list[SweepResult], lengths: Lengths, n_rows: int, rid_type
) -> pa.Table | None:
    """The per-request table when every request row has its own id: the sums of each row's consecutive pieces,
    in the pieces' order. The leading rows of one piece (most rows) are their pieces: those arrays are shared,
    not copied or scattered into row order; the rows of several pieces after them are summed. None when the
    pieces are not one run per row (then rows are summed by code)."""
    runs = [_runs(p.row) for p in parts]
    if sum(singles + len(later) for singles, later in runs) != n_rows:
        return None
    columns: dict[str, list] = {"request_id": [], **{name: [] for name in _SUMS}, "device_s": []}
    for p, part_ids, (singles, later) in zip(parts, ids, runs, strict=True):
        tail = singles + later  # the first piece of each later run
        columns["request_id"] += [part_ids[:singles], part_ids.take(pa.array(tail))]
        for name in _SUMS:
            values = getattr(p, name)
            columns[name] += [values[:singles], np.add.reduceat(values[singles:], later) if len(later) else []]
        columns["device_s"] += [lengths(p.row[:singles]), lengths(p.row[tail])]
    types = {"request_id": rid_type}
    return pa.table({name: _chunked(arrays, types.get(name, pa.float64())) for name, arrays in columns.items()})


def _per_request(rid: pa.Array, ids: list, parts: list[SweepResult], lengths: Lengths):
    """A function building the per-request table (on first use: the daily run never needs it). Request ids are
    grouped as codes (prepare.request_codes); when every row has its own id, each row's pieces are summed where
    they lie (_per_request_unique), else the pieces are summed by code, no strings built. Rows come in no set
    order."""

    def build() -> pa.Table:
        codes, distinct = request_codes(rid)  # codes None: every row has its own id, the rows are the codes
        if codes is None:
            table = _per_request_unique(ids, parts, lengths, len(rid), rid.type)
            if table is not None:
                return table
        sums = np.zeros((4, len(distinct)))
        for p in parts:
            sum_pieces(p.row, codes, tuple(getattr(p, name) for name in _SUMS), sums)
        return pa.table(
            {
                "request_id": distinct,
                **{name: sums[j] for j, name in enumerate(_SUMS)},
                "device_s": lengths(slice(0, len(rid)))
                if codes is None
                else np.bincount(codes, weights=lengths(slice(0, len(rid))), minlength=len(distinct)),
            }
        )

    return build


def attribution_result(
    rid: pa.Array | pa.ChunkedArray,
    devices: pa.Array,
    lengths: Lengths,
    parts: list[SweepResult],
    bucket_us: int,
) -> AttributionResult:
    """The tables of the device groups' sweeps (their pieces' rows are the table's request rows, their device codes
    global). rid: request_id per request row (the caller's type, kept; integer ids without nulls may come chunked);
    devices: device ids by code (a part's piece_dev codes its pieces); lengths: the seconds of request rows (row
    numbers or a slice of them).
    Columns stay chunked by group (no copies)."""
    ids = _piece_request_ids(rid, parts)
    pieces = _per_request_bucket(rid, ids, devices, parts, bucket_us)
    return AttributionResult(
        pieces,
        _per_device_bucket(devices, parts, bucket_us),
        sum(p.dropped for p in parts),
        sum(p.counter_intervals for p in parts),
        sum(p.counter_resets for p in parts),
        _per_request(rid, ids, [replace(p, piece_dev=None) for p in parts], lengths),  # the codes are not kept
    )
