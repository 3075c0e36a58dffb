"""The attribution day's requests (day_requests.py): each placed on every device it ran on (deployments, MIG
instances, its own device_id), clocks moved by the host's offset, cache hits and requests outside the day left out,
and the requests without a device recorded with their replica, logged device and reason, though _day_requests holds
devices and hosts as numbers."""

from datetime import UTC, date, datetime, timedelta

from pipelines.attribution.day import _Window
from pipelines.attribution.day_requests import load_day_requests, record_unattributed
from pipelines.attribution.group_inputs import group_inputs
from pipelines.warehouse.connection import connect, ensure_raw_tables
from pipelines.warehouse.tables import create_tables

DAY = date(2026, 11, 2)
MIDNIGHT = datetime(2026, 11, 2, tzinfo=UTC)
TEN = MIDNIGHT + timedelta(hours=10)

# request_id, replica_id, device_id, host, started_at, status
REQUESTS = [
    ("tp", "r1", None, "h1", TEN, "ok"),  # a tensor-parallel replica of two devices, its host 2.5 s behind
    ("gone", "r-gone", None, "h2", TEN, "ok"),  # a replica with no deployment
    ("nowhere", None, None, "h2", TEN, "ok"),  # neither replica nor device
    ("mig", None, "MIG-x", "h2", TEN, "ok"),  # logs its MIG instance: runs on the instance's GPU
    ("own", None, "GPU-5", "h2", TEN, "ok"),  # logs its own device
    ("cached", "r1", None, "h1", TEN, "cache_hit"),  # answered from a gateway cache
    ("yesterday", None, "GPU-5", "h2", MIDNIGHT - timedelta(hours=1), "ok"),  # over before the day
    ("overnight", "r-gone", None, "h2", MIDNIGHT - timedelta(seconds=30), "ok"),  # runs into the day
    ("overnight-tp", "r1", None, "h1", MIDNIGHT - timedelta(seconds=30), "ok"),
]


def _warehouse(path):
    con = connect(path)
    ensure_raw_tables(con)
    create_tables(con, "unattributed_requests")
    con.executemany(
        "INSERT INTO raw_deployments BY NAME SELECT ? AS replica_id, ? AS device_id, ? AS instance_id, "
        "TIMESTAMPTZ '2026-11-01 00:00:00+00' AS valid_from",
        [("r1", "GPU-1", None), ("r1", "GPU-2", None), ("r3", "GPU-3", "MIG-x")],
    )
    con.execute("INSERT INTO raw_clock_offsets BY NAME SELECT 'h1' AS host, 2.5 AS offset_s")
    con.executemany(
        "INSERT INTO raw_requests BY NAME SELECT ? AS request_id, ? AS replica_id, ? AS device_id, ? AS host, "
        "$5 AS started_at, $5 + INTERVAL 60 SECOND AS ended_at, 'm' AS model, 10 AS prompt_tokens, "
        "20 AS completion_tokens, ? AS status, $5::DATE AS partition_date",
        REQUESTS,
    )
    return con


def test_requests_are_placed_on_their_devices_and_the_unplaced_recorded_with_their_reason(tmp_path):
    con = _warehouse(tmp_path / "w.duckdb")
    load_day_requests(con, MIDNIGHT, MIDNIGHT + timedelta(days=1))
    placed = con.execute(
        """
        SELECT r.request_id, d.device_id, h.host, h.applied_offset_s, r.started_at
        FROM _day_requests r LEFT JOIN _day_devices d USING (day_device) LEFT JOIN _day_hosts h USING (day_host)
        ORDER BY ALL
        """
    ).fetchall()
    shifted = TEN + timedelta(seconds=2.5)
    night = MIDNIGHT - timedelta(seconds=27.5)
    assert placed == [
        ("gone", None, "h2", 0.0, TEN),
        ("mig", "GPU-3", "h2", 0.0, TEN),
        ("nowhere", None, "h2", 0.0, TEN),
        ("overnight", None, "h2", 0.0, MIDNIGHT - timedelta(seconds=30)),
        ("overnight-tp", "GPU-1", "h1", 2.5, night),
        ("overnight-tp", "GPU-2", "h1", 2.5, night),
        ("own", "GPU-5", "h2", 0.0, TEN),
        ("tp", "GPU-1", "h1", 2.5, shifted),
        ("tp", "GPU-2", "h1", 2.5, shifted),
    ]
    record_unattributed(con, DAY, MIDNIGHT)
    # the request that started the day before is the day before's to report
    assert con.execute("SELECT * FROM unattributed_requests ORDER BY request_id").fetchall() == [
        (DAY, "gone", "r-gone", None, "replica has no deployment at started_at"),
        (DAY, "nowhere", None, None, "no device"),
    ]
    # a device group's requests carry their host and its offset again, for the clock-skew check
    w = _Window(DAY, MIDNIGHT, MIDNIGHT + timedelta(days=1), timedelta(seconds=65))
    requests, _ = group_inputs(con, ["GPU-1", "GPU-2"], w)
    rows = sorted(zip(*(requests[c].to_pylist() for c in ("request_id", "device_id", "host", "applied_offset_s"))))
    assert rows == [
        ("overnight-tp", "GPU-1", "h1", 2.5),
        ("overnight-tp", "GPU-2", "h1", 2.5),
        ("tp", "GPU-1", "h1", 2.5),
        ("tp", "GPU-2", "h1", 2.5),
    ]
