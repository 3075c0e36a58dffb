"""The day's device groups read their telemetry from a band of raw_telemetry's rowids (day.DeviceGroup): the band
holds every sample of the group's devices in the day's partition however the rows were loaded (late files, days
interleaved), so the results equal those of reading the whole table."""

from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest

import pipelines.attribution.day as day_module
from pipelines.attribution.day import attribute_day
from pipelines.attribution.day_requests import load_day_requests
from pipelines.attribution.day_scratch import scratch_path
from pipelines.attribution.group_inputs import group_inputs
from pipelines.warehouse.connection import connect, ensure_raw_tables

DAY = date(2026, 11, 2)
MIDNIGHT = datetime(2026, 11, 2, tzinfo=UTC)
DEVICES = {"GPU-a1": "host-a", "GPU-a2": "host-a", "GPU-b1": "host-b"}


def _samples(con, devices, first: datetime, last: datetime) -> None:
    """1 s samples of ``devices`` from ``first`` to ``last``, power moving with time, in time order."""
    con.execute(
        """
        INSERT INTO raw_telemetry BY NAME
        SELECT d.device_id, t.ts, 100 + 50 * sin(epoch(t.ts) / 97 + d.k) AS power_w, 0.0 AS power_window_s,
               t.ts::DATE AS partition_date
        FROM (SELECT unnest($devices) AS device_id, generate_subscripts($devices, 1) AS k) d,
             (SELECT unnest(generate_series($first, $last, INTERVAL 1 SECOND)) AS ts) t
        ORDER BY t.ts, d.device_id
        """,
        {"devices": devices, "first": first, "last": last},
    )


def _warehouse(path):
    con = connect(path)
    ensure_raw_tables(con)
    con.executemany(
        "INSERT INTO raw_inventory BY NAME SELECT ? AS device_id, ? AS host, 'r' AS region, 'H100-SXM' AS device_type, "
        "1000 AS purchase_cost, 'USD' AS currency, DATE '2026-01-01' AS in_service_from, 4 AS amortization_years, "
        "700 AS tdp_w, 60 AS idle_w, 1.2 AS pue, 0.1 AS overhead_per_hour",
        list(DEVICES.items()),
    )
    host_a, host_b = ["GPU-a1", "GPU-a2"], ["GPU-b1"]
    hour = timedelta(hours=1)
    # loaded out of order: host a's morning, then both neighbouring days' edges, then host b's day, then host a's
    # afternoon arriving late (after the next day's file)
    _samples(con, host_a, MIDNIGHT, MIDNIGHT + 2 * hour)
    _samples(con, list(DEVICES), MIDNIGHT - hour, MIDNIGHT - timedelta(seconds=1))
    _samples(con, list(DEVICES), MIDNIGHT + 24 * hour, MIDNIGHT + 25 * hour)
    _samples(con, host_b, MIDNIGHT, MIDNIGHT + 3 * hour)
    _samples(con, host_a, MIDNIGHT + 2 * hour + timedelta(seconds=1), MIDNIGHT + 3 * hour)
    _samples(con, host_a, MIDNIGHT + 23 * hour, MIDNIGHT + 24 * hour - timedelta(seconds=1))
    _samples(con, host_b, MIDNIGHT + 23 * hour, MIDNIGHT + 24 * hour - timedelta(seconds=1))
    requests = []
    for k, device in enumerate(DEVICES):
        # requests across the night before, the day and the next night, overlapping on each device
        for j, start_s in enumerate(range(-1800, 3 * 3600, 601)):
            requests.append([f"{device}-{j}", device, MIDNIGHT + timedelta(seconds=start_s + k), 30 + j % 200])
        for j, start_s in enumerate(range(23 * 3600, 24 * 3600 + 1800, 487)):
            requests.append([f"{device}-late-{j}", device, MIDNIGHT + timedelta(seconds=start_s + k), 45 + j % 300])
    con.executemany(
        "INSERT INTO raw_requests BY NAME SELECT ? AS request_id, ? AS device_id, $3 AS started_at, "
        "$3 + to_seconds($4) AS ended_at, 'm' AS model, 10 AS prompt_tokens, 100 AS completion_tokens, 'ok' AS status, "
        "$3::DATE AS partition_date",
        requests,
    )
    return con


def _results(con):
    pieces = con.execute("SELECT * FROM request_energy_pieces ORDER BY ALL").fetchall()
    buckets = con.execute("SELECT * FROM device_energy_buckets ORDER BY ALL").fetchall()
    return pieces, buckets


def test_each_group_reads_its_band_and_gets_what_the_whole_table_gives(tmp_path, monkeypatch):
    monkeypatch.setattr(day_module, "GROUP_SAMPLES", 1)  # one group per host
    con = _warehouse(tmp_path / "banded.duckdb")
    load_day_requests(con, MIDNIGHT, MIDNIGHT + timedelta(days=1))
    groups = day_module._device_groups(
        con, MIDNIGHT - timedelta(minutes=2), MIDNIGHT + timedelta(days=1, minutes=2), DAY
    )
    assert [g.devices for g in groups] == [["GPU-a1", "GPU-a2"], ["GPU-b1"]]
    n_rows = con.execute("SELECT count(*) FROM raw_telemetry").fetchall()[0][0]
    (band_a, band_b) = (g.day_rowids for g in groups)
    assert band_a == (0, n_rows - 3600 - 1)  # host a's day: from its morning to its late evening (before b's)
    assert band_b[0] > 0 and band_b[1] == n_rows - 1  # host b's day starts after host a's morning
    banded = attribute_day(con, DAY)
    got = _results(con)
    con.close()

    con = _warehouse(tmp_path / "whole.duckdb")
    monkeypatch.setattr(day_module, "group_inputs", lambda con, devices, w, band: group_inputs(con, devices, w))
    whole = attribute_day(con, DAY)
    expected = _results(con)
    con.close()
    assert len(got[0]) > 50 and len(got[1]) > 10
    assert got == expected
    assert banded.attributed_energy_j == whole.attributed_energy_j > 0
    assert banded.metered_energy_j == pytest.approx(banded.attributed_energy_j + banded.idle_energy_j, rel=1e-12)


def test_a_day_that_fails_halfway_keeps_its_previous_results_and_leaves_no_scratch(tmp_path, monkeypatch):
    monkeypatch.setattr(day_module, "GROUP_SAMPLES", 1)  # one group per host: two groups
    con = _warehouse(tmp_path / "w.duckdb")
    first = attribute_day(con, DAY)
    before = _results(con)
    scratch = scratch_path(con, DAY)
    assert scratch.parent == tmp_path and not scratch.exists()

    calls = []
    kernel = day_module.attribute_energy_by_phase

    def fails_on_the_second_group(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return kernel(*args, **kwargs)

    monkeypatch.setattr(day_module, "attribute_energy_by_phase", fails_on_the_second_group)
    with pytest.raises(RuntimeError, match="killed"):
        attribute_day(con, DAY)
    assert _results(con) == before  # the first group's new rows never reached the day
    assert not scratch.exists()

    # a scratch file a killed process left behind is replaced, not read; one of a day not run again is removed
    scratch.write_bytes(b"left by a killed run")
    other_day = scratch_path(con, DAY - timedelta(days=5))
    other_day.write_bytes(b"left by a killed run of another day")
    other_day.with_name(other_day.name + ".wal").write_bytes(b"its log")
    monkeypatch.setattr(day_module, "attribute_energy_by_phase", kernel)
    again = attribute_day(con, DAY)
    assert _results(con) == before and again.attributed_energy_j == first.attributed_energy_j
    assert not scratch.exists() and not other_day.exists()
    assert not [p for p in tmp_path.iterdir() if ".attribution-" in p.name]
    con.close()


def test_warehouses_in_memory_get_scratch_files_of_their_own():
    con = duckdb.connect()
    first, second = scratch_path(con, DAY), scratch_path(con, DAY)
    assert first != second and first.parent == second.parent and not first.exists()
