"""Raw telemetry of past days moves to the lake and back; retention deletes only what it is asked to, and says so."""

from datetime import date, timedelta

import duckdb

from pipelines.warehouse import archive, lake

DAYS = [date(2026, 1, 1) + timedelta(days=i) for i in range(4)]


def _warehouse():
    con = duckdb.connect()
    con.execute("CREATE TABLE raw_telemetry (device_id VARCHAR, ts TIMESTAMPTZ, power_w DOUBLE, partition_date DATE)")
    for i, day in enumerate(DAYS):
        con.execute(
            "INSERT INTO raw_telemetry SELECT 'gpu-' || (r % 3), ?::TIMESTAMPTZ + to_seconds(r), r * 1.5 + ?, ? "
            f"FROM range({100 + i}) t(r)",
            [str(day), i, day],
        )
    return con


def test_archive_keeps_the_newest_two_days_and_moves_the_rest(tmp_path):
    con, logged = _warehouse(), []
    before = con.execute("SELECT * FROM raw_telemetry ORDER BY ALL").fetchall()
    moved = archive.archive_past_days(con, "raw_telemetry", tmp_path, log=logged.append)
    assert moved == DAYS[:2] and len(logged) == 2 and "101 rows moved" in logged[1]
    assert archive.warehouse_days(con, "raw_telemetry") == DAYS[2:]
    assert lake.list_days("raw_telemetry", tmp_path) == DAYS[:2]
    # nothing lost: the lake and the warehouse together hold every row as it was
    union = con.execute(
        "SELECT * FROM raw_telemetry UNION ALL SELECT * EXCLUDE (day), day FROM "
        f"{lake.read_sql('raw_telemetry', tmp_path)} ORDER BY ALL"
    ).fetchall()
    assert union == before
    # a re-run of day 2 loads its neighbour day 1 back; the next archive moves it out again
    assert archive.restore_days(con, "raw_telemetry", [DAYS[0], DAYS[1], DAYS[2]], tmp_path, log=logged.append) == [
        DAYS[0],
        DAYS[1],
    ]
    assert con.execute("SELECT * FROM raw_telemetry ORDER BY ALL").fetchall() == before
    assert archive.archive_past_days(con, "raw_telemetry", tmp_path, log=logged.append) == DAYS[:2]
    assert archive.warehouse_days(con, "raw_telemetry") == DAYS[2:]


def test_retention_deletes_old_lake_days_only_when_set_and_logs_each(tmp_path):
    con, logged = _warehouse(), []
    archive.archive_past_days(con, "raw_telemetry", tmp_path, log=logged.append)
    assert archive.apply_retention("raw_telemetry", None, DAYS[-1], tmp_path, log=logged.append) == []
    assert lake.list_days("raw_telemetry", tmp_path) == DAYS[:2]
    logged.clear()
    # keep 2 days before the last day (2026-01-04): 2026-01-01 goes, 2026-01-02 stays
    assert archive.apply_retention("raw_telemetry", 2, DAYS[-1], tmp_path, log=logged.append) == [DAYS[0]]
    assert lake.list_days("raw_telemetry", tmp_path) == [DAYS[1]]
    assert len(logged) == 1 and "2026-01-01: 100 rows deleted" in logged[0] and "RETENTION_DAYS=2" in logged[0]


def test_readers_of_past_days_see_the_lake_beside_the_warehouse(tmp_path):
    con = _warehouse()
    before = con.execute("SELECT count(*), sum(power_w) FROM raw_telemetry").fetchall()
    assert archive.with_lake(con, "raw_telemetry", tmp_path) == "raw_telemetry"
    archive.archive_past_days(con, "raw_telemetry", tmp_path, log=lambda _: None)
    expr = archive.with_lake(con, "raw_telemetry", tmp_path)
    assert con.execute(f"SELECT count(*), sum(power_w) FROM {expr}").fetchall() == before


def test_a_view_over_the_lake_moves_nothing(tmp_path):
    # the spark engine: raw_telemetry is a view over the lake's days, which are already there; archiving it would
    # rewrite a lake day from a view of itself
    con = _warehouse()
    query = "SELECT * EXCLUDE (partition_date) FROM raw_telemetry WHERE partition_date = ?"
    for day in DAYS:
        lake.write_day_from_query(con, "raw_telemetry", day, query, [day], tmp_path)
    con.execute("DROP TABLE raw_telemetry")
    con.execute(
        "CREATE VIEW raw_telemetry AS SELECT * EXCLUDE (day), day AS partition_date FROM "
        f"{lake.read_sql('raw_telemetry', tmp_path)}"
    )
    files = sorted((tmp_path / "raw_telemetry").rglob("*.parquet"))
    stamps = [f.stat().st_mtime_ns for f in files]
    assert archive.archive_past_days(con, "raw_telemetry", tmp_path) == []
    assert archive.restore_days(con, "raw_telemetry", DAYS, tmp_path) == []
    assert sorted((tmp_path / "raw_telemetry").rglob("*.parquet")) == files
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert archive.warehouse_days(con, "raw_telemetry") == DAYS
