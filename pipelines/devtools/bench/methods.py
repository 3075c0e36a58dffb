"""The benchmark's methods: the kernel, the exact SQL (sql_reference.py) and a floor, each with its one-off start.

* kernel: ``attribute_energy`` with hourly buckets, its pieces and its per-request totals (what a caller needs);
* floor: reading the input columns plus one argsort and one cumsum over the N+M packed keys.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipelines.devtools.bench.sql_reference import run_sql, start_sql


def run_kernel(requests: pa.Table, telemetry: pa.Table) -> pa.Table:
    """What a caller needs: the hourly pieces (what the warehouse stores and prices) and the per-request totals;
    returns the totals' request_id and energy_j."""
    from pipelines.attribution.kernel import attribute_energy

    result = attribute_energy(requests, telemetry, max_gap_s=10.0, bucket_s=3600)
    assert result.per_request_bucket.num_rows >= requests.num_rows
    return result.per_request.select(["request_id", "energy_j"])


def run_floor(requests: pa.Table, telemetry: pa.Table) -> pa.Table:
    """Read the columns, pack (device, time) keys, one argsort and one cumsum over N+M: no kernel can be faster."""
    import pyarrow.compute as pc

    devices = pc.unique(telemetry["device_id"])
    r_dev = pc.index_in(requests["device_id"], devices).to_numpy(zero_copy_only=False).astype(np.int64)
    t_dev = pc.index_in(telemetry["device_id"], devices).to_numpy(zero_copy_only=False).astype(np.int64)
    s = pc.cast(requests["started_at"], pa.int64()).to_numpy(zero_copy_only=False)
    e = pc.cast(requests["ended_at"], pa.int64()).to_numpy(zero_copy_only=False)
    ts = pc.cast(telemetry["ts"], pa.int64()).to_numpy(zero_copy_only=False)
    w = requests["weight"].to_numpy(zero_copy_only=False)
    p = telemetry["power_w"].to_numpy(zero_copy_only=False)
    t0 = min(s.min(), ts.min())
    span = max(e.max(), ts.max()) - t0 + 1
    keys = np.concatenate([r_dev * span + (s - t0), t_dev * span + (ts - t0)])
    order = np.argsort(keys)
    acc = np.cumsum(np.concatenate([w, p])[order])
    return pa.table({"n": [len(acc)], "total": [float(acc[-1])]})


METHODS = {"kernel": run_kernel, "sql": run_sql, "floor": run_floor}
# the one-off cost of a process (imports, loading compiled code), timed apart from the run
STARTUP = {"kernel": lambda requests, telemetry: None, "sql": start_sql, "floor": lambda requests, telemetry: None}
