"""The kernel benchmark: kernel, exact SQL and floor, each in its own process, in interleaved rounds.

Each method runs in its own process (so peak memory is its own), ``--repeat`` rounds that interleave the methods
(a noisy neighbour then slows them alike); the table shows medians, and ratios are medians of per-round ratios.
The kernel runs twice in its process: the first call (importing the kernel and loading the compiled sweep from
numba's cache included, as a fresh process pays it) and the warm call (as a pipeline pays it per partition); the
table's seconds are the warm call's, the first call's are in their own column. The SQL's one-off start (importing
DuckDB, a connection) is timed apart; the floor has none.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq

from pipelines.devtools.bench.inputs import data_dir, ensure_data, load
from pipelines.devtools.bench.methods import METHODS, STARTUP
from pipelines.devtools.bench.sql_reference import exact_energy_j
from pipelines.devtools.bench.tree_memory import own_peak_bytes
from pipelines.devtools.bench.where_run import where_run


def run_child(method: str, scale: str, check: bool) -> None:
    """One timed run in this process: prints JSON with seconds, peak RSS, and (optionally) writes the result."""
    requests, telemetry = load(data_dir(scale))
    base_rss = own_peak_bytes()
    t0 = time.perf_counter()
    STARTUP[method](requests, telemetry)
    startup = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    out = METHODS[method](requests, telemetry)
    first = time.perf_counter() - t0
    seconds, cpu = first, time.process_time() - c0
    if method == "kernel":  # the warm call
        del out
        t0, c0 = time.perf_counter(), time.process_time()
        out = METHODS[method](requests, telemetry)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_mb = own_peak_bytes() / 2**20
    result = {
        "method": method,
        "seconds": seconds,
        "cpu_s": cpu,
        "first_s": startup + first,
        "peak_mb": peak_mb,
        "input_mb": base_rss / 2**20,
    }
    if check and method in ("kernel", "sql"):
        pq.write_table(out.sort_by("request_id"), data_dir(scale) / f"result_{method}.parquet")
    print(json.dumps(result))


def _energies(scale: str) -> tuple[list, np.ndarray, np.ndarray]:
    """Request ids, the kernel's and the SQL's energy per request, in the same order."""
    folder = data_dir(scale)
    k = pq.read_table(folder / "result_kernel.parquet")
    s = pq.read_table(folder / "result_sql.parquet")
    if not k["request_id"].equals(s["request_id"]):
        raise AssertionError("the kernel and the SQL returned different requests")
    return k["request_id"], k["energy_j"].to_numpy(), s["energy_j"].to_numpy()


def compare_results(scale: str) -> tuple[float, float]:
    """Median and largest relative difference between the kernel's and the SQL's energy per request."""
    _, kv, sv = _energies(scale)
    rel = np.abs(kv - sv) / np.maximum(np.abs(sv), 1e-12)
    return (float(np.median(rel)), float(rel.max())) if len(rel) else (0.0, 0.0)


def referee(scale: str, n: int = 5) -> tuple[float, float]:
    """Largest relative error of the kernel and of the SQL against exact arithmetic, on the n requests where the
    two differ most."""
    ids, kv, sv = _energies(scale)
    worst = np.argsort(np.abs(kv - sv) / np.maximum(np.abs(sv), 1e-12))[-n:]
    requests, telemetry = load(data_dir(scale))
    errors_k, errors_s = [], []
    for j in worst:
        exact = exact_energy_j(requests, telemetry, ids[int(j)].as_py())
        errors_k.append(abs(kv[j] - exact) / exact)
        errors_s.append(abs(sv[j] - exact) / exact)
    return max(errors_k), max(errors_s)


def _rounds(scale: str, repeat: int, methods, say) -> dict[str, list[dict]]:
    """Rounds interleave the methods, so that a noisy neighbour slows all of them alike; ratios are per round."""
    runs = {m: [] for m in methods}
    for i in range(repeat):
        for method in methods:
            proc = subprocess.run(
                [sys.executable, "-m", "pipelines.devtools.bench", "--child", method, "--scale", scale]
                + (["--check"] if i == 0 else []),
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"{method} failed: {proc.stderr[-2000:]}")
            runs[method].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        say(f"  round {i + 1}: " + ", ".join(f"{m} {runs[m][-1]['seconds']:.2f} s" for m in methods))
    return runs


def _figures(runs: dict[str, list[dict]], methods) -> tuple[dict, dict]:
    """Per method: median and best seconds, first call, peak and input MB; and the median per-round ratio to the
    kernel."""
    figures = {}
    for method in methods:
        rs = runs[method]
        figures[method] = {
            "seconds": statistics.median(r["seconds"] for r in rs),
            "best_s": min(r["seconds"] for r in rs),
            "first_s": statistics.median(r["first_s"] for r in rs),
            "cpu_s": statistics.median(r["cpu_s"] for r in rs),
            "peak_mb": max(r["peak_mb"] for r in rs),
            "input_mb": max(r["input_mb"] for r in rs),
        }
    ratios = {}
    if "kernel" in runs:
        for method in methods:
            ratios[method] = statistics.median(
                a["seconds"] / k["seconds"] for a, k in zip(runs[method], runs["kernel"])
            )
    return figures, ratios


def _report(scale: str, rows: int, figures: dict, ratios: dict, agreement, exact, say) -> None:
    say("")
    say(
        f"{'method':8} {'seconds':>9} {'best s':>8} {'rows/s':>14} {'peak MB':>9} {'inputs MB':>10} "
        f"{'vs kernel':>10} {'first s':>8} {'cpu s':>7}"
    )
    for method, f in figures.items():
        say(
            f"{method:8} {f['seconds']:9.2f} {f['best_s']:8.2f} {rows / f['seconds']:14,.0f} {f['peak_mb']:9,.0f} "
            f"{f['input_mb']:10,.0f} {ratios.get(method, float('nan')):9.2f}x {f['first_s']:8.2f} {f['cpu_s']:7.2f}"
        )
    say(
        "(seconds: median of the rounds, the kernel's warm call; vs kernel: median of the per-round ratios; first s: "
        "the first call in a fresh process, imports and loading compiled code included; cpu s: CPU seconds of the "
        "timed call, all threads (steadier than seconds on a loaded machine); peak MB: the process's own peak RSS "
        "(VmHWM), inputs included)"
    )
    summary = (
        f"summary {scale}: kernel {figures['kernel']['seconds']:.2f} s warm "
        f"({figures['kernel']['first_s']:.2f} s first call in a fresh process, pieces and per-request totals) is "
        f"{ratios['sql']:.1f}x faster than exact SQL and "
        f"{1 / ratios['floor']:.2f}x the floor; peak "
        f"{figures['kernel']['peak_mb']:,.0f} MB; relative difference to SQL median {agreement[0]:.1e}, "
        f"max {agreement[1]:.1e}; on the 5 requests that differ most, exact arithmetic puts the kernel "
        f"within {exact[0]:.1e} and the SQL within {exact[1]:.1e}"
        if {"kernel", "sql", "floor"} <= set(figures)
        else ""
    )
    say(summary)


def run(scale: str, repeat: int = 3, methods=("floor", "kernel", "sql"), say=print) -> dict:
    t0 = time.perf_counter()
    folder = ensure_data(scale)
    # counted from the files' footers: the tables read here would stay in this process, which starts every child
    n_req, n_tel = (pq.ParquetFile(folder / f"{name}.parquet").metadata.num_rows for name in ("requests", "telemetry"))
    say(f"scale {scale}: {n_req:,} requests, {n_tel:,} telemetry rows (data ready in {time.perf_counter() - t0:.1f} s)")
    say(where_run())
    runs = _rounds(scale, repeat, methods, say)
    figures, ratios = _figures(runs, methods)
    agreement = compare_results(scale) if {"kernel", "sql"} <= set(methods) else (float("nan"), float("nan"))
    exact = referee(scale) if {"kernel", "sql"} <= set(methods) else (float("nan"), float("nan"))
    _report(scale, n_req + n_tel, figures, ratios, agreement, exact, say)
    say(f"after the rounds: {where_run()}")
    return {
        "scale": scale,
        "requests": n_req,
        "telemetry_rows": n_tel,
        "figures": figures,
        "ratios": ratios,
        "agreement": agreement,
        "exact": exact,
    }
