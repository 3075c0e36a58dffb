"""The kernel's output: per-request-bucket pieces and per-device-bucket totals as Arrow tables.

Pure numpy/pyarrow; imports no Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pipelines.attribution.arrays import TS_TYPE
from pipelines.attribution.columns import chunked
from pipelines.attribution.engine_api import SweepResult
from pipelines.attribution.prepare import request_codes, sum_pieces


@dataclass
class AttributionResult:
    per_request_bucket: pa.Table
    """request_id, device_id, bucket_start, energy_j, device_share_s, unmetered_s, energy_uncertainty_j (one row
    per piece). request_id keeps the input's type."""
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
        request_id); built
        on first use (the warehouse keeps the pieces, so the daily run never needs it)."""
        if callable(self._per_request):
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


def _per_request_bucket(
    rid: pa.Array, devices: pa.Array, r_dev: np.ndarray, parts: list[SweepResult], bucket_us: int
) -> pa.Table:
    in_chunks = chunked(rid, lambda c: c.to_numpy()) if isinstance(rid, pa.ChunkedArray) else None

    def request_ids(row: np.ndarray) -> pa.Array:
        # one piece per request row, in row order (one bucket, one group, rows grouped by device): no gather
        identity = len(row) == len(rid) and (len(row) == 0 or (row[0] == 0 and bool(np.all(row[1:] > row[:-1]))))
        if identity:
            return rid
        # integer ids in their chunks (kernel.py): gathered from them, no concatenated copy
        return rid.take(pa.array(row)) if in_chunks is None else pa.array(in_chunks.take(row), rid.type)

    return pa.table(
        {
            "request_id": _chunked([request_ids(p.row) for p in parts], rid.type),
            "device_id": _chunked([_device_ids(devices, r_dev[p.row]) for p in parts], pa.string()),
            "bucket_start": _chunked([_bucket_starts(p.bucket, bucket_us) for p in parts], TS_TYPE),
            **{
                name: _chunked([getattr(p, name) for p in parts], pa.float64())
                for name in ("energy_j", "device_share_s", "unmetered_s", "energy_uncertainty_j")
            },
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


def _per_request(rid: pa.Array, parts: list[SweepResult], length_s: np.ndarray):
    """A function building the per-request table (on first use: the daily run never needs it). Request ids are
    grouped as codes (prepare.request_codes) and the pieces summed by code, no strings built."""

    def build() -> pa.Table:
        codes, ids = request_codes(rid)
        unique = len(ids) == len(length_s)  # then the codes are the rows: per-request totals are per-row totals
        codes = None if unique else codes
        sums = np.zeros((4, len(ids)))
        for p in parts:
            values = (p.energy_j, p.device_share_s, p.unmetered_s, p.energy_uncertainty_j)
            sum_pieces(p.row, None if unique else codes, values, sums)
        return pa.table(
            {
                "request_id": ids,
                "energy_j": sums[0],
                "device_share_s": sums[1],
                "unmetered_s": sums[2],
                "energy_uncertainty_j": sums[3],
                "device_s": length_s if unique else np.bincount(codes, weights=length_s, minlength=len(ids)),
            }
        )

    return build


def attribution_result(
    rid: pa.Array | pa.ChunkedArray,
    devices: pa.Array,
    r_dev: np.ndarray,
    length_s: np.ndarray,
    parts: list[SweepResult],
    bucket_us: int,
) -> AttributionResult:
    """The tables of the device groups' sweeps (their pieces' rows are the table's request rows, their device codes
    global). rid: request_id per request row (the caller's type, kept; integer ids without nulls may come chunked);
    devices: device ids by code; r_dev: device code per request row; length_s: duration of each request row.
    Columns stay chunked by group (no copies)."""
    return AttributionResult(
        _per_request_bucket(rid, devices, r_dev, parts, bucket_us),
        _per_device_bucket(devices, parts, bucket_us),
        sum(p.dropped for p in parts),
        sum(p.counter_intervals for p in parts),
        sum(p.counter_resets for p in parts),
        _per_request(rid, parts, length_s),
    )
