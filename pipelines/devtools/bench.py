"""Kernel benchmark: pipelines.attribution.kernel against the strongest exact DuckDB SQL we can write, and a floor.

Inputs are synthetic fleets like those of issue 6 (1 s instantaneous telemetry, continuous batching with a mean
concurrency about 6), generated once per scale with a fixed seed and cached as Parquet under bench_data/.

* kernel: ``attribute_energy`` (one bucket per day, so its pieces are per request like the SQL's rows);
* sql: a window-function sweep over a unioned event table in DuckDB (rates summed per device in time order,
  power joined ASOF, compensated (fsum) prefix sums of P/D per device, request energy = rate x (G(end) -
  G(start)));
* floor: reading the input columns plus one argsort and one cumsum over the N+M packed keys.

Each method runs in its own process (so peak memory is its own), ``--repeat`` rounds that interleave the methods
(a noisy neighbour then slows them alike); the table shows medians, and ratios are medians of per-round ratios.
A process's one-off start (imports; for the kernel, loading the compiled sweep from numba's cache) is timed apart
and shown in its own column: a pipeline pays it once, not per partition.
Run: ``infercost bench --scale S|M|L`` or ``make bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.settings import current

# requests, devices, seconds of telemetry per device (1 s samples): M and L as in issue 6
SCALES = {"S": (100_000, 10, 16_300), "M": (1_000_000, 100, 16_300), "L": (9_900_000, 1_000, 16_300)}
T0_US = 1_793_577_600 * 1_000_000  # 2026-11-02 00:00 UTC


def bench_dir(scale: str) -> Path:
    return current().bench_data / scale


def synthetic_inputs(n_requests: int, n_devices: int, horizon_s: int, seed: int = 1) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    per_dev = n_requests // n_devices
    dev = np.repeat(np.arange(n_devices), per_dev)
    n = len(dev)
    mean_len = 6.0 * horizon_s / per_dev  # Little's law for a mean concurrency of 6
    start = rng.uniform(0, horizon_s - 4 * mean_len, n)
    length = np.minimum(rng.exponential(mean_len, n), 4 * mean_len) + 0.05
    names = np.array([f"gpu-{i:04d}" for i in range(n_devices)])
    requests = pa.table({
        "request_id": pa.array(np.char.add("r", np.arange(n).astype(str))),
        "device_id": pa.array(names[dev]),
        "started_at": pa.array(T0_US + np.round(start * 1e6).astype(np.int64)).cast(pa.timestamp("us", "UTC")),
        "ended_at": pa.array(T0_US + np.round((start + length) * 1e6).astype(np.int64)).cast(
            pa.timestamp("us", "UTC")),
        "weight": rng.integers(1, 1000, n).astype(np.float64),
    })
    t = np.arange(horizon_s + 1)
    telemetry = pa.table({
        "device_id": pa.array(np.repeat(names, len(t))),
        "ts": pa.array(T0_US + np.tile(t, n_devices).astype(np.int64) * 1_000_000).cast(pa.timestamp("us", "UTC")),
        "power_w": np.round(rng.uniform(70, 700, n_devices * len(t)), 2),
    })
    return requests, telemetry


def ensure_data(scale: str) -> Path:
    folder = bench_dir(scale)
    if not (folder / "requests.parquet").exists():
        folder.mkdir(parents=True, exist_ok=True)
        requests, telemetry = synthetic_inputs(*SCALES[scale])
        pq.write_table(requests, folder / "requests.parquet")
        pq.write_table(telemetry, folder / "telemetry.parquet")
    return folder


def load(folder: Path) -> tuple[pa.Table, pa.Table]:
    return pq.read_table(folder / "requests.parquet"), pq.read_table(folder / "telemetry.parquet")


def run_kernel(requests: pa.Table, telemetry: pa.Table) -> pa.Table:
    from pipelines.attribution.kernel import attribute_energy

    # one bucket per day: each request row is one piece (the pieces are what the warehouse stores)
    return attribute_energy(requests, telemetry, max_gap_s=10.0, bucket_s=86_400).per_request_bucket.select(
        ["request_id", "energy_j"])


def start_kernel(requests: pa.Table, telemetry: pa.Table) -> None:
    """Once per process: import and load the compiled sweep (numba's cache) on a few rows."""
    run_kernel(requests.slice(0, 100), telemetry.slice(0, 1000))


def start_sql(requests: pa.Table, telemetry: pa.Table) -> None:
    import duckdb

    duckdb.connect().execute("SELECT 1").fetchall()


SWEEP_SQL = """
WITH req AS (
    SELECT request_id, device_id, epoch_us(started_at) AS s, epoch_us(ended_at) AS e,
           weight / ((epoch_us(ended_at) - epoch_us(started_at)) / 1e6) AS rate
    FROM requests WHERE ended_at > started_at
),
seg AS (  -- instantaneous samples held until the next one
    SELECT device_id, epoch_us(ts) AS a, power_w FROM telemetry
),
events AS (
    SELECT device_id, t, sum(d_rate) AS d_rate, sum(d_count) AS d_count FROM (
        SELECT device_id, s AS t, rate AS d_rate, 1 AS d_count FROM req
        UNION ALL SELECT device_id, e, -rate, -1 FROM req
        UNION ALL SELECT device_id, a, 0, 0 FROM seg
    ) GROUP BY ALL
),
sweep AS (
    SELECT device_id, t,
           lead(t) OVER w AS t_next,
           fsum(d_rate) OVER (w ROWS UNBOUNDED PRECEDING) AS d,
           sum(d_count) OVER (w ROWS UNBOUNDED PRECEDING) AS active
    FROM events WINDOW w AS (PARTITION BY device_id ORDER BY t)
),
intervals AS (
    SELECT sweep.*, seg.power_w
    FROM sweep ASOF LEFT JOIN seg ON sweep.device_id = seg.device_id AND sweep.t >= seg.a
),
x AS (
    SELECT device_id, t,
           CASE WHEN active > 0 AND t_next IS NOT NULL AND power_w IS NOT NULL
                THEN power_w * ((t_next - t) / 1e6) / d ELSE 0 END AS x
    FROM intervals
),
g AS (
    SELECT device_id, t, fsum(x) OVER (PARTITION BY device_id ORDER BY t ROWS UNBOUNDED PRECEDING) - x AS g
    FROM x
)
SELECT req.request_id, req.rate * (ge.g - gs.g) AS energy_j
FROM req
JOIN g gs ON gs.device_id = req.device_id AND gs.t = req.s
JOIN g ge ON ge.device_id = req.device_id AND ge.t = req.e
"""


def run_sql(requests: pa.Table, telemetry: pa.Table) -> pa.Table:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("requests", requests)
    con.register("telemetry", telemetry)
    return con.sql(SWEEP_SQL).to_arrow_table()


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


def _child(method: str, scale: str, check: bool) -> None:
    """One timed run in this process: prints JSON with seconds, peak RSS, and (optionally) the result's digest."""
    requests, telemetry = load(bench_dir(scale))
    t0 = time.perf_counter()
    STARTUP[method](requests, telemetry)
    startup = time.perf_counter() - t0
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    out = METHODS[method](requests, telemetry)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"method": method, "seconds": seconds, "startup_s": startup, "peak_mb": peak_mb,
              "input_mb": base_rss / 1024}
    if check and method in ("kernel", "sql"):
        folder = bench_dir(scale)
        pq.write_table(out.sort_by("request_id"), folder / f"result_{method}.parquet")
    print(json.dumps(result))


def compare_results(scale: str) -> tuple[float, float]:
    """Median and largest relative difference between the kernel's and the SQL's energy per request."""
    folder = bench_dir(scale)
    k = pq.read_table(folder / "result_kernel.parquet")
    s = pq.read_table(folder / "result_sql.parquet")
    ks = dict(zip(k["request_id"].to_pylist(), k["energy_j"].to_numpy()))
    sv = s["energy_j"].to_numpy()
    kv = np.array([ks[r] for r in s["request_id"].to_pylist()])
    rel = np.abs(kv - sv) / np.maximum(np.abs(sv), 1e-12)
    return (float(np.median(rel)), float(rel.max())) if len(rel) else (0.0, 0.0)


def exact_energy_j(requests: pa.Table, telemetry: pa.Table, request_id: str, max_gap_s: float = 10.0) -> float:
    """One request's energy under the kernel's rule in exact rational arithmetic (the bench's inputs: instantaneous
    samples held until the next one, at most max_gap): the referee when the kernel and the SQL disagree."""
    import bisect
    from fractions import Fraction

    import pyarrow.compute as pc

    row = requests.filter(pc.equal(requests["request_id"], request_id))
    device = row["device_id"][0].as_py()
    s0 = pc.cast(row["started_at"], pa.int64())[0].as_py()
    e0 = pc.cast(row["ended_at"], pa.int64())[0].as_py()
    same = requests.filter(pc.equal(requests["device_id"], device))
    starts = pc.cast(same["started_at"], pa.int64()).to_pylist()
    ends = pc.cast(same["ended_at"], pa.int64()).to_pylist()
    rates = [(a, b, Fraction(w) / (b - a)) for a, b, w in zip(starts, ends, same["weight"].to_pylist()) if b > a]
    samples = telemetry.filter(pc.equal(telemetry["device_id"], device))
    ts = pc.cast(samples["ts"], pa.int64()).to_pylist()
    power = samples["power_w"].to_pylist()
    cuts = sorted({t for t in ts + starts + ends if s0 < t < e0} | {s0, e0})
    mine = Fraction(row["weight"][0].as_py()) / (e0 - s0)
    total = Fraction(0)
    for a, b in zip(cuts[:-1], cuts[1:]):
        i = bisect.bisect_right(ts, a) - 1
        if i < 0 or i + 1 >= len(ts) or a - ts[i] >= max_gap_s * 1e6:
            continue  # not metered
        d = sum(rate for x, y, rate in rates if x <= a and y >= b)
        total += Fraction(power[i]) * Fraction(b - a, 1_000_000) * mine / d
    return float(total)


def referee(scale: str, n: int = 5) -> tuple[float, float]:
    """Largest relative error of the kernel and of the SQL against exact arithmetic, on the n requests where the
    two differ most."""
    folder = bench_dir(scale)
    k = pq.read_table(folder / "result_kernel.parquet")
    s = pq.read_table(folder / "result_sql.parquet")
    kd = dict(zip(k["request_id"].to_pylist(), k["energy_j"].to_pylist()))
    ids = s["request_id"].to_pylist()
    sv = s["energy_j"].to_numpy()
    kv = np.array([kd[r] for r in ids])
    worst = np.argsort(np.abs(kv - sv) / np.maximum(np.abs(sv), 1e-12))[-n:]
    requests, telemetry = load(folder)
    errors_k, errors_s = [], []
    for j in worst:
        exact = exact_energy_j(requests, telemetry, ids[j])
        errors_k.append(abs(kv[j] - exact) / exact)
        errors_s.append(abs(sv[j] - exact) / exact)
    return max(errors_k), max(errors_s)


def run(scale: str, repeat: int = 3, methods=("floor", "kernel", "sql"), say=print) -> dict:
    t0 = time.perf_counter()
    folder = ensure_data(scale)
    requests, telemetry = load(folder)
    n_req, n_tel = requests.num_rows, telemetry.num_rows
    del requests, telemetry
    say(f"scale {scale}: {n_req:,} requests, {n_tel:,} telemetry rows (data ready in {time.perf_counter() - t0:.1f} s)")
    # rounds interleave the methods, so that a noisy neighbour slows all of them alike; ratios are per round
    runs = {m: [] for m in methods}
    for i in range(repeat):
        for method in methods:
            proc = subprocess.run([sys.executable, "-m", "pipelines.devtools.bench", "--child", method, "--scale", scale]
                                  + (["--check"] if i == 0 else []), capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"{method} failed: {proc.stderr[-2000:]}")
            runs[method].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        say(f"  round {i + 1}: " + ", ".join(f"{m} {runs[m][-1]['seconds']:.2f} s" for m in methods))
    figures = {}
    for method in methods:
        rs = runs[method]
        figures[method] = {"seconds": statistics.median(r["seconds"] for r in rs),
                           "best_s": min(r["seconds"] for r in rs),
                           "startup_s": statistics.median(r["startup_s"] for r in rs),
                           "peak_mb": max(r["peak_mb"] for r in rs),
                           "input_mb": max(r["input_mb"] for r in rs)}
    ratios = {}
    if "kernel" in runs:
        for method in methods:
            ratios[method] = statistics.median(
                a["seconds"] / k["seconds"] for a, k in zip(runs[method], runs["kernel"]))
    agreement = compare_results(scale) if {"kernel", "sql"} <= set(methods) else (float("nan"), float("nan"))
    exact = referee(scale) if {"kernel", "sql"} <= set(methods) else (float("nan"), float("nan"))
    rows = n_req + n_tel
    say("")
    say(f"{'method':8} {'seconds':>9} {'best s':>8} {'rows/s':>14} {'peak MB':>9} {'inputs MB':>10} "
        f"{'vs kernel':>10} {'startup s':>10}")
    for method, f in figures.items():
        say(f"{method:8} {f['seconds']:9.2f} {f['best_s']:8.2f} {rows / f['seconds']:14,.0f} {f['peak_mb']:9,.0f} "
            f"{f['input_mb']:10,.0f} {ratios.get(method, float('nan')):9.2f}x {f['startup_s']:10.2f}")
    say("(seconds: the run itself, median of the rounds; vs kernel: median of the per-round ratios; startup: once "
        "per process, imports and loading compiled code; peak MB: the process's peak RSS, inputs included)")
    summary = (f"summary {scale}: kernel {figures['kernel']['seconds']:.2f} s is "
               f"{ratios['sql']:.1f}x faster than exact SQL and "
               f"{1 / ratios['floor']:.2f}x the floor; peak "
               f"{figures['kernel']['peak_mb']:,.0f} MB; relative difference to SQL median {agreement[0]:.1e}, "
               f"max {agreement[1]:.1e}; on the 5 requests that differ most, exact arithmetic puts the kernel "
               f"within {exact[0]:.1e} and the SQL within {exact[1]:.1e}"
               if {"kernel", "sql", "floor"} <= set(figures) else "")
    say(summary)
    return {"scale": scale, "requests": n_req, "telemetry_rows": n_tel, "figures": figures, "ratios": ratios,
            "agreement": agreement, "exact": exact}


FLEET_DAY = "2026-11-02"


def fleet_day(devices: int = 1000, say=print) -> dict:
    """The whole pipeline on one generated fleet-day, from raw files to the published marts, timed end to end.

    The landing data is written once by ``infercost generate --devices N`` (1,000 accelerators: 86.4M telemetry
    rows at 1 s and about 13M requests in the spine's formats) under bench_data/fleet-N/; each run materializes the
    day into a fresh warehouse with ``infercost materialize`` in a child process, whose own log shows progress
    and step times. Peak memory is the largest resident set of that process tree.
    """
    landing = bench_dir(f"fleet-{devices}")
    cli = [sys.executable, "-m", "pipelines.cli"]
    if not (landing / "fleet" / "inventory.csv").exists():
        say(f"generating a {devices}-accelerator fleet-day into {landing} (once) ...")
        subprocess.run(cli + ["generate", "--devices", str(devices), "--out", str(landing)], check=True)
    home = landing.parent / f"fleet-{devices}-home"
    if home.exists():
        import shutil

        shutil.rmtree(home)
    env = {**os.environ, "INFERCOST_LANDING": str(landing), "INFERCOST_HOME": str(home)}
    env.pop("INFERCOST_WAREHOUSE", None)
    env.pop("DAGSTER_HOME", None)
    say(f"materializing {FLEET_DAY} from {landing} (progress below) ...")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cli + ["materialize", "--partition", FLEET_DAY], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    steps = ""
    for line in proc.stdout:
        if " - INFO - " in line and ("files," in line or "device group" in line or "attribution 20" in line):
            say("  " + line.split(" - ")[-1].strip()[:160])
        elif line.startswith(("step seconds:", "materialized in")):
            steps = line.strip() if line.startswith("step seconds:") else steps
    seconds = time.perf_counter() - t0
    if proc.wait() != 0:
        raise RuntimeError("the fleet-day materialization failed; run it by hand to see why: "
                           f"INFERCOST_LANDING={landing} INFERCOST_HOME={home} infercost materialize "
                           f"--partition {FLEET_DAY}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    import duckdb

    con = duckdb.connect(str(home / "published" / "warehouse.duckdb"), read_only=True)
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
              for t in ("raw_requests", "raw_telemetry", "fct_request_cost")}
    con.close()
    say(steps)
    say(f"summary fleet-day ({devices} accelerators): {counts['raw_telemetry']:,} telemetry rows and "
        f"{counts['raw_requests']:,} requests to {counts['fct_request_cost']:,} costed requests in {seconds:.0f} s "
        f"({seconds / 60:.1f} min; goal 10), peak {peak_mb:,.0f} MB (goal 8,192)")
    return {"devices": devices, "seconds": seconds, "peak_mb": peak_mb, **counts}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="infercost bench", description=__doc__.split("\n")[0])
    p.add_argument("--scale", choices=sorted(SCALES), default="M")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--fleet-day", action="store_true", help="time the whole pipeline on a generated fleet-day")
    p.add_argument("--devices", type=int, default=1000, help="accelerators of the fleet-day (default 1000)")
    p.add_argument("--child", choices=sorted(METHODS), help=argparse.SUPPRESS)
    p.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args.child, args.scale, args.check)
    elif args.fleet_day:
        fleet_day(args.devices)
    else:
        run(args.scale, args.repeat)


if __name__ == "__main__":
    main()
