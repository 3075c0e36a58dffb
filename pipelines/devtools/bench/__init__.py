"""Kernel benchmark: pipelines.attribution.kernel against the strongest exact DuckDB SQL we can write, and a floor.

Inputs are synthetic fleets like those of issue 6 (1 s instantaneous telemetry, continuous batching with a mean
concurrency about 6), generated once per scale with a fixed seed and cached as Parquet under bench_data/.

* kernel: ``attribute_energy`` with hourly buckets: its pieces and its per-request totals (what a caller needs);
* sql: a window-function sweep over a unioned event table in DuckDB (rates summed per device in time order,
  power joined ASOF, compensated (fsum) prefix sums of P/D per device, request energy = rate x (G(end) -
  G(start)));
* floor: reading the input columns plus one argsort and one cumsum over the N+M packed keys.

Each method runs in its own process (so peak memory is its own), ``--repeat`` rounds that interleave the methods
(a noisy neighbour then slows them alike); the table shows medians, and ratios are medians of per-round ratios.
A process's one-off start (imports; for the kernel, loading the compiled sweep from numba's cache) is timed apart
and shown in its own column: a pipeline pays it once, not per partition.
Run: ``infercost bench --scale S|M|L`` or ``make bench``.

The package: inputs.py (the synthetic fleets), methods.py (kernel, floor), sql_reference.py (the exact SQL and the
exact-arithmetic referee), kernel_bench.py (the rounds and the table), fleet_day.py (the whole pipeline on a
generated fleet-day), where_run.py (the commit and load each bench prints with its figures), tree_memory.py (peak
memory and CPU of a process tree), command.py (the command line).
"""

from pipelines.devtools.bench.fleet_day import FLEET_DAY, fleet_day
from pipelines.devtools.bench.inputs import (
    SCALES,
    bench_dir,
    data_dir,
    ensure_data,
    load,
    synthetic_inputs,
)
from pipelines.devtools.bench.kernel_bench import compare_results, referee, run
from pipelines.devtools.bench.methods import METHODS, STARTUP, run_floor, run_kernel
from pipelines.devtools.bench.sql_reference import SWEEP_SQL, exact_energy_j, run_sql

__all__ = [
    "FLEET_DAY",
    "METHODS",
    "SCALES",
    "STARTUP",
    "SWEEP_SQL",
    "bench_dir",
    "data_dir",
    "compare_results",
    "ensure_data",
    "exact_energy_j",
    "fleet_day",
    "load",
    "referee",
    "run",
    "run_floor",
    "run_kernel",
    "run_sql",
    "synthetic_inputs",
]
