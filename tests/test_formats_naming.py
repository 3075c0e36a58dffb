"""Readers that never guess silently (issue #11): where an nvidia-smi file's host comes from, energy-counter CSVs
in other loggers' spellings, and option keys a reader does not take."""

import logging
from datetime import UTC, date, datetime

import pytest

from pipelines.ingest.loader import ingest_feed
from tests.conftest import assert_row_identity, quarantine, run_cli

DAY = date(2026, 11, 2)
T0 = datetime(2026, 11, 2, 10, tzinfo=UTC).timestamp()
DEV = "GPU-500320d4-f8f2-4545-b2d7-e6de5793354a"


def nvsmi(landing, name, header, rows):
    (landing / "telemetry" / name).write_text("\n".join([header, *rows]) + "\n")


def hosts_and_devices(con):
    return con.execute("SELECT DISTINCT host, device_id FROM raw_telemetry ORDER BY 2").fetchall()


def test_host_from_the_documented_file_name(con, landing, caplog):
    nvsmi(
        landing,
        "node-7_2026-11-02.csv",
        "timestamp, index, power.draw.instant [W]",
        ["2026/11/02 10:00:00.000, 0, 100.0", "2026/11/02 10:00:00.000, 1, 90.0"],
    )
    with caplog.at_level(logging.INFO, logger="pipelines.ingest.formats.telemetry"):
        ingest_feed(con, "telemetry", landing, DAY)
    assert hosts_and_devices(con) == [("node-7", "node-7:0"), ("node-7", "node-7:1")]
    assert "host 'node-7' taken from the file name" in caplog.text


def test_a_name_off_the_pattern_gives_no_host_and_uuid_names_the_device(con, landing, caplog):
    # nvidia_smi_1s.csv once became host "nvidia"
    nvsmi(
        landing,
        "nvidia_smi_1s.csv",
        "timestamp, uuid, power.draw.instant [W]",
        ["2026/11/02 10:00:00.000, GPU-a, 100.0", "2026/11/02 10:00:00.000, GPU-b, 90.0"],
    )
    with caplog.at_level(logging.INFO, logger="pipelines.ingest.formats.telemetry"):
        report = ingest_feed(con, "telemetry", landing, DAY)
    assert (report.rows_loaded, report.rows_quarantined) == (2, 0)
    assert hosts_and_devices(con) == [(None, "GPU-a"), (None, "GPU-b")]
    assert "nvidia_smi_1s.csv: host unknown" in caplog.text and "device ids from uuid" in caplog.text


def test_a_name_off_the_pattern_with_only_an_index_is_quarantined_saying_so(con, landing):
    nvsmi(
        landing,
        "nvidia_smi_1s.csv",
        "timestamp, index, power.draw.instant [W]",
        ["2026/11/02 10:00:00.000, 0, 100.0", "2026/11/02 10:00:01.000, 0, 90.0"],
    )
    report = ingest_feed(con, "telemetry", landing, DAY)
    assert (report.rows_loaded, report.rows_quarantined) == (0, 2)
    assert set(quarantine(con, "telemetry").values()) == {
        (
            "no host for this device: the file name is not <host>_<YYYY-MM-DD>.csv and it has no uuid or pci.bus_id "
            "column (give --option host=NAME)"
        )
    }
    assert_row_identity(con, "telemetry")


def test_the_host_option_wins_over_the_file_name(con, landing, caplog):
    nvsmi(
        landing,
        "node-7_2026-11-02.csv",
        "timestamp, index, power.draw.instant [W]",
        ["2026/11/02 10:00:00.000, 3, 100.0"],
    )
    with caplog.at_level(logging.INFO, logger="pipelines.ingest.formats.telemetry"):
        ingest_feed(con, "telemetry", landing, DAY, options={"host": "rack2-n1"})
    assert hosts_and_devices(con) == [("rack2-n1", "rack2-n1:3")]
    assert "taken from the host option" in caplog.text


@pytest.mark.parametrize(
    ("header", "row", "energy_j", "power_w"),
    [
        # NVML: total_energy_consumption in mJ, unix seconds
        (
            "timestamp_unix,uuid,total_energy_consumption,power_mw",
            lambda i: f"{T0 + i},{DEV},{1_000_000 + 300_000 * i},300000",
            1000.0,
            300.0,
        ),
        # Zeus: energy in J, unix milliseconds
        (
            "timestamp,gpu_uuid,energy,power_avg_w",
            lambda i: f"{int((T0 + i) * 1000)},{DEV},{1000 + 300 * i},300.5",
            1000.0,
            300.5,
        ),
        # DCGM field names: mJ and W, ISO times
        (
            "time,UUID,DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION,DCGM_FI_DEV_POWER_USAGE,Hostname",
            lambda i: f"2026-11-02T10:00:{i:02d}Z,{DEV},{1_000_000 + 300_000 * i},299.0,n1",
            1000.0,
            299.0,
        ),
    ],
)
def test_energy_counter_csv_reads_other_loggers_spellings(con, landing, header, row, energy_j, power_w):
    nvsmi(landing, "counters.csv", header, [row(i) for i in range(3)])
    report = ingest_feed(con, "telemetry", landing, DAY, fmt="energy_counter_csv")
    assert (report.rows_loaded, report.rows_quarantined) == (3, 0)
    got = con.execute("SELECT device_id, ts, energy_counter_j, power_w FROM raw_telemetry ORDER BY ts").fetchall()
    assert got[0][0] == DEV
    assert got[0][1] == datetime(2026, 11, 2, 10, tzinfo=UTC)
    assert got[1][1] == datetime(2026, 11, 2, 10, 0, 1, tzinfo=UTC)
    assert got[0][2] == pytest.approx(energy_j) and got[1][2] - got[0][2] == pytest.approx(300.0)
    assert got[0][3] == pytest.approx(power_w)


@pytest.mark.slow
def test_an_unknown_energy_spelling_is_one_line_naming_the_column_and_the_mapping_option(tmp_path, landing):
    nvsmi(landing, "counters.csv", "t,gpu_uuid,joules_so_far", [f"{T0},{DEV},5"])
    done = run_cli(
        [
            "ingest",
            "--partition",
            "2026-11-02",
            "--landing",
            landing,
            "--feed",
            "telemetry",
            "--format",
            "energy_counter_csv",
        ],
        home=tmp_path / "home",
        ok=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("infercost:")]
    assert len(lines) == 1, done.stderr
    assert "no column for ts: none of timestamp, timestamp_unix" in lines[0]
    assert "its columns: t, gpu_uuid, joules_so_far" in lines[0]
    assert "--option mapping=FILE" in lines[0]


def test_a_misspelled_option_is_refused_listing_the_valid_ones(con, landing):
    nvsmi(
        landing,
        "node-7_2026-11-02.csv",
        "timestamp, uuid, power.draw.instant [W]",
        ["2026/11/02 10:00:00.000, GPU-a, 100.0"],
    )
    with pytest.raises(ValueError) as err:
        ingest_feed(con, "telemetry", landing, DAY, options={"timezon": "Europe/Berlin"})
    assert str(err.value) == (
        "unknown option 'timezon' for the NvidiaSmiCsv reader; valid options: host, power_draw_window_s, timezone"
    )


def test_a_misspelled_option_in_formats_yaml_is_refused(con, landing, config_dir):
    (config_dir / "formats.yaml").write_text("prices:\n  options: {value_colum: Real price}\n")
    (landing / "prices" / "eu-central_2026-11-02.csv").write_text("Datetime,Price (EUR/MWh)\n2026-11-02 01:00:00,5\n")
    with pytest.raises(ValueError, match="unknown option 'value_colum'.*valid options: currency, value_column"):
        ingest_feed(con, "prices", landing, DAY)


def test_a_shipped_mapping_takes_no_mapping_option(con, landing):
    nvsmi(landing, "counters.csv", "timestamp,gpu_uuid,total_energy_mj", [f"{T0},{DEV},5"])
    with pytest.raises(ValueError, match="unknown option 'mapping'.*valid options: \\(none\\)"):
        ingest_feed(con, "telemetry", landing, DAY, fmt="energy_counter_csv", options={"mapping": "x.yaml"})
