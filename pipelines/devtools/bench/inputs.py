"""The benchmark's inputs: synthetic fleets like those of issue 6 (1 s instantaneous telemetry, continuous batching
with a mean concurrency about 6) in the order they are logged, generated once per scale with a fixed seed and
cached as Parquet under bench_data/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.settings import current

# requests, devices, seconds of telemetry per device (1 s samples): M and L as in issue 6
SCALES = {"S": (100_000, 10, 16_300), "M": (1_000_000, 100, 16_300), "L": (9_900_000, 1_000, 16_300)}
T0_US = 1_793_577_600 * 1_000_000  # 2026-11-02 00:00 UTC
TS_TYPE = pa.timestamp("us", "UTC")


def bench_dir(scale: str) -> Path:
    return current().bench_data / scale


def generate_landing(landing: Path, generate_args: list[str]) -> None:
    """``infercost generate ARGS --out landing``, written under a ``.partial`` name and renamed when complete: a
    generation killed halfway (or still running) never looks like a finished landing to the next bench."""
    partial = landing.with_name(landing.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(landing, ignore_errors=True)
    cli = [sys.executable, "-m", "pipelines.cli", "generate"]
    subprocess.run(cli + generate_args + ["--out", str(partial)], check=True)
    partial.rename(landing)


def synthetic_inputs(n_requests: int, n_devices: int, horizon_s: int, seed: int = 1) -> tuple[pa.Table, pa.Table]:
    """Requests and telemetry as a serving fleet logs them and the warehouse hands them over: request rows in the
    order they completed (a serving log is written at completion), scrambled int64 request ids, string device ids
    interleaved; telemetry rows in time order, every device's sample of a second together (a collector's poll)."""
    rng = np.random.default_rng(seed)
    per_dev = n_requests // n_devices
    dev = np.repeat(np.arange(n_devices), per_dev)
    n = len(dev)
    mean_len = 6.0 * horizon_s / per_dev  # Little's law for a mean concurrency of 6
    start = rng.uniform(0, horizon_s - 4 * mean_len, n)
    length = np.minimum(rng.exponential(mean_len, n), 4 * mean_len) + 0.05
    start_us = T0_US + np.round(start * 1e6).astype(np.int64)
    end_us = T0_US + np.round((start + length) * 1e6).astype(np.int64)
    weight = rng.integers(1, 1000, n).astype(np.float64)
    logged = np.argsort(end_us, kind="stable")  # the order requests complete in
    # unique, scrambled, positive int64 ids (an odd multiplier is a bijection modulo 2**63)
    ids = (np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) % np.uint64(2**63)).astype(np.int64)
    names = np.array([f"gpu-{i:04d}" for i in range(n_devices)])
    requests = pa.table(
        {
            "request_id": pa.array(ids),
            "device_id": pa.array(names[dev[logged]]),
            "started_at": pa.array(start_us[logged]).cast(TS_TYPE),
            "ended_at": pa.array(end_us[logged]).cast(TS_TYPE),
            "weight": weight[logged],
        }
    )
    t = np.arange(horizon_s + 1)
    telemetry = pa.table(
        {
            "device_id": pa.array(np.tile(names, len(t))),
            "ts": pa.array(T0_US + np.repeat(t, n_devices).astype(np.int64) * 1_000_000).cast(TS_TYPE),
            "power_w": np.round(rng.uniform(70, 700, n_devices * len(t)), 2),
        }
    )
    return requests, telemetry


def data_dir(scale: str) -> Path:
    """The scale's inputs (the folder name says their layout: rows in the order they are logged)."""
    return bench_dir(f"{scale}-logged")


def ensure_data(scale: str) -> Path:
    folder = data_dir(scale)
    if not (folder / "requests.parquet").exists():
        folder.mkdir(parents=True, exist_ok=True)
        requests, telemetry = synthetic_inputs(*SCALES[scale])
        pq.write_table(requests, folder / "requests.parquet")
        pq.write_table(telemetry, folder / "telemetry.parquet")
    return folder


def load(folder: Path) -> tuple[pa.Table, pa.Table]:
    return pq.read_table(folder / "requests.parquet"), pq.read_table(folder / "telemetry.parquet")
