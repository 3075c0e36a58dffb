"""The kernel's output: per-request-bucket pieces and per-device-bucket totals as Arrow tables.

Pure numpy/pyarrow; imports no Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pipelines.attribution.arrays import TS_TYPE
from pipelines.attribution.engine_api import SweepResult
from pipelines.attribution.prepare import request_codes


@dataclass
class AttributionResult:
    per_request_bucket: pa.Table
    """request_id, device_id, bucket_start, energy_j, device_share_s, unmetered_s (one row per piece). request_id
    keeps the input's type."""
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
        """request_id, energy_j, device_share_s, unmetered_s, device_s (one row per distinct request_id); built
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


def _per_request_bucket(
    rid: pa.Array, devices: pa.Array, r_dev: np.ndarray, res: SweepResult, bucket_us: int
) -> pa.Table:
    row = res.row
    # one piece per request row, in row order (one bucket, rows grouped by device): no gather needed
    identity = len(row) == len(r_dev) and (len(row) == 0 or (row[0] == 0 and bool(np.all(row[1:] > row[:-1]))))
    return pa.table(
        {
            "request_id": rid if identity else rid.take(pa.array(row)),
            "device_id": _device_ids(devices, r_dev[row]),
            "bucket_start": pa.array(res.bucket * bucket_us, pa.int64()).cast(TS_TYPE),
            "energy_j": pa.array(res.energy_j, pa.float64()),
            "device_share_s": pa.array(res.device_share_s, pa.float64()),
            "unmetered_s": pa.array(res.unmetered_s, pa.float64()),
        }
    )


def _per_device_bucket(devices: pa.Array, res: SweepResult, bucket_us: int) -> pa.Table:
    return pa.table(
        {
            "device_id": _device_ids(devices, res.seg_dev),
            "bucket_start": pa.array(res.seg_bucket * bucket_us, pa.int64()).cast(TS_TYPE),
            "span_s": res.span_s,
            "metered_s": res.metered_s,
            "busy_s": res.busy_s,
            "unmetered_s": res.seg_unmetered_s,
            "metered_energy_j": res.metered_energy_j,
            "busy_energy_j": res.busy_energy_j,
            "idle_energy_j": res.idle_energy_j,
        }
    )


def _per_request(rid: pa.Array, res: SweepResult, length_s: np.ndarray):
    """A function building the per-request table (on first use: the daily run never needs it). Request ids are
    grouped as codes (prepare.request_codes); the sums are bincounts over the pieces' rows, no strings built."""

    def build() -> pa.Table:
        n = len(length_s)
        codes, ids = request_codes(rid)
        unique = len(ids) == n  # then the codes are the rows: per-request totals are per-row totals
        by = res.row if unique else codes[res.row]
        return pa.table(
            {
                "request_id": ids,
                "energy_j": np.bincount(by, weights=res.energy_j, minlength=len(ids)),
                "device_share_s": np.bincount(by, weights=res.device_share_s, minlength=len(ids)),
                "unmetered_s": np.bincount(by, weights=res.unmetered_s, minlength=len(ids)),
                "device_s": length_s if unique else np.bincount(codes, weights=length_s, minlength=len(ids)),
            }
        )

    return build


def attribution_result(
    rid: pa.Array, devices: pa.Array, r_dev: np.ndarray, length_s: np.ndarray, res: SweepResult, bucket_us: int
) -> AttributionResult:
    """The tables of a sweep's result. rid: request_id per request row (the caller's type, kept); devices: device
    ids by code;
    r_dev: device code per request row; length_s: duration of each request row."""
    return AttributionResult(
        _per_request_bucket(rid, devices, r_dev, res, bucket_us),
        _per_device_bucket(devices, res, bucket_us),
        res.dropped,
        res.counter_intervals,
        res.counter_resets,
        _per_request(rid, res, length_s),
    )
