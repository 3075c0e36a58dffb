"""The lake's layout: hive-partitioned Parquet by day, written atomically, read in place by DuckDB."""

from datetime import date

import duckdb
import pytest

from pipelines.warehouse import lake


def test_write_list_read_replace_drop(tmp_path):
    con = duckdb.connect()
    d1, d2 = date(2026, 1, 1), date(2026, 1, 2)
    lake.write_day_from_query(con, "raw_requests", d2, "SELECT 'b' AS request_id, 2 AS n", root=tmp_path)
    lake.write_day_from_query(con, "raw_requests", d1, "SELECT 'a' AS request_id, 1 AS n", root=tmp_path)
    assert lake.list_days("raw_requests", tmp_path) == [d1, d2]
    assert (tmp_path / "raw_requests" / "day=2026-01-01" / "part-00000.parquet").is_file()
    rows = con.sql(f"SELECT day, request_id, n FROM {lake.read_sql('raw_requests', tmp_path)} ORDER BY day").fetchall()
    assert rows == [(d1, "a", 1), (d2, "b", 2)]
    # replacing a day leaves the other days alone and no staging directory behind
    lake.write_day_from_query(con, "raw_requests", d1, "SELECT 'c' AS request_id, 3 AS n", root=tmp_path)
    only_d1 = con.sql(f"SELECT request_id FROM {lake.read_sql('raw_requests', tmp_path, days=[d1])}").fetchall()
    assert only_d1 == [("c",)]
    assert {p.name for p in (tmp_path / "raw_requests").iterdir()} == {"day=2026-01-01", "day=2026-01-02"}
    assert lake.drop_day("raw_requests", d1, tmp_path)
    assert lake.list_days("raw_requests", tmp_path) == [d2]
    assert not lake.drop_day("raw_requests", d1, tmp_path)


def test_a_failed_write_keeps_the_old_partition(tmp_path):
    con = duckdb.connect()
    d1 = date(2026, 1, 1)
    lake.write_day_from_query(con, "raw_telemetry", d1, "SELECT 1 AS x", root=tmp_path)

    def half_then_fail(staging):
        con.execute(f"COPY (SELECT 2 AS x) TO '{staging / 'part-00000.parquet'}' (FORMAT parquet)")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        lake.write_day("raw_telemetry", d1, half_then_fail, root=tmp_path)
    assert con.sql(f"SELECT x FROM {lake.read_sql('raw_telemetry', tmp_path)}").fetchall() == [(1,)]
    assert {p.name for p in (tmp_path / "raw_telemetry").iterdir()} == {"day=2026-01-01"}


def test_reading_days_that_are_not_there_is_empty(tmp_path):
    con = duckdb.connect()
    expr = lake.read_sql("raw_requests", tmp_path, days=[date(2026, 3, 1)])
    assert con.sql(f"SELECT count(*) FROM {expr}").fetchall() == [(0,)]
    assert lake.list_days("raw_requests", tmp_path) == []
