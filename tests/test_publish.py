"""The published copy (pipelines/warehouse/publish.py): every table equal to the live one, the large ones as
Parquet by day, and a run writing only the days it changed.

A small warehouse made here stands for the real one: a partition_date table, a request_date table (rewritten two
days back), a table with a HUGEINT (Parquet would turn it into a DOUBLE), rows without a day, a second schema and
a view. BY_DAY_MIN_ROWS is lowered so these tables are large enough to go by day."""

from __future__ import annotations

import re
from datetime import date

import duckdb
import pytest

from pipelines.settings import REPO_ROOT
from pipelines.warehouse import publish as publish_module
from pipelines.warehouse.publish import MANIFEST, RUN_DAYS_ONLY, parts_dir, publish
from pipelines.warehouse.readonly_query import QueryRefused, query_read_only

D1, D2, D3, D4 = (date(2026, 11, d) for d in (1, 2, 3, 4))


@pytest.fixture(autouse=True)
def small_tables_go_by_day(monkeypatch):
    monkeypatch.setattr(publish_module, "BY_DAY_MIN_ROWS", 5)


@pytest.fixture
def live(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("""
        CREATE TABLE raw_requests AS
            SELECT i AS request_id, DATE '2026-11-01' + (i % 4)::INT AS partition_date, i * 0.1 AS prompt_tokens
            FROM range(40) t(i);
        INSERT INTO raw_requests VALUES (1000, NULL, 1.5);
        CREATE TABLE fct_request_cost AS
            SELECT i AS request_id, DATE '2026-11-01' + (i % 4)::INT AS request_date, i / 7 AS total_cost_usd,
                   TIMESTAMPTZ '2026-11-01 00:00:00+00' + INTERVAL (i) HOUR AS started_at, 12.5::DECIMAL(6,1) AS day_s
            FROM range(40) t(i);
        CREATE TABLE agg_daily_model_cost AS
            SELECT DATE '2026-11-01' + (i % 4)::INT AS request_date, (i * 1e30)::HUGEINT AS prompt_tokens
            FROM range(40) t(i);
        CREATE TABLE fct_electricity_prices AS SELECT 1 AS price_usd_per_mwh;
        CREATE VIEW stg_requests AS SELECT request_id, partition_date FROM raw_requests;
        CREATE SCHEMA audit;
        CREATE TABLE audit.checks AS SELECT DATE '2026-11-01' + (i % 2)::INT AS partition_date, i AS n FROM range(10) t(i);
    """)
    yield con
    con.close()


def _published_files(target) -> set[str]:
    return {str(p) for p in parts_dir(target).rglob("*.parquet")}


def _listed(target, table: str) -> dict:
    with duckdb.connect(str(target), read_only=True) as con:
        rows = con.execute(f"SELECT day, path FROM {MANIFEST} WHERE table_name = ?", [table]).fetchall()
    return dict(rows)


def _all_listed(target) -> set[str]:
    with duckdb.connect(str(target), read_only=True) as con:
        return {path for (path,) in con.execute(f"SELECT path FROM {MANIFEST}").fetchall()}


def _types(con, table: str) -> list:
    return [row[:2] for row in con.execute(f"DESCRIBE {table}").fetchall()]


def _same(live_con, target, table: str) -> None:
    with duckdb.connect(str(target), read_only=True) as pub:
        assert _types(pub, table) == _types(live_con, table)
        mine = sorted(pub.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
    assert mine == sorted(live_con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)


def test_the_copy_holds_every_table_as_the_warehouse_does(live, tmp_path):
    target = publish(live, tmp_path / "published" / "warehouse.duckdb")
    for table in ("raw_requests", "fct_request_cost", "agg_daily_model_cost", "fct_electricity_prices", "audit.checks"):
        _same(live, target, table)
    with duckdb.connect(str(target), read_only=True) as pub:
        kinds = dict(pub.execute("SELECT table_name, table_type FROM information_schema.tables").fetchall())
        assert pub.execute("SELECT count(*) FROM stg_requests").fetchall() == [(41,)]
    # large tables by day, a view each; the HUGEINT table and the small one copied whole
    assert kinds["raw_requests"] == kinds["fct_request_cost"] == kinds["checks"] == "VIEW"
    assert kinds["agg_daily_model_cost"] == kinds["fct_electricity_prices"] == "BASE TABLE"
    assert set(_listed(target, "raw_requests")) == {D1, D2, D3, D4, None}  # the row without a day is kept


def test_text_of_few_values_is_written_from_an_enum_and_read_back_as_the_same_text(live, tmp_path, monkeypatch):
    monkeypatch.setattr(publish_module, "ENUM_MAX_VALUES", 6)
    live.execute("""
        ALTER TABLE raw_requests ADD COLUMN device_id VARCHAR;
        UPDATE raw_requests SET device_id = ['', 'a''b', 'gpu-é', NULL, 'gpu 1'][request_id % 5 + 1];
        ALTER TABLE raw_requests ADD COLUMN note VARCHAR;
        UPDATE raw_requests SET note = 'note ' || request_id;
    """)
    selects = []
    enums = publish_module._few_values_as_enums
    monkeypatch.setattr(publish_module, "_few_values_as_enums", lambda *a: selects.append(enums(*a)) or selects[-1])
    estimated = []
    first_rows = publish_module._not_many_in_first_rows
    monkeypatch.setattr(
        publish_module, "_not_many_in_first_rows", lambda *a: estimated.append(first_rows(*a)) or estimated[-1]
    )
    target = publish(live, tmp_path / "published" / "warehouse.duckdb")
    _same(live, target, "raw_requests")
    selects = [s for s in selects if '"device_id"' in s]
    assert len(selects) == 5  # raw_requests: four days and the row without one
    assert sum('"device_id"::ENUM' in s for s in selects) == 5
    assert sum('"note"::ENUM' in s for s in selects) == 1  # ten values a day, over the limit; one without a day
    # a day's ten notes are over the limit in its first rows already: only the part without a day estimates them
    assert sum("note" in columns for columns in estimated) == 1
    assert sum("device_id" in columns for columns in estimated) == 5


def test_a_run_writes_only_the_days_it_changed(live, tmp_path):
    target = tmp_path / "published" / "warehouse.duckdb"
    publish(live, target)
    first = {t: _listed(target, t) for t in ("raw_requests", "fct_request_cost")}
    # the run of day 4 rewrites its rows; day 2 of raw_requests gains a row behind its back (a count that moved)
    live.execute("UPDATE raw_requests SET prompt_tokens = -1 WHERE partition_date = DATE '2026-11-04'")
    live.execute("UPDATE fct_request_cost SET total_cost_usd = -1 WHERE request_date >= DATE '2026-11-02'")
    live.execute("INSERT INTO raw_requests VALUES (2000, DATE '2026-11-02', 2.5)")
    publish(live, target, days=(D4, D4))
    raw, fct = _listed(target, "raw_requests"), _listed(target, "fct_request_cost")
    assert {d for d in raw if raw[d] != first["raw_requests"][d]} == {D2, D4}
    # a request_date table is written from two days before the run: requests over midnight are rebuilt
    assert {d for d in fct if fct[d] != first["fct_request_cost"][d]} == {D2, D3, D4}
    _same(live, target, "raw_requests")
    _same(live, target, "fct_request_cost")


def test_days_gone_from_the_warehouse_leave_the_copy_and_a_new_column_rewrites_every_day(live, tmp_path):
    target = tmp_path / "published" / "warehouse.duckdb"
    publish(live, target)
    before = _listed(target, "raw_requests")
    live.execute("DELETE FROM raw_requests WHERE partition_date = DATE '2026-11-01'")
    live.execute("ALTER TABLE raw_requests ADD COLUMN completion_tokens BIGINT DEFAULT 7")
    publish(live, target, days=(D4, D4))
    after = _listed(target, "raw_requests")
    assert set(after) == {D2, D3, D4, None}
    assert all(after[d] != before[d] for d in after)
    _same(live, target, "raw_requests")


def test_old_files_live_one_copy_longer_for_readers_of_the_previous_copy(live, tmp_path):
    target = tmp_path / "published" / "warehouse.duckdb"
    publish(live, target)
    reader = duckdb.connect(str(target), read_only=True)  # an analyst's notebook, open across the next run
    first = _all_listed(target)
    live.execute("UPDATE raw_requests SET prompt_tokens = 0 WHERE partition_date = DATE '2026-11-04'")
    publish(live, target, days=(D4, D4))
    # the old copy still reads its files (this process caches an open file: read the new copy once it is closed)
    assert reader.execute("SELECT count(*) FROM raw_requests WHERE prompt_tokens = 0").fetchall() == [(1,)]
    reader.close()
    second = _all_listed(target)
    assert first | second == _published_files(target)
    publish(live, target, days=(D4, D4))
    assert _published_files(target) == second | _all_listed(target)
    # the first copy's files of day 4 are in neither of the last two copies: deleted
    assert first - second and not (first - second) & _published_files(target)


def test_a_publish_killed_halfway_leaves_the_previous_copy_whole_and_the_next_writes_its_days(
    live, tmp_path, monkeypatch
):
    target = tmp_path / "published" / "warehouse.duckdb"
    publish(live, target)
    before = _published_files(target)
    live.execute("UPDATE raw_requests SET prompt_tokens = 0 WHERE partition_date = DATE '2026-11-02'")

    def killed(con, parts):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(publish_module, "_write_manifest", killed)
    with pytest.raises(KeyboardInterrupt):
        publish(live, target, days=(D2, D2))
    assert _published_files(target) > before  # the killed run's files are there, listed by no copy
    with duckdb.connect(str(target), read_only=True) as pub:
        assert pub.execute("SELECT count(*) FROM raw_requests WHERE prompt_tokens = 0").fetchall() == [(1,)]
    monkeypatch.undo()
    monkeypatch.setattr(publish_module, "BY_DAY_MIN_ROWS", 5)
    publish(live, target, days=(D4, D4))  # the next day's run: day 2 of the killed run is written too
    assert _published_files(target) <= before | _all_listed(target)  # the killed run's files are gone
    assert not list(target.parent.glob("warehouse.duckdb.new*"))
    _same(live, target, "raw_requests")
    assert not (target.parent / "warehouse.duckdb.pending.json").exists()


def test_analysts_sql_reads_the_copys_files_and_still_no_other(live, tmp_path):
    target = publish(live, tmp_path / "published" / "warehouse.duckdb")
    answer = query_read_only(target, "SELECT count(*) AS n, sum(prompt_tokens) AS tokens FROM raw_requests")
    assert answer.table.to_pylist() == [{"n": 41, "tokens": pytest.approx(79.5)}]
    outside = tmp_path / "secret.csv"
    outside.write_text("x\n1\n")
    for path in (outside, f"{parts_dir(target)}/../../secret.csv"):  # nor a way out of the copy's folder
        with pytest.raises(QueryRefused):
            query_read_only(target, f"SELECT * FROM read_csv('{path}')")


def test_the_tables_whose_runs_rewrite_only_their_days_are_those_dbt_deletes_by_run_day():
    """A request_date table's days before the run are published again unless its model deletes the run's days
    alone (RUN_DAYS_ONLY): the list must follow the models, or a rebuilt request over midnight goes unpublished."""
    by_run_day = set()
    for model in (REPO_ROOT / "dbt" / "models").rglob("*.sql"):
        if re.search(r"delete_run_rows\(in_run_days\('request_date'\)\)", model.read_text()):
            by_run_day.add(model.stem)
    assert by_run_day == set(RUN_DAYS_ONLY)
    fct = (REPO_ROOT / "dbt" / "models" / "marts" / "fct_request_cost.sql").read_text()
    assert "delete_run_rows(in_run_requests())" in fct


@pytest.mark.parametrize("ordered", [True, False])
def test_parts_are_written_unordered_and_the_connection_keeps_its_setting(live, tmp_path, monkeypatch, ordered):
    """The Parquet parts are written with preserve_insertion_order off (DuckDB then writes a file from every core),
    and the publishing connection gets its own setting back, whichever it was, also when a write fails."""
    live.execute(f"SET preserve_insertion_order = {ordered}")
    seen = []
    real = live.execute

    class Watching:  # the publishing connection, noting the setting at each COPY ... TO of a part
        def __getattr__(self, name):
            return getattr(live, name)

        def execute(self, sql, *args):
            if sql.startswith("COPY (") and ".parquet" in sql:
                seen.append(real("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0])
            return real(sql, *args)

    target = publish(Watching(), tmp_path / "published" / "warehouse.duckdb")
    assert seen and not any(seen)
    assert live.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0] is ordered
    for table in ("raw_requests", "fct_request_cost"):
        _same(live, target, table)

    live.execute("INSERT INTO raw_requests VALUES (2000, DATE '2026-11-01', 1.0)")  # a day to write again
    monkeypatch.setattr(publish_module, "PART_OPTIONS", "FORMAT no_such_format")  # the part's write fails
    with pytest.raises(duckdb.Error):
        publish(live, tmp_path / "published" / "warehouse.duckdb")
    assert live.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0] is ordered
