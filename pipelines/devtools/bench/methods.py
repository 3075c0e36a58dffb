"""The benchmark's methods: the kernel, the exact SQL (sql_reference.py) and a floor, each with its one-off start.

* kernel: ``attribute_energy`` (one bucket per day, so its pieces are per request like the SQL's rows);
* floor: reading the input columns plus one argsort and one cumsum over the N+M packed keys.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipelines.devtools.bench.sql_reference import run_sql, start_sql


def run_kernel(requests: pa.Table, telemetry: pa.Table) -> pa.Table:
    from pipelines.attribution.kernel import attribute_energy

    # one bucket per day: each request row is one piece (the pieces are what the warehouse stores)
    return attribute_energy(requests, telemetry, max_gap_s=10.0, bucket_s=86_400).per_request_bucket.select(
        ["request_id", "energy_j"]
    )


def start_kernel(requests: pa.Table, telemetry: pa.Table) -> None:
    """Once per process: import and load the compiled sweep (numba's cache) on a few rows."""
    run_kernel(requests.slice(0, 100), telemetry.slice(0, 1000))


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
STARTUP = {"kernel": start_kernel, "sql": start_sql, "floor": lambda requests, telemetry: None}
