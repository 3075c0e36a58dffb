"""The spark engine beside the duckdb engine on one generated fleet-day: per-step times, 1 and 2 executors, rows
per second per core, and what that means for a 10,000-accelerator fleet.

    python -m pipelines.devtools.bench.spark_bench --devices 32      (make bench-spark DEVICES=32)

The fleet-day is written once by the generator under bench_data/fleet-N/. Each engine loads it into a fresh home:
fleet files and prices on DuckDB (both engines), then requests, telemetry and attribution, each step timed. The
Spark runs use a ``local-cluster[E,1,1024]`` master: E executor JVMs of one core each on this machine, a real
driver-executor split (shuffles, Arrow to Python workers), so its per-core rate is a floor for a real cluster's.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from pipelines.attribution.day import attribute_day
from pipelines.devtools.bench.inputs import bench_dir
from pipelines.ingest.loader import ingest_feed, ingest_fleet_table
from pipelines.warehouse.connection import connect
from pipelines.warehouse.contracts import FLEET_TABLES

DAY = date(2026, 11, 2)
TARGET_DEVICES = 10_000
SAMPLES_PER_DEVICE_DAY = 86_400  # 1 s telemetry


def _landing(devices: int, say) -> Path:
    landing = bench_dir(f"fleet-{devices}")
    if not (landing / "fleet" / "inventory.csv").exists():
        say(f"generating a {devices}-accelerator fleet-day into {landing} (once) ...")
        cmd = [sys.executable, "-m", "pipelines.cli", "generate", "--devices", str(devices), "--out", str(landing)]
        subprocess.run(cmd, check=True)
    return landing


def _timed(steps: dict, name: str, fn):
    t0 = time.perf_counter()
    out = fn()
    steps[name] = time.perf_counter() - t0
    return out


def _fresh(home: Path, landing: Path):
    if home.exists():
        shutil.rmtree(home)
    con = connect(home / "warehouse.duckdb")
    for name in FLEET_TABLES:
        ingest_fleet_table(con, name, landing)
    ingest_feed(con, "prices", landing, DAY)
    return con


def run_duckdb(landing: Path, home: Path) -> tuple[dict, dict]:
    con, steps = _fresh(home, landing), {}
    req = _timed(steps, "ingest requests", lambda: ingest_feed(con, "requests", landing, DAY))
    tel = _timed(steps, "ingest telemetry", lambda: ingest_feed(con, "telemetry", landing, DAY))
    att = _timed(steps, "attribution", lambda: attribute_day(con, DAY))
    con.close()
    return steps, {"requests": req.rows_read, "telemetry": tel.rows_read, "energy_j": att.attributed_energy_j}


def run_spark(landing: Path, home: Path, executors: int) -> tuple[dict, dict]:
    from pipelines.spark.attribution import attribute_day_spark
    from pipelines.spark.ingest import ingest_feed_spark
    from pipelines.spark.session import spark_session

    con, steps, root = _fresh(home, landing), {}, home / "lake"
    spark = _timed(steps, "session start", lambda: spark_session(f"local-cluster[{executors},1,1024]"))
    req = _timed(steps, "ingest requests", lambda: ingest_feed_spark(spark, con, "requests", landing, DAY, root=root))
    tel = _timed(steps, "ingest telemetry", lambda: ingest_feed_spark(spark, con, "telemetry", landing, DAY, root=root))
    att = _timed(steps, "attribution", lambda: attribute_day_spark(spark, con, DAY, root=root))
    spark.stop()
    con.close()
    return steps, {"requests": req.rows_read, "telemetry": tel.rows_read, "energy_j": att.attributed_energy_j}


def _sizing(devices: int, rows: int, seconds: float, cores: int) -> str:
    """Cores a 10,000-accelerator day needs to finish within an hour, from this run's rows per second per core."""
    per_core = rows / seconds / cores
    target_rows = rows * TARGET_DEVICES / devices
    core_hours = target_rows / per_core / 3600
    return (
        f"{per_core:,.0f} rows/s/core (requests + telemetry, ingest and attribution); a {TARGET_DEVICES:,}-"
        f"accelerator day is ~{target_rows / 1e6:,.0f}M rows = {core_hours:,.1f} core-hours: "
        f"{max(1, round(core_hours + 0.5)):,} cores for a 1-hour run"
    )


NAMES = ["session start", "ingest requests", "ingest telemetry", "attribution"]


def _line(label: str, steps: dict, counts: dict, devices: int, cores: int) -> str:
    work_s = sum(v for k, v in steps.items() if k != "session start")
    cells = "".join(f"{steps.get(n, 0.0):18.1f}" for n in NAMES)
    sizing = _sizing(devices, counts["requests"] + counts["telemetry"], work_s, cores)
    return f"{label:38s}{cells}{work_s:10.1f}{counts['energy_j']:18.1f}\n  {sizing}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=32)
    parser.add_argument("--executors", default="1,2", help="the local-cluster sizes to run, comma-separated")
    args = parser.parse_args(argv)
    landing = _landing(args.devices, print)
    work = landing.parent / f"spark-bench-{args.devices}"
    steps, counts = run_duckdb(landing, work / "duckdb")
    print(f"fleet-day of {args.devices} accelerators: {counts['requests']:,} requests, {counts['telemetry']:,} samples")
    print(f"{'engine':38s}" + "".join(f"{n:>18s}" for n in NAMES) + f"{'total s':>10s}{'energy J':>18s}")
    print(_line("duckdb (1 process)", steps, counts, args.devices, 1), flush=True)
    for executors in map(int, args.executors.split(",")):
        steps, counts = run_spark(landing, work / f"spark-{executors}", executors)
        label = f"spark local-cluster, {executors} executor(s)"
        print(_line(label, steps, counts, args.devices, executors), flush=True)


if __name__ == "__main__":
    main()
