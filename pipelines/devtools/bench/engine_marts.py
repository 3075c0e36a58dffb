"""Both engines on a generated multi-day fleet, every mart compared: the spark engine's numbers are the duckdb
engine's.

    python -m pipelines.devtools.bench.engine_marts --devices 64 --days 3      (make compare-engines)

The fleet is the history benchmark's (``infercost generate --days``, written once under
bench_data/history-<devices>/). ``infercost materialize --from day 1 --to day N`` runs twice from the same raw files
into two fresh warehouses: with the default engine, and with ``INFERCOST_ENGINE=spark`` on a
``local-cluster[2,1,1024]`` master (two executor JVMs). Then every mart, the quarantine, the per-file counts and
the unattributed requests are compared row for row: floats within 1e-9 relative, USD within half a cent. It prints
each table's rows, largest relative difference and verdict, each run's seconds, and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from datetime import timedelta

import duckdb

from pipelines.devtools.bench.history import FIRST_DAY, fleet_landing, materialize_days
from pipelines.devtools.marts_digest import RUN_TIME_COLUMNS
from pipelines.settings import REPO_ROOT

MARTS = sorted(p.stem for p in (REPO_ROOT / "dbt" / "models" / "marts").glob("*.sql"))
ALSO = ["technique_comparison", "cost_anomalies", "ingest_quarantine", "ingest_file_stats", "unattributed_requests"]
SPARK_MASTER = "local-cluster[2,1,1024]"


def sorted_rows(con: duckdb.DuckDBPyConnection, name: str) -> tuple[list[str], list[tuple]]:
    """A table's columns (run times left out) and rows, ordered by its exact columns first, then its floats."""
    cols = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [name],
    ).fetchall()
    keep = [c for c, _ in cols if c not in RUN_TIME_COLUMNS]
    exact = [c for c, t in cols if c in keep and t not in ("DOUBLE", "FLOAT")]
    order = ", ".join(f'"{c}"' for c in exact + [c for c in keep if c not in exact])
    quoted = ", ".join(f'"{c}"' for c in keep)
    return keep, con.execute(f"SELECT {quoted} FROM {name} ORDER BY {order}").fetchall()


def compare_table(cols: list[str], a: list[tuple], b: list[tuple], rel: float = 1e-9) -> tuple[float, str | None]:
    """The largest relative difference of two tables' float cells and the first difference beyond the tolerance
    (None when equal): floats within ``rel`` relative, USD columns (``*_usd``) within half a cent, the rest exact."""
    if len(a) != len(b):
        return math.inf, f"{len(a)} rows on duckdb, {len(b)} on spark"
    worst = 0.0
    for ra, rb in zip(a, b, strict=True):
        for col, x, y in zip(cols, ra, rb, strict=True):
            if isinstance(x, float) and isinstance(y, float):
                if math.isnan(x) or math.isnan(y):  # NaN on one side only is a difference, on both is equal
                    if math.isnan(x) and math.isnan(y):
                        continue
                    return math.inf, f"{col}: {x!r} != {y!r} in {ra}"
                diff = abs(x - y)
                worst = max(worst, diff / max(abs(x), 1e-300) if diff else 0.0)
                tolerance = 0.005 if col.endswith("_usd") else max(rel * abs(x), 1e-9)
                if diff > tolerance:
                    return worst, f"{col}: {x!r} != {y!r} in {ra}"
            elif x != y:
                return worst, f"{col}: {x!r} != {y!r} in {ra}"
    return worst, None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=64)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument(
        "--engines",
        default="duckdb,spark",
        help="the engines to run (comma-separated); the other's warehouse is reused",
    )
    args = parser.parse_args(argv)
    landing = fleet_landing(args.devices, args.days, print)
    last = FIRST_DAY + timedelta(days=args.days - 1)
    work = landing.parent / f"engines-{args.devices}x{args.days}"
    homes = {"duckdb": work / "duckdb", "spark": work / "spark"}
    spark_env = {"INFERCOST_ENGINE": "spark", "INFERCOST_SPARK_MASTER": SPARK_MASTER, "PYSPARK_PYTHON": sys.executable}
    for engine, home in homes.items():
        if engine not in args.engines.split(","):
            continue
        print(f"materialize {FIRST_DAY} .. {last} with the {engine} engine ...", flush=True)
        shutil.rmtree(home, ignore_errors=True)
        seconds, steps = materialize_days(landing, home, FIRST_DAY, last, spark_env if engine == "spark" else {})
        print(f"  {seconds:.1f} s; steps: " + ", ".join(f"{k} {v:.1f}" for k, v in steps.items()), flush=True)
    cons = {engine: duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) for engine, home in homes.items()}
    failed = compared_tables(cons["duckdb"], cons["spark"])
    print(
        f"summary engines ({args.devices} accelerators, {args.days} days): {'DIFFER' if failed else 'every mart equal'}"
    )
    sys.exit(1 if failed else 0)


def compared_tables(duck: duckdb.DuckDBPyConnection, spark: duckdb.DuckDBPyConnection) -> int:
    """Prints each table's comparison; returns how many differ."""
    failed = 0
    print(f"{'table':36s}{'rows':>12s}{'max rel diff':>14s}  verdict")
    for name in MARTS + ALSO:
        cols, a = sorted_rows(duck, name)
        _, b = sorted_rows(spark, name)
        worst, problem = compare_table(cols, a, b)
        failed += problem is not None
        print(f"{name:36s}{len(a):>12,d}{worst:>14.2e}  {problem or 'equal'}", flush=True)
    return failed


if __name__ == "__main__":
    main()
