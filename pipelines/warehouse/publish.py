"""Publish a read-only copy of the warehouse for analysts, at a cost that follows the run's days, not the history.

DuckDB allows one writer, and while it writes no other process can open the file, even read-only. After each
successful run the writer publishes ``$INFERCOST_HOME/published/warehouse.duckdb``, which readers (``infercost
sql``, the API, notebooks, BI tools) open read-only. A reader that already has the previous copy open keeps it
until it reconnects.

Copying the whole warehouse grows with the history (0.35 GB a day on a 64-accelerator fleet). So a published copy
is two parts:

- the tables that grow with every day (a day column and at least ``BY_DAY_MIN_ROWS`` rows: the request and
  telemetry tables, the pieces, ``fct_request_cost``) are Parquet files, one per table and day, under
  ``published/warehouse.parts/<table>/``; the copy holds a view per table over its files, which casts each column
  back to the warehouse's type;
- everything else (the daily rollups, the small tables, dbt's views, the schemas) is copied into a new DuckDB file.

A run writes only the Parquet files of the days it changed: its own days (and the two before them for a table
keyed by ``request_date``: a run rebuilds the requests over midnight), a day whose row count differs from the file
published for it, a day never published, and every day of a table whose columns changed. The other days' files
are reused. Files are never overwritten: each has a name of its own, the list of a copy's files is in the copy
(``_published_parts``), and the new DuckDB file is renamed over the old one at the end, so a reader sees one copy
whole. Files neither the new nor the previous copy lists are then deleted. A run killed halfway leaves the previous
copy whole (its new files are deleted by the next run).

Imports no Dagster.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from pipelines.settings import current
from pipelines.warehouse.connection import scalar, sql_str

BY_DAY_MIN_ROWS = 100_000
"""A table with a day column and at least this many rows is published as Parquet files by day."""
DAY_COLUMNS = {"partition_date": 0, "request_date": 2}
"""The day columns a table is published by, first match first, with the days before its days a run can rewrite
(a run rebuilds the requests with energy in its days, which started up to two days before: run_days.sql)."""
RUN_DAYS_ONLY: tuple[str, ...] = ()
"""Tables keyed by request_date whose runs rewrite their own days only (dbt pre-hook ``delete_run_rows(
in_run_days('request_date'))``; tests/test_publish.py reads the models to hold this list to them). None now:
``int_requests``, the one such model, is a view (the copy holds its definition, not its rows)."""
WHOLE_TYPES = ("HUGEINT", "UHUGEINT")
"""Types Parquet cannot hold exactly (DuckDB writes HUGEINT as DOUBLE): a table with one is copied whole."""
PART_OPTIONS = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, DICTIONARY_SIZE_LIMIT 1"
"""How a part is written (_export says why)."""
ENUM_MAX_VALUES = 10_000
"""A text column of a part with at most this many distinct values is written from an ENUM (_few_values_as_enums)."""
MANIFEST = "_published_parts"
COPY = "_publish"
"""The new copy's file, attached to the warehouse's connection while it is written (its tables are the warehouse's)."""


@dataclass(frozen=True)
class Part:
    table: str
    day: date | None
    path: str
    row_count: int
    columns: str


def published_path() -> Path:
    return current().published


def parts_dir(target: Path) -> Path:
    """Where the Parquet files of the published copy at ``target`` live (readers must be allowed to read it)."""
    return Path(target).resolve().with_suffix(".parts")


def publish(con: duckdb.DuckDBPyConnection, target: Path | None = None, days: tuple[date, date] | None = None) -> Path:
    """Publish the warehouse ``con`` holds to ``target``; ``days`` is the run's first and last day (None: a run
    over every day, whose by-day files are all written again)."""
    target = Path(target or published_path()).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".new")
    for leftover in (staging, staging.with_name(staging.name + ".wal")):  # a killed publish's (DuckDB would replay
        leftover.unlink(missing_ok=True)  # an old write-ahead log into the new file)
    root = parts_dir(target)
    previous = _read_manifest(con, target)
    runs = _pending_runs(target, days)
    source = scalar(con, "SELECT current_database()")
    generation = uuid.uuid4().hex[:12]
    con.execute(f"ATTACH {sql_str(staging)} AS {COPY}")
    try:
        con.execute(f'COPY FROM DATABASE "{source}" TO {COPY} (SCHEMA)')
        parts = []
        for schema, table in base_tables(con, source):
            columns = table_columns(con, source, schema, table)
            relation = f'"{source}"."{schema}"."{table}"'
            day_column = day_column_of(columns)
            by_day = day_column is not None and not _has_whole_type(columns)
            rows = scalar(con, f"SELECT count(*) FROM {relation}") if by_day else 0
            if rows < max(1, BY_DAY_MIN_ROWS):  # small, no day column, or a type Parquet cannot hold: copied whole
                con.execute(f'INSERT INTO {COPY}."{schema}"."{table}" SELECT * FROM {relation}')
                continue
            name = table if schema == "main" else f"{schema}.{table}"
            windows = _windows(runs, 0 if name in RUN_DAYS_ONLY else DAY_COLUMNS[day_column])
            table_parts = [
                part if part.path else _export(con, relation, part, day_column, root, generation, columns)
                for part in _table_parts(con, relation, name, day_column, columns, rows, windows, previous)
            ]
            _create_view(con, schema, table, columns, table_parts)
            parts += table_parts
        _write_manifest(con, parts)
    finally:
        con.execute(f"DETACH {COPY}")
    os.replace(staging, target)
    _pending_file(target).unlink(missing_ok=True)
    _delete_unlisted(root, {p.path for p in parts} | {p.path for p in previous.values()})
    return target


def base_tables(con, source: str) -> list[tuple[str, str]]:
    """The (schema, table) of every base table of the database ``source``."""
    return con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? AND NOT temporary AND NOT internal "
        "ORDER BY schema_name, table_name",
        [source],
    ).fetchall()


def table_columns(con, source: str, schema: str, table: str) -> list[tuple[str, str]]:
    """The table's (column, type), in order."""
    return con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? "
        "AND table_name = ? ORDER BY column_index",
        [source, schema, table],
    ).fetchall()


def day_column_of(columns: list[tuple[str, str]]) -> str | None:
    """The table's day column (the first of DAY_COLUMNS it has as a DATE), or None."""
    types = dict(columns)
    return next((c for c in DAY_COLUMNS if types.get(c) == "DATE"), None)


def _has_whole_type(columns: list[tuple[str, str]]) -> bool:
    """A column of a type Parquet cannot hold exactly: the table is copied whole."""
    return any(t.startswith(WHOLE_TYPES) for _, t in columns)


def _pending_file(target: Path) -> Path:
    return target.with_name(target.name + ".pending.json")


def _pending_runs(target: Path, days: tuple[date, date] | None) -> list[tuple[date, date]] | None:
    """The days of this run and of every run since the last publish that completed (a run killed while it
    published: its days are still to write), kept in a file beside the copy until a publish completes; None when
    one of them covered every day (or the file cannot be read)."""
    path = _pending_file(target)
    try:
        runs = json.loads(path.read_text()) if path.is_file() else []
        runs = [None if run is None else [date.fromisoformat(run[0]), date.fromisoformat(run[1])] for run in runs]
    except (ValueError, TypeError, IndexError, OSError):
        runs = [None]
    runs.append(None if days is None else list(days))
    written = path.with_name(path.name + ".new")
    written.write_text(json.dumps([None if r is None else [r[0].isoformat(), r[1].isoformat()] for r in runs]))
    os.replace(written, path)
    return None if None in runs else [tuple(run) for run in runs]


def _windows(runs: list[tuple[date, date]] | None, before: int) -> list[tuple[date, date]] | None:
    """The days a table's rows may have changed in, for a table a run rewrites ``before`` days back."""
    return None if runs is None else [(first - timedelta(days=before), last) for first, last in runs]


def _table_parts(con, relation, name, day_column, columns, total: int, windows, previous: dict) -> list[Part]:
    """The table's parts: a previous part reused where nothing says its day changed, else a part to export
    (an empty path)."""
    signature = ", ".join(f"{c} {t}" for c, t in columns)
    parts = []
    for day, rows in _day_counts(con, relation, name, day_column, total, windows, previous):
        old = previous.get((name, day))
        reuse = (
            old is not None
            and old.row_count == rows
            and old.columns == signature
            and Path(old.path).is_file()
            and windows is not None
            and (day is None or not _in_windows(day, windows))
        )
        parts.append(old if reuse else Part(name, day, "", rows, signature))
    return parts


def _in_windows(day: date, windows: list[tuple[date, date]]) -> bool:
    return any(first <= day <= last for first, last in windows)


def _day_counts(con, relation, name, day_column, total: int, windows, previous) -> list[tuple[date | None, int]]:
    """The table's rows per day. Counting every day reads the day column of the whole history; so the run's days
    (and the rows without a day) are counted, the other days taken from the previous copy, and that is checked
    against the table's row count ``total`` (which DuckDB keeps): any other difference, and every day is counted."""
    published = {day: p.row_count for (table, day), p in previous.items() if table == name and day is not None}
    if windows is not None and published:
        outside = {day: rows for day, rows in published.items() if not _in_windows(day, windows)}
        ranges = " OR ".join(f"{day_column} BETWEEN DATE '{first}' AND DATE '{last}'" for first, last in windows)
        inside = con.execute(
            f"SELECT {day_column}, count(*) FROM {relation} WHERE {ranges} OR {day_column} IS NULL GROUP BY ALL"
        ).fetchall()
        if sum(outside.values()) + sum(rows for _, rows in inside) == total:
            return sorted(list(outside.items()) + inside, key=lambda row: (row[0] is None, row[0]))
    return con.execute(f"SELECT {day_column}, count(*) FROM {relation} GROUP BY ALL ORDER BY 1 NULLS LAST").fetchall()


def _export(con, relation: str, part: Part, day_column: str, root: Path, generation: str, columns) -> Part:
    """The part's rows written to a Parquet file of its own: zstd at level 1 (a third faster than the default level
    for 3 % more bytes on the fleet-day's request costs), and no dictionary but the ENUMs' own (DuckDB otherwise
    builds one for every column, measurements and unique ids included, and drops most: the files come out the same
    size, 5 % faster over the fleet-day's publish)."""
    folder = root / part.table
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{part.day or 'no-day'}.{generation}.parquet"
    where = f"{day_column} IS NULL" if part.day is None else f"{day_column} = DATE '{part.day}'"
    rows = f"SELECT {_few_values_as_enums(con, relation, where, columns)} FROM {relation} WHERE {where}"
    # the rows in no set order (a table's rows have none in SQL): DuckDB then writes the file from both cores; in
    # the warehouse's order it wrote from one (the fleet-day's raw telemetry 25 s against 12.5 s, the same bytes)
    ordered = scalar(con, "SELECT current_setting('preserve_insertion_order')")
    con.execute("SET preserve_insertion_order = false")
    try:
        con.execute(f"COPY ({rows}) TO {sql_str(path)} ({PART_OPTIONS})")
    finally:
        con.execute(f"SET preserve_insertion_order = {bool(ordered)}")
    return Part(part.table, part.day, str(path), part.row_count, part.columns)


def _few_values_as_enums(con, relation: str, where: str, columns) -> str:
    """The part's select list, each text column of at most ENUM_MAX_VALUES distinct values (device ids, hosts,
    files, models: by a cheap estimate, then listed) cast to an ENUM of them. Parquet's writer hashes every text
    value into its dictionary, but takes an ENUM's dictionary as it is: raw telemetry of the fleet-day (86M rows)
    is written in 19 s instead of 32 s. Read back, an ENUM column is text again, and the view casts every column
    to the warehouse's type."""
    text = _not_many_in_first_rows(con, relation, where, [c for c, t in columns if t == "VARCHAR"])
    few = set()
    if text:
        estimates = ", ".join(f'approx_count_distinct("{c}")' for c in text)
        estimates = con.execute(f"SELECT {estimates} FROM {relation} WHERE {where}").fetchall()[0]
        few = {c for c, n in zip(text, estimates) if 0 < n <= ENUM_MAX_VALUES}
    select = []
    for c, _ in columns:
        distinct = f'SELECT DISTINCT "{c}" FROM {relation} WHERE {where} AND "{c}" IS NOT NULL'
        values = [v for (v,) in con.execute(distinct).fetchall()] if c in few else []
        select.append(f'"{c}"::ENUM({", ".join(sql_str(v) for v in values)}) AS "{c}"' if values else f'"{c}"')
    return ", ".join(select)


def _not_many_in_first_rows(con, relation: str, where: str, text: list[str]) -> list[str]:
    """The text columns without more than ENUM_MAX_VALUES distinct values among the part's first rows: a column
    with more there has more in the part, and is not estimated over every row (request ids: the estimate hashes
    each of the fleet-day's 12.7M, about 0.3 s a table)."""
    if not text:
        return text
    counts = ", ".join(f'count(DISTINCT "{c}")' for c in text)
    first = ", ".join(f'"{c}"' for c in text)
    limit = 4 * ENUM_MAX_VALUES
    counts = con.execute(f"SELECT {counts} FROM (SELECT {first} FROM {relation} WHERE {where} LIMIT {limit})")
    return [c for c, n in zip(text, counts.fetchall()[0], strict=True) if n <= ENUM_MAX_VALUES]


def _create_view(con, schema: str, table: str, columns, parts: list[Part]) -> None:
    files = ", ".join(sql_str(p.path) for p in parts)
    select = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in columns)
    con.execute(f'DROP TABLE {COPY}."{schema}"."{table}"')
    con.execute(f'CREATE VIEW {COPY}."{schema}"."{table}" AS SELECT {select} FROM read_parquet([{files}])')


def _write_manifest(con, parts: list[Part]) -> None:
    con.execute(
        f"CREATE TABLE {COPY}.main.{MANIFEST} (table_name VARCHAR, day DATE, path VARCHAR, row_count BIGINT, "
        "columns VARCHAR)"
    )
    if parts:
        con.executemany(
            f"INSERT INTO {COPY}.main.{MANIFEST} VALUES (?, ?, ?, ?, ?)",
            [(p.table, p.day, p.path, p.row_count, p.columns) for p in parts],
        )


def _read_manifest(con, target: Path) -> dict:
    """The parts the copy now at ``target`` lists, by (table, day); none when there is no copy, or one from before
    copies had parts (then every day is exported)."""
    if not target.is_file():
        return {}
    try:
        con.execute(f"ATTACH {sql_str(target)} AS _published (READ_ONLY)")
    except duckdb.Error:
        return {}  # not a DuckDB file this version reads: it is replaced whole
    try:
        listed = scalar(
            con,
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = '_published' AND table_name = ?",
            [MANIFEST],
        )
        rows = con.execute(f"SELECT * FROM _published.main.{MANIFEST}").fetchall() if listed else []
    finally:
        con.execute("DETACH _published")
    return {(table, day): Part(table, day, path, n, columns) for table, day, path, n, columns in rows}


def _delete_unlisted(root: Path, listed: set[str]) -> None:
    """Delete the Parquet files under ``root`` no copy lists (replaced days, a killed run's files)."""
    if not root.is_dir():
        return
    for path in root.rglob("*.parquet"):
        if str(path) not in listed:
            path.unlink(missing_ok=True)
    for folder in root.iterdir():
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
