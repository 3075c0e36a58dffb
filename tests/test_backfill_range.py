"""A two-day range backfill: requests over midnight are split between days, nothing is counted twice."""

import gzip

import duckdb
import pytest

from pipelines.devtools.generate import generate
from tests.conftest import run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def two_days(tmp_path_factory):
    root = tmp_path_factory.mktemp("range")
    landing = root / "landing"
    generate(landing, devices=8, days=2, seed=11, load=0.3, progress=lambda m: None)
    # plant a telemetry gap: the host sent nothing from 12:00 to 13:00 on the second day
    path = landing / "telemetry" / "us-west-h100-large-000_2026-11-03.csv.gz"
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    kept = [x for x in lines if not x.startswith("2026/11/03 12:")]
    assert len(kept) < len(lines)
    path.write_bytes(gzip.compress(("\n".join(kept) + "\n").encode()))
    run_cli(
        ["materialize", "--from", "2026-11-02", "--to", "2026-11-03"], home=root / "home", landing=landing, timeout=900
    )
    con = duckdb.connect(str(root / "home" / "warehouse.duckdb"), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    yield con
    con.close()


def test_both_days_are_loaded(two_days):
    days = two_days.execute("SELECT DISTINCT partition_date FROM raw_requests ORDER BY 1").fetchall()
    assert [str(d) for (d,) in days] == ["2026-11-02", "2026-11-03"]
    (n,) = two_days.execute("SELECT count(*) FROM int_device_days").fetchall()[0]
    assert n == 2 * 8


def test_requests_over_midnight_draw_from_both_days(two_days):
    rows = two_days.execute("""
        SELECT p.request_id, count(DISTINCT p.partition_date) AS days
        FROM request_energy_pieces p JOIN raw_requests r USING (request_id)
        WHERE r.started_at < TIMESTAMPTZ '2026-11-03 00:00:00+00' AND r.ended_at > TIMESTAMPTZ '2026-11-03 00:00:00+00'
        GROUP BY 1""").fetchall()
    assert rows, "the generated fleet has requests running over midnight"
    assert all(days == 2 for _, days in rows)


def test_conservation_and_no_double_count_across_days(two_days):
    metered, attributed, idle = two_days.execute(
        "SELECT sum(metered_energy_j), sum(request_energy_j), sum(idle_energy_j) FROM int_device_days"
    ).fetchall()[0]
    assert attributed + idle == pytest.approx(metered, rel=1e-9)
    (fct,) = two_days.execute("SELECT sum(energy_j) FROM fct_request_cost").fetchall()[0]
    assert fct == pytest.approx(attributed, rel=1e-12)
    # every telemetry second of the two days is metered exactly once (1 s trailing averages tile the time),
    # except the planted hour-long gap on the 8 devices of one host
    (metered_s,) = two_days.execute("SELECT sum(metered_s) FROM int_device_days").fetchall()[0]
    assert metered_s == pytest.approx(2 * 86400 * 8 - 8 * 3600, abs=20)


def test_a_telemetry_gap_is_reported_never_filled(two_days):
    rows = two_days.execute(
        "SELECT unmetered_s, requests_partly_unmetered FROM agg_telemetry_coverage "
        "WHERE partition_date = DATE '2026-11-03'"
    ).fetchall()
    assert len(rows) == 8
    for unmetered_s, partly in rows:
        assert unmetered_s == pytest.approx(3600, abs=2)  # the hour, give or take a sample
        assert partly > 0
    inside = two_days.execute("""
        SELECT count(*), count(energy_j), count(*) FILTER (WHERE cost_caveat LIKE 'unmetered%')
        FROM fct_request_cost
        WHERE started_at >= TIMESTAMPTZ '2026-11-03 12:00:10+00' AND ended_at < TIMESTAMPTZ '2026-11-03 12:59:50+00'
        """).fetchall()[0]
    assert inside[0] > 0 and inside[1] == 0 and inside[2] == inside[0]
    (partly,) = two_days.execute(
        "SELECT count(*) FROM fct_request_cost WHERE cost_caveat = 'partly unmetered: energy is a lower bound'"
    ).fetchall()[0]
    assert partly > 0
