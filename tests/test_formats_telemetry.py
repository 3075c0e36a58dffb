"""Telemetry formats with no real file in ../shared/realdata (DCGM exporter scrapes and Prometheus range queries,
energy-counter CSV): hand-written samples in their published shapes."""

import json
from datetime import UTC, date, datetime

from pipelines.ingest.loader import ingest_feed
from tests.conftest import assert_row_identity, quarantine

DAY = date(2026, 11, 2)
H100 = "GPU-500320d4-f8f2-4545-b2d7-e6de5793354a"  # in the sample inventory, TDP 700 W
LABELS = (
    f'gpu="0",UUID="{H100}",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="dcgm-pod-x",'
    'hostname="us-west-h100-large-000",container="vllm",namespace="serving",pod="llama-0"'
)


def scrape(power, energy_mj, util, fb, ts_ms=None, labels=LABELS):
    t = f" {ts_ms}" if ts_ms is not None else ""
    return [
        "# HELP DCGM_FI_DEV_SM_CLOCK SM clock frequency (in MHz).",
        "# TYPE DCGM_FI_DEV_SM_CLOCK gauge",
        f"DCGM_FI_DEV_SM_CLOCK{{{labels}}} 1980{t}",
        "# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).",
        "# TYPE DCGM_FI_DEV_POWER_USAGE gauge",
        f"DCGM_FI_DEV_POWER_USAGE{{{labels}}} {power}{t}",
        "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter",
        f"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{labels}}} {energy_mj}{t}",
        f"DCGM_FI_DEV_GPU_UTIL{{{labels}}} {util}{t}",
        f"DCGM_FI_DEV_FB_USED{{{labels}}} {fb}{t}",
    ]


def test_dcgm_scrape_with_a_time_in_the_file_name(con, landing):
    lines = scrape(312.5, 123_456_789, 87, 40_000)
    lines.append('DCGM_FI_DEV_GPU_UTIL{gpu="1",Hostname="h9"} 5')  # no UUID: <Hostname>:<gpu>
    lines.append('DCGM_FI_DEV_POWER_USAGE{gpu="1",Hostname="h9"} 1500.5')  # above twice the TDP? h9 unknown
    lines.append("garbage here {{")
    (landing / "telemetry" / "dcgm_2026-11-02T10-00-05Z.prom").write_text("\n".join(lines) + "\n")

    report = ingest_feed(con, "telemetry", landing, DAY, fmt="dcgm_prometheus")

    assert (report.rows_loaded, report.rows_quarantined) == (2, 1)
    got = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT device_id, ts, power_w, power_window_s, energy_counter_j, util_pct, mem_used_mib, host "
            "FROM raw_telemetry"
        ).fetchall()
    }
    assert got[H100] == (
        datetime(2026, 11, 2, 10, 0, 5, tzinfo=UTC),
        312.5,
        1.0,
        123_456.789,
        87.0,
        40_000.0,
        "dcgm-pod-x",
    )  # H100: power usage is a 1 s average; mJ -> J
    assert got["h9:1"][1:] == (1500.5, 1.0, None, 5.0, None, "h9")  # not in the inventory: no TDP to test against
    assert quarantine(con, "telemetry") == {13: "not a Prometheus exposition line"}
    assert_row_identity(con, "telemetry")


def test_dcgm_scrapes_with_point_timestamps_and_problems(con, landing):
    t0 = int(datetime(2026, 11, 2, 10, tzinfo=UTC).timestamp() * 1000)
    lines = scrape(300, 1_000_000, 50, 10, t0) + scrape(2000, 1_300_000, 50, 10, t0 + 1000)
    lines += scrape(310, 1_600_000, 50, 10, t0 + 2000)[5:6] * 2  # the same series twice at one time
    (landing / "telemetry" / "scrapes.prom").write_text("\n".join(lines) + "\n")
    (landing / "telemetry" / "untimed.prom").write_text("\n".join(scrape(1, 2, 3, 4)) + "\n")

    report = ingest_feed(con, "telemetry", landing, DAY, fmt="dcgm_prometheus")

    assert report.rows_loaded == 1
    reasons = sorted(r for (r,) in con.execute("SELECT reason FROM ingest_quarantine").fetchall())
    assert (
        reasons[0] == "no time: the point has no timestamp, the file name has none, and no scraped_at option was given"
    )
    assert len(reasons) == 6  # four untimed points, each its own row, and two problems of scrapes.prom
    q = con.execute("SELECT reason FROM ingest_quarantine WHERE source_file LIKE '%scrapes.prom'").fetchall()
    assert sorted(r for (r,) in q) == ["power_w above twice the device TDP: 2000.0", "series repeated at one timestamp"]
    assert_row_identity(con, "telemetry")


def test_prometheus_range_query_export(con, landing):
    t0 = datetime(2026, 11, 2, 10, tzinfo=UTC).timestamp()
    metric = {"UUID": H100, "gpu": "0", "Hostname": "us-west-h100-large-000", "namespace": "serving"}
    doc = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": {"__name__": "DCGM_FI_DEV_POWER_USAGE", **metric},
                    "values": [[t0, "300.5"], [t0 + 15, "NaN"], [t0 + 30, "320"]],
                },
                {
                    "metric": {"__name__": "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", **metric},
                    "values": [[t0, "1000000"], [t0 + 15, "5500000"], [t0 + 30, "10300000"], [t0 + 45, "15000000"]],
                },
                {"metric": {"__name__": "DCGM_FI_DEV_MEM_CLOCK", **metric}, "values": [[t0, "1593"]]},
                {"metric": {"__name__": "DCGM_FI_DEV_GPU_UTIL", "Hostname": "h"}, "values": [[t0, "1"]]},
            ],
        },
    }
    (landing / "telemetry" / "range.json").write_text(json.dumps(doc, indent=1))

    report = ingest_feed(con, "telemetry", landing, DAY, fmt="prometheus_range_json")

    rows = con.execute("SELECT ts, power_w, energy_counter_j FROM raw_telemetry ORDER BY ts").fetchall()
    assert [r[1:] for r in rows] == [(300.5, 1000.0), (320.0, 10300.0), (None, 15000.0)]  # counter-only sample loads
    assert rows[0][0] == datetime(2026, 11, 2, 10, tzinfo=UTC)
    reasons = sorted(r for (r,) in con.execute("SELECT reason FROM ingest_quarantine").fetchall())
    assert reasons == ["no UUID or gpu label", "power_w is not finite"]
    assert report.rows_read == 5
    assert_row_identity(con, "telemetry")
