"""Partitioned GPUs (MIG instances, MPS, time slices): telemetry per GPU, requests per instance. The deployments'
instance_id names the partition; the GPU's energy is split over every instance's requests by request weight, and
idle is the GPU's."""

from datetime import UTC, date, datetime, timedelta

import pytest

from pipelines.attribution.day import attribute_day
from pipelines.warehouse.connection import connect, ensure_raw_tables

DAY = date(2026, 11, 2)
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
GPU = "GPU-aaaa"
MIG_1, MIG_2 = "MIG-1111", "MIG-2222"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_gpus_energy_is_split_over_its_instances_by_request_weight(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    ensure_raw_tables(con)
    con.executemany(
        "INSERT INTO raw_deployments BY NAME SELECT ? AS replica_id, ? AS device_id, ? AS valid_from, "
        "? AS instance_id, ? AS partition_date",
        [["small", GPU, at(-3600), MIG_1, DAY], ["large", GPU, at(-3600), MIG_2, DAY]],
    )
    # a: replica small (1g instance) 0-10 s, 100 tokens; b: replica large 5-15 s, 300 tokens; c: logs the MIG UUID
    # of the large instance as its device, 20-30 s, 50 tokens; nothing runs 15-20 s and 30-40 s
    con.executemany(
        "INSERT INTO raw_requests BY NAME SELECT ? AS request_id, ? AS replica_id, ? AS device_id, ? AS started_at, "
        "? AS ended_at, 'm' AS model, 0 AS prompt_tokens, ? AS completion_tokens, 'ok' AS status, ? AS partition_date",
        [
            ["a", "small", None, at(0), at(10), 100, DAY],
            ["b", "large", None, at(5), at(15), 300, DAY],
            ["c", None, MIG_2, at(20), at(30), 50, DAY],
        ],
    )
    con.executemany(
        "INSERT INTO raw_telemetry BY NAME SELECT ? AS device_id, ? AS ts, 200.0 AS power_w, 0.0 AS power_window_s, "
        "? AS partition_date",
        [[GPU, at(t), DAY] for t in range(41)],
    )
    result = attribute_day(con, DAY)
    pieces = dict(con.execute("SELECT request_id, sum(energy_j) FROM request_energy_pieces GROUP BY ALL").fetchall())
    devices = {r[0] for r in con.execute("SELECT DISTINCT device_id FROM request_energy_pieces").fetchall()}
    assert devices == {GPU}  # the energy is the GPU's, whichever instance served the request
    # 200 W: a alone 0-5 s (1000 J), a and b 5-10 s at rates 10/s and 30/s (250 and 750 J), b alone 10-15 s
    assert pieces["a"] == pytest.approx(1000 + 250, rel=1e-12)
    assert pieces["b"] == pytest.approx(750 + 1000, rel=1e-12)
    assert pieces["c"] == pytest.approx(2000, rel=1e-12)
    idle, metered = con.execute(
        "SELECT sum(idle_energy_j), sum(metered_energy_j) FROM device_energy_buckets WHERE device_id = ?", [GPU]
    ).fetchall()[0]
    assert idle == pytest.approx(200 * 15, rel=1e-12)  # 15-20 s and 30-40 s: the GPU's idle, once
    assert metered == pytest.approx(200 * 40, rel=1e-12)
    assert result.unattributed == 0
    assert result.attributed_energy_j + result.idle_energy_j == pytest.approx(result.metered_energy_j, rel=1e-9)
    con.close()
