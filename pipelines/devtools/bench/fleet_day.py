"""The fleet-day benchmark: the whole pipeline on one generated fleet-day, from raw files to the published marts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pipelines.devtools.bench.ingest_readers import compare_readers
from pipelines.devtools.bench.inputs import bench_dir, generate_landing
from pipelines.devtools.bench.tree_memory import TreeSampler
from pipelines.devtools.bench.where_run import where_run

FLEET_DAY = "2026-11-02"
CLI = [sys.executable, "-m", "pipelines.cli"]


def _materialize(landing: Path, home: Path, say) -> tuple[float, str, dict]:
    """``infercost materialize`` of the day into a fresh warehouse under ``home``, its progress relayed; returns
    the seconds it took, its step-times line, its memory (the tree's peak and each step's, bytes) and each step's
    CPU seconds."""
    env = {**os.environ, "INFERCOST_LANDING": str(landing), "INFERCOST_HOME": str(home)}
    env.pop("INFERCOST_WAREHOUSE", None)
    env.pop("DAGSTER_HOME", None)
    say(f"materializing {FLEET_DAY} from {landing} (progress below) ...")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        CLI + ["materialize", "--partition", FLEET_DAY, "--verbose"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    steps, windows = "", {}
    with TreeSampler(proc.pid) as memory:
        for line in proc.stdout:
            if " - INFO - " in line and ("files," in line or "device group" in line or "attribution 20" in line):
                say("  " + line.split(" - ")[-1].strip()[:160])
            elif line.startswith("step seconds:"):
                steps = line.strip()
            elif line.startswith("step windows:"):
                windows = json.loads(line.split(":", 1)[1])
    seconds = time.perf_counter() - t0
    if proc.wait() != 0:
        raise RuntimeError(
            "the fleet-day materialization failed; run it by hand to see why: "
            f"INFERCOST_LANDING={landing} INFERCOST_HOME={home} infercost materialize "
            f"--partition {FLEET_DAY}"
        )
    usage = {
        "tree": memory.peak_bytes(),
        "process": memory.process_peak_bytes,
        "steps": memory.step_peaks(windows),
        "cpu": memory.step_cpu_s(windows),
    }
    usage["seconds"] = {step: end - start for step, (start, end) in windows.items()}
    usage["cores"] = {step: cpu / max(usage["seconds"][step], 1e-9) for step, cpu in usage["cpu"].items()}
    return seconds, steps, usage


def _bare_reads(landing: Path, home: Path, step_s: dict[str, float], say) -> dict:
    """DuckDB's bare read and store of the same raw files (bare_reads.py, a child process), printed beside the
    loaders' steps (``step_s``: each step's seconds): what the loaders' guarantees cost above it."""
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.devtools.bench.bare_reads", str(landing), str(home)],
        capture_output=True,
        text=True,
        check=True,
    )
    bare = json.loads(done.stdout.strip().splitlines()[-1])
    for feed, step in (("requests", "raw_requests"), ("telemetry", "raw_telemetry")):
        b = bare[feed]
        say(
            f"bare read {feed}: {b['rows']:,} rows in {b['seconds']:.1f} s ({b['cpu_s']:.1f} CPU s); the {step} "
            f"step {step_s[step]:.1f} s, {step_s[step] / b['seconds']:.1f}x"
        )
    return bare


def _published_counts(home: Path) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(home / "published" / "warehouse.duckdb"), read_only=True)
    counts = {
        t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
        for t in ("raw_requests", "raw_telemetry", "fct_request_cost")
    }
    con.close()
    return counts


def fleet_day(devices: int = 1000, say=print, readers: bool = False) -> dict:
    """The whole pipeline on one generated fleet-day, from raw files to the published marts, timed end to end.

    The landing data is written once by ``infercost generate --devices N`` (1,000 accelerators: 86.4M telemetry
    rows at 1 s and about 13M requests in the spine's formats) under bench_data/fleet-N/; each run materializes the
    day into a fresh warehouse with ``infercost materialize`` in a child process, whose own log shows progress
    and step times. Peak memory: the largest resident set of one process of the tree, and the tree's summed
    resident sets sampled every 0.25 s (overall and per step). After it, DuckDB's bare read and store of the same
    files (bare_reads.py), beside the two ingest steps. ``readers``: first the request
    and telemetry ingest alone, by the Python and the DuckDB line readers side by side (ingest_readers.py).
    """
    landing = bench_dir(f"fleet-{devices}")
    if not (landing / "fleet" / "inventory.csv").exists():
        say(f"generating a {devices}-accelerator fleet-day into {landing} (once) ...")
        generate_landing(landing, ["--devices", str(devices)])
    compared = compare_readers(landing, FLEET_DAY, say) if readers else {}
    home = landing.parent / f"fleet-{devices}-home"
    if home.exists():
        shutil.rmtree(home)
    say(where_run())
    seconds, steps, memory = _materialize(landing, home, say)
    peak_mb = memory["process"] / 2**20
    tree_peak_mb = memory["tree"] / 2**20
    counts = _published_counts(home)
    say(steps)
    bare = _bare_reads(landing, home, memory["seconds"], say)
    say(
        "step peak MB (the process tree's summed resident sets, sampled every 0.25 s): "
        + ", ".join(f"{step} {peak / 2**20:,.0f}" for step, peak in memory["steps"].items())
    )
    say(
        "step CPU s (the tree's user + system seconds; cores busy = CPU s / wall s): "
        + ", ".join(f"{step} {cpu:,.1f} ({memory['cores'][step]:.2f} cores)" for step, cpu in memory["cpu"].items())
    )
    say(
        f"summary fleet-day ({devices} accelerators): {counts['raw_telemetry']:,} telemetry rows and "
        f"{counts['raw_requests']:,} requests to {counts['fct_request_cost']:,} costed requests in {seconds:.0f} s "
        f"({seconds / 60:.1f} min; goal 4), peak {peak_mb:,.0f} MB in one process, {tree_peak_mb:,.0f} MB for the "
        "process tree (goal 6,144)"
    )
    return {
        "devices": devices,
        "seconds": seconds,
        "peak_mb": peak_mb,
        "tree_peak_mb": tree_peak_mb,
        "step_peak_mb": {step: peak / 2**20 for step, peak in memory["steps"].items()},
        "step_cpu_s": memory["cpu"],
        "readers": compared,
        "bare_reads": bare,
        **counts,
    }
