"""`infercost validate-energy`: window bounds in ISO 8601 (with and without an offset) and in unix seconds give the
same comparison; energies are joules; a bad cell is one line naming the file, row and column."""

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from pipelines.attribution.validation import (
    GroundTruthError,
    parse_instant,
    validate_energy,
)
from pipelines.warehouse.connection import connect, ensure_raw_tables
from tests.conftest import REPO

T0 = datetime(2023, 3, 1, 12, 0, tzinfo=UTC)
POWER_W = 300.0


@pytest.fixture
def warehouse(tmp_path):
    """A warehouse whose one device draws a steady 300 W, sampled every second for 20 minutes."""
    path = tmp_path / "home" / "warehouse.duckdb"
    path.parent.mkdir()
    con = connect(path)
    ensure_raw_tables(con)
    con.execute(
        "INSERT INTO raw_telemetry (device_id, ts, power_w, power_window_s) "
        "SELECT 'gpu-0', $t0::TIMESTAMPTZ + to_seconds(i), $p, 0 FROM range(1200) r(i)",
        {"t0": T0, "p": POWER_W},
    ).fetchall()
    yield con, path
    con.close()


def _truth(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text(
        "device_id,window_start,window_end,energy_j,group\n"
        + "".join(f"gpu-0,{a},{b},{e},{g}\n" for a, b, e, g in rows)
    )
    return path


def _unix(t: datetime) -> str:
    return f"{t.timestamp():.0f}"


def test_iso_and_unix_windows_compare_the_same(warehouse, tmp_path):
    con, _ = warehouse
    a, b = T0 + timedelta(minutes=5), T0 + timedelta(minutes=15)  # 600 s at 300 W = 180,000 J
    iso = _truth(
        tmp_path,
        "iso.csv",
        [
            (a.isoformat(), b.isoformat(), 180000, "x"),
            ("2023-03-01 07:05:00-05:00", "2023-03-01 12:15:00", 180000, "y"),
        ],
    )
    unix = _truth(
        tmp_path,
        "unix.csv",
        [(_unix(a), _unix(b), 180000, "x"), (f"{a.timestamp():.2f}", f"{b.timestamp():.2f}", 180000, "y")],
    )
    reports = [validate_energy(con, iso), validate_energy(con, unix)]
    for report in reports:
        assert report.missing == 0 and len(report.rows) == 2
        assert [r["attributed_j"] for r in report.rows] == pytest.approx([180000.0, 180000.0], rel=1e-9)
        assert abs(report.median_abs_error) < 1e-9
    assert [r["key"] for r in reports[0].rows] == [r["key"] for r in reports[1].rows]
    # joules in the printout, not kWh
    assert "measured_j" in reports[0].text() and "180000.0" in reports[0].text()


def test_a_window_outside_the_telemetry_has_nothing_to_compare(warehouse, tmp_path):
    con, _ = warehouse
    late = T0 + timedelta(days=3)
    report = validate_energy(
        con, _truth(tmp_path, "late.csv", [(_unix(late), _unix(late + timedelta(minutes=1)), 1, "x")])
    )
    assert report.rows == [] and report.missing == 1


def test_parse_instant_forms():
    assert parse_instant("2023-03-01T12:00:00Z") == T0
    assert parse_instant("2023-03-01 07:00:00-05:00") == T0
    assert parse_instant("2023-03-01 12:00:00") == T0
    assert parse_instant(f"{T0.timestamp():.0f}") == T0
    assert parse_instant(f"{T0.timestamp() + 0.5}") == T0 + timedelta(seconds=0.5)
    with pytest.raises(ValueError):
        parse_instant("yesterday")


@pytest.mark.parametrize(
    "rows,message",
    [
        ([("noon", "2023-03-01 12:10:00", 1, "x")], "row 1: window_start 'noon' is not ISO 8601 or unix seconds"),
        (
            [("2023-03-01 12:10:00", "2023-03-01 12:00:00", 1, "x")],
            ("row 1: window_end 2023-03-01T12:00:00+00:00 is not after window_start"),
        ),
        (
            [("2023-03-01 12:00:00", "2023-03-01 12:10:00", "0.05 kWh", "x")],
            ("row 1: energy_j '0.05 kWh' is not a number of joules"),
        ),
    ],
)
def test_bad_cells_name_file_row_and_column(warehouse, tmp_path, rows, message):
    con, _ = warehouse
    path = _truth(tmp_path, "bad.csv", rows)
    with pytest.raises(GroundTruthError, match="^" + re.escape(f"{path}: {message}")):
        validate_energy(con, path)


def test_cli_prints_joules_and_refuses_bad_files_in_one_line(warehouse, tmp_path):
    con, path = warehouse
    con.close()
    env = {**os.environ, "INFERCOST_HOME": str(path.parent), "GX_ANALYTICS_ENABLED": "false"}
    env.pop("INFERCOST_WAREHOUSE", None)
    a, b = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    good = _truth(tmp_path, "good.csv", [(_unix(a), b.isoformat(), 18000, "x")])
    run = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "validate-energy", "--ground-truth", str(good)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "measured_j" in run.stdout and "18000.0" in run.stdout
    bad = _truth(tmp_path, "bad.csv", [("noon", b.isoformat(), 1, "x")])
    run = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "validate-energy", "--ground-truth", str(bad)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1 and len(run.stderr.strip().splitlines()) == 1
    assert run.stderr.startswith(f"infercost: {bad}: row 1: window_start 'noon'"), run.stderr
