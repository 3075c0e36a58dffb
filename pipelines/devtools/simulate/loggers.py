"""What real loggers write, derived from the simulated power truth, as files and as telemetry tables.

* ``nvidia_smi_1s``: ``nvidia-smi --query-gpu=timestamp,uuid,power.draw,power.draw.instant --format=csv -lms 1000``
  on Hopper: every ~1 s (the loop drifts a few ms a sample), power.draw the average over the second before the
  timestamp, power.draw.instant the power at the timestamp, both "%.2f W"; timestamps "YYYY/MM/DD HH:MM:SS.mmm".
* ``dcgm_1s``: dcgm-exporter at a 1 s collect interval, exported by a Prometheus range query:
  DCGM_FI_DEV_POWER_USAGE (W, NVML's power usage: the 1 s average on Hopper) and
  DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION (integer mJ since the driver loaded).
* ``nvml_100ms``: an NVML poller every ~100 ms: nvmlDeviceGetTotalEnergyConsumption (integer mJ) and
  nvmlDeviceGetPowerUsage (mW) in the energy-counter CSV the shipped ``energy_counter_csv`` mapping reads.

The truth's energy is piecewise constant per 10 ms step, so its running integral is exact by linear interpolation
at any instant. Each kind's table (device_id, ts, power_w, power_window_s, energy_counter_j, and for nvidia-smi
power_draw_w and power_draw_instant_w) holds the numbers exactly as the file prints them.

Pure numpy/pyarrow; imports no Dagster.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipelines.devtools.simulate.workload import STEP_S, STEP_US, DeviceRun

TS_TYPE = pa.timestamp("us", tz="UTC")
# the baseline of each device's energy counter: the driver loaded some time before the capture
COUNTER_BASE_J = 1.0e6

# kind -> (sample interval s, timing jitter s added to each interval)
KINDS = {"nvidia_smi_1s": (1.0, 0.006), "dcgm_1s": (1.0, 0.002), "nvml_100ms": (0.1, 0.002)}


def _sample_times_us(rng, run: DeviceRun, interval_s: float, jitter_s: float) -> np.ndarray:
    """Sample times (whole ms) from shortly after the device's start to its end."""
    span_s = len(run.power_w) * STEP_S
    n = int(span_s / interval_s) + 2
    gaps = interval_s + rng.uniform(0.0, jitter_s, n)
    t_s = rng.uniform(0.0, interval_s) + np.cumsum(gaps) - gaps[0]
    t_s = t_s[t_s <= span_s - 1e-3]
    return run.t0_us + (np.round(t_s * 1000).astype(np.int64) * 1000)


def _energy_at(run: DeviceRun, t_us: np.ndarray) -> np.ndarray:
    """The device's true energy (J) from t0 to each instant (before t0 and after the end: none/held)."""
    cum = np.concatenate(([0.0], np.cumsum(run.power_w * STEP_S)))
    grid = np.arange(len(cum)) * float(STEP_US)
    return np.interp((t_us - run.t0_us).astype(np.float64), grid, cum)


def _power_at(run: DeviceRun, t_us: np.ndarray) -> np.ndarray:
    k = np.clip((t_us - run.t0_us) // STEP_US, 0, len(run.power_w) - 1)
    return run.power_w[k]


def kind_table(rng, run: DeviceRun, kind: str) -> pa.Table:
    """One device's samples of one logger kind, with the values rounded as the logger prints them."""
    t = _sample_times_us(rng, run, *KINDS[kind])
    energy = _energy_at(run, t)
    avg_1s = (energy - _energy_at(run, t - 1_000_000)) / 1.0
    counter_mj = np.floor((COUNTER_BASE_J + energy) * 1000.0)
    cols = {"device_id": pa.array([run.device_id] * len(t)), "ts": pa.array(t, pa.int64()).cast(TS_TYPE)}
    if kind == "nvidia_smi_1s":
        cols["power_draw_w"] = np.round(avg_1s, 2)
        cols["power_draw_instant_w"] = np.round(_power_at(run, t), 2)
    elif kind == "dcgm_1s":
        cols["power_w"] = np.round(avg_1s, 3)
        cols["power_window_s"] = np.full(len(t), 1.0)
        cols["energy_counter_j"] = counter_mj / 1000.0
    else:
        cols["power_w"] = np.round(_power_at(run, t) * 1000.0) / 1000.0
        cols["power_window_s"] = np.zeros(len(t))
        cols["energy_counter_j"] = counter_mj / 1000.0
    return pa.table(cols)


def _nvsmi_time(t_us: np.ndarray) -> list[str]:
    out = []
    for v in t_us.tolist():
        d = datetime.fromtimestamp(v // 1_000_000, UTC)
        out.append(f"{d:%Y/%m/%d %H:%M:%S}.{(v % 1_000_000) // 1000:03d}")
    return out


def write_nvidia_smi_csv(path: Path, table: pa.Table) -> None:
    """The file nvidia-smi writes with --format=csv (units in the header and after each value)."""
    lines = ["timestamp, uuid, power.draw [W], power.draw.instant [W]"]
    ts = table["ts"].cast(pa.int64()).to_numpy()
    for when, dev, avg, inst in zip(
        _nvsmi_time(ts),
        table["device_id"].to_pylist(),
        table["power_draw_w"].to_pylist(),
        table["power_draw_instant_w"].to_pylist(),
    ):
        lines.append(f"{when}, {dev}, {avg:.2f} W, {inst:.2f} W")
    path.write_text("\n".join(lines) + "\n")


def write_energy_counter_csv(path: Path, table: pa.Table, host: str = "sim-host") -> None:
    """An NVML poller's CSV: unix seconds, uuid, total energy (integer mJ), power (integer mW), host."""
    lines = ["timestamp,gpu_uuid,total_energy_mj,power_mw,hostname"]
    ts = table["ts"].cast(pa.int64()).to_numpy()
    for t, dev, e, p in zip(
        ts.tolist(), table["device_id"].to_pylist(), table["energy_counter_j"].to_pylist(), table["power_w"].to_pylist()
    ):
        lines.append(f"{t // 1000 / 1000:.3f},{dev},{round(e * 1000)},{round(p * 1000)},{host}")
    path.write_text("\n".join(lines) + "\n")


def write_prometheus_range_json(path: Path, table: pa.Table, host: str = "sim-host") -> None:
    """A Prometheus /api/v1/query_range answer for the DCGM power and energy series of the table's devices."""
    result = []
    for dev in sorted(set(table["device_id"].to_pylist())):
        rows = table.filter(pa.compute.equal(table["device_id"], dev))
        t_s = (rows["ts"].cast(pa.int64()).to_numpy() // 1000 / 1000).tolist()
        labels = {"gpu": "0", "UUID": dev, "Hostname": host}
        for name, values in (
            ("DCGM_FI_DEV_POWER_USAGE", [f"{v:.3f}" for v in rows["power_w"].to_pylist()]),
            (
                "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
                [str(round(v * 1000)) for v in rows["energy_counter_j"].to_pylist()],
            ),
        ):
            result.append({"metric": {"__name__": name, **labels}, "values": [[t, v] for t, v in zip(t_s, values)]})
    path.write_text(json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}))


def logger_tables(runs: list[DeviceRun], seed: int) -> dict[str, pa.Table]:
    """Every logger kind's table over all devices (each kind with its own sample timing)."""
    out = {}
    for i, kind in enumerate(KINDS):
        rng = np.random.default_rng([seed, i])
        out[kind] = pa.concat_tables([kind_table(rng, run, kind) for run in runs])
    return out


def write_logger_files(folder: Path, tables: dict[str, pa.Table], day: str) -> dict[str, Path]:
    """The files each logger would leave, in a landing folder's telemetry/ directory (one folder per kind)."""
    paths = {}
    for kind, writer, name in (
        ("nvidia_smi_1s", write_nvidia_smi_csv, f"sim-host_{day}.csv"),
        ("dcgm_1s", write_prometheus_range_json, f"dcgm_{day}.json"),
        ("nvml_100ms", write_energy_counter_csv, f"nvml_{day}.csv"),
    ):
        target = Path(folder) / kind / "telemetry"
        target.mkdir(parents=True, exist_ok=True)
        writer(target / name, tables[kind])
        paths[kind] = target / name
    return paths
