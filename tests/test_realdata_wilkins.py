"""Real V100 power traces (100 ms nvidia-smi) against the energy each request's serving process logged (NVML).

Data: ../shared/realdata/wilkins-energy-inference (see its SOURCE.md). Telemetry goes through the real ingest
(nvidia-smi CSV with units in values, naive America/New_York timestamps, instantaneous power.draw on Volta); the
requests are read from the run's request log; the kernel attributes each GPU's energy to the requests.
"""

import csv
from datetime import UTC, datetime, timedelta
from statistics import median

import pyarrow as pa
import pytest

from pipelines.attribution.kernel import TS_TYPE, attribute_energy
from pipelines.ingest.loader import ingest_files
from pipelines.warehouse.connection import connect

RUNS = {
    "llama2-7b_palmetto-v100_2024-03-29_08-43-09": "Llama-2-7b-chat-hf-palmetto-v100-1.csv",
    "mistral-7b_palmetto-v100_2024-03-29_11-19-25": "Mistral-7B-v0.1-palmetto-v100-1.csv",
}


def read_request_log(path):
    rows = []
    with open(path, newline="") as f:
        for rec in csv.reader(f):
            if len(rec) == 18 and rec[1].startswith("start-inference"):
                start = datetime.fromtimestamp(float(rec[0]), UTC)
                rows.append((rec[1], start, start + timedelta(seconds=float(rec[2])), float(rec[5]) / 1e6))
    return rows


@pytest.mark.parametrize("run", sorted(RUNS))
def test_attributed_energy_matches_the_logged_gpu_energy(run, realdata, tmp_path):
    folder = realdata / "wilkins-energy-inference" / run
    logged = read_request_log(folder / RUNS[run])
    assert len(logged) > 60
    con = connect(tmp_path / "w.duckdb")
    day = logged[0][1].date()
    report = ingest_files(
        con,
        "telemetry",
        [folder / "nvidia-smi.csv"],
        day,
        options={"timezone": "America/New_York", "host": "palmetto-v100", "power_draw_window_s": 0},
    )
    assert report.rows_quarantined == 0 and report.rows_loaded > 16_000
    telemetry = con.sql("SELECT device_id, ts, power_w, power_window_s FROM raw_telemetry").to_arrow_table()
    requests = pa.table(
        {
            "request_id": [r[0] for r in logged],
            "device_id": ["palmetto-v100"] * len(logged),
            "started_at": pa.array([r[1] for r in logged], TS_TYPE),
            "ended_at": pa.array([r[2] for r in logged], TS_TYPE),
            "weight": [1.0] * len(logged),
        }
    )
    result = attribute_energy(requests, telemetry, max_gap_s=1.0)
    got = dict(zip(result.per_request["request_id"].to_pylist(), result.per_request["energy_j"].to_pylist()))
    errors = [abs(got[tag] - truth) / truth for tag, _, _, truth in logged]
    assert max(r for r in result.per_request["unmetered_s"].to_pylist()) == 0.0
    # per request within 1.5 % of the counter (measured: median 0.1-0.2 %, max 1.4 %)
    assert median(errors) < 0.005, f"median error {median(errors):.4f}"
    assert max(errors) < 0.015, f"max error {max(errors):.4f}"
    total_err = abs(sum(got.values()) - sum(r[3] for r in logged)) / sum(r[3] for r in logged)
    assert total_err < 0.005
    assert result.attributed_energy_j + result.idle_energy_j == pytest.approx(result.metered_energy_j, rel=1e-9)


def one_second_averages(telemetry: pa.Table) -> pa.Table:
    """What nvidia-smi's power.draw reports on a modern GPU: the average of the last second, sampled each second,
    computed from the 100 ms instantaneous trace by the kernel's own integration."""
    ts = telemetry["ts"].to_pylist()
    grid = [ts[0] + timedelta(seconds=k) for k in range(1, int((ts[-1] - ts[0]).total_seconds()))]
    windows = pa.table(
        {
            "request_id": [str(i) for i in range(len(grid))],
            "device_id": ["palmetto-v100"] * len(grid),
            "started_at": pa.array([g - timedelta(seconds=1) for g in grid], TS_TYPE),
            "ended_at": pa.array(grid, TS_TYPE),
            "weight": [1.0] * len(grid),
        }
    )
    # the windows tile time without overlap, so each gets exactly its own second's energy
    energy = attribute_energy(windows, telemetry, max_gap_s=1.0).per_request["energy_j"].to_pylist()
    return pa.table(
        {
            "device_id": ["palmetto-v100"] * len(grid),
            "ts": pa.array(grid, TS_TYPE),
            "power_w": energy,
            "power_window_s": [1.0] * len(grid),
        }
    )


@pytest.mark.parametrize("run", sorted(RUNS))
def test_one_second_power_draw_meets_the_accuracy_goal(run, realdata, tmp_path):
    """Issue goal for 1 s power telemetry: per-request |error| median <= 2 %, p90 <= 5 %, totals within 2 %."""
    folder = realdata / "wilkins-energy-inference" / run
    logged = read_request_log(folder / RUNS[run])
    con = connect(tmp_path / "w.duckdb")
    ingest_files(
        con,
        "telemetry",
        [folder / "nvidia-smi.csv"],
        logged[0][1].date(),
        options={"timezone": "America/New_York", "host": "palmetto-v100", "power_draw_window_s": 0},
    )
    fine = con.sql("SELECT device_id, ts, power_w, power_window_s FROM raw_telemetry ORDER BY ts").to_arrow_table()
    coarse = one_second_averages(fine)
    requests = pa.table(
        {
            "request_id": [r[0] for r in logged],
            "device_id": ["palmetto-v100"] * len(logged),
            "started_at": pa.array([r[1] for r in logged], TS_TYPE),
            "ended_at": pa.array([r[2] for r in logged], TS_TYPE),
            "weight": [1.0] * len(logged),
        }
    )
    result = attribute_energy(requests, coarse, max_gap_s=5.0)
    got = dict(zip(result.per_request["request_id"].to_pylist(), result.per_request["energy_j"].to_pylist()))
    errors = sorted(abs(got[tag] - truth) / truth for tag, _, _, truth in logged)
    p90 = errors[int(0.9 * (len(errors) - 1))]
    assert median(errors) <= 0.02 and p90 <= 0.05, (median(errors), p90)
    total = sum(r[3] for r in logged)
    assert abs(sum(got.values()) - total) / total <= 0.02


def test_validate_energy_command_on_real_windows(realdata, tmp_path):
    """`infercost validate-energy` with (device, window, energy) ground truth taken from the run's own log."""
    from pipelines.attribution.validation import validate_energy

    run = "llama2-7b_palmetto-v100_2024-03-29_08-43-09"
    folder = realdata / "wilkins-energy-inference" / run
    logged = read_request_log(folder / RUNS[run])
    con = connect(tmp_path / "w.duckdb")
    ingest_files(
        con,
        "telemetry",
        [folder / "nvidia-smi.csv"],
        logged[0][1].date(),
        options={"timezone": "America/New_York", "host": "palmetto-v100", "power_draw_window_s": 0},
    )
    truth = tmp_path / "truth.csv"
    with open(truth, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["device_id", "window_start", "window_end", "energy_j", "group"])
        for tag, start, end, energy in logged:
            w.writerow(["palmetto-v100", start.isoformat(), end.isoformat(), energy, tag.split("-")[2]])
    report = validate_energy(con, truth)
    assert len(report.rows) == len(logged) and report.missing == 0
    assert report.median_abs_error < 0.005 and report.p90_abs_error < 0.01
    groups = {g["group"]: g for g in report.groups}
    assert set("ABCDEFGHI") <= set(groups) and abs(groups["(all)"]["error"]) < 0.005
    # totals per workload phase (prompt length A..I) within 2 %
    assert all(abs(g["error"]) < 0.02 for g in report.groups)
    assert "median" in report.text() and "(all)" in report.text()
