"""Loading the compiled engine ahead of use, in a background thread.

Importing numba (most of a second; the kernel's modules import it only when first used) and numba's first
dispatch in a process, which initializes its typing and target contexts and loads each compiled function
from its cache: about 2 s of CPU whatever the input size, most of a small call and a third of a large one.
``kernel.warm_up()`` does that work in a daemon thread on a tiny input that takes the same paths with the same array
types as real inputs, so that it overlaps the caller's own work: ``attribute_energy`` starts it on its first call
(it then overlaps the preparation of the inputs, which runs in Arrow without holding the GIL), and a caller can
start it earlier (the daily run does, before its queries). Only the first call in a process pays anything.
Pure numpy/pyarrow; imports no Dagster.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from pipelines.attribution.engines import numba_installed

_lock = threading.Lock()
_thread: threading.Thread | None = None


def start_warm_up(run: Callable[[pa.Table, pa.Table], object]) -> threading.Thread | None:
    """Start ``run(requests, telemetry)`` on the tiny inputs in the background (once per process): the kernel
    passes its own call. None when numba is missing."""
    global _thread
    with _lock:
        if _thread is None:
            if not numba_installed():
                return None
            _thread = threading.Thread(target=_run, args=(run,), name="infercost-kernel-warm-up", daemon=True)
            _thread.start()
    return _thread


def _tiny_inputs() -> tuple[pa.Table, pa.Table]:
    """Two devices, rows interleaved and starts out of order within a device, each column in two chunks (every
    preparation path taken, the gather from a column's chunks included); an hour begins 3.5 s in, so that one
    request has two pieces."""
    us = pa.timestamp("us", tz="UTC")
    t0 = 1_699_999_196_500_000
    requests = pa.table(
        {
            "request_id": pa.array([3, 1, 2, 4], pa.int64()),
            "device_id": ["b", "a", "a", "b"],
            "started_at": pa.array([t0 + 2_000_000, t0 + 3_000_000, t0, t0 + 1_000_000]).cast(us),
            "ended_at": pa.array([t0 + 4_000_000, t0 + 5_000_000, t0 + 6_000_000, t0 + 7_000_000]).cast(us),
            "weight": [1.0, 2.0, 3.0, 4.0],
        }
    )
    ts = np.arange(10, dtype=np.int64) * 1_000_000 + t0
    telemetry = pa.table(
        {
            "device_id": ["a", "b"] * 10,
            "ts": pa.array(np.repeat(ts, 2)).cast(us),
            "power_w": np.full(20, 100.0),
        }
    )
    return _two_chunks(requests), _two_chunks(telemetry)


def _two_chunks(table: pa.Table) -> pa.Table:
    half = table.num_rows // 2
    return pa.concat_tables([table.slice(0, half), table.slice(half)])


def _run(run) -> None:
    try:
        requests, telemetry = _tiny_inputs()
        run(requests, telemetry)
        run(requests.combine_chunks(), telemetry.combine_chunks())  # a column of one chunk is gathered from it
        # trailing averages (nvidia-smi's power.draw), which placement by activity scans: instantaneous readings skip it
        averaged = telemetry.append_column("power_window_s", pa.array([1.0] * telemetry.num_rows))
        run(requests, _two_chunks(averaged.combine_chunks()))
    except Exception:  # noqa: BLE001 (a failed warm-up only costs time: the real call raises the real error)
        return
