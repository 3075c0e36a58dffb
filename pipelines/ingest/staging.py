"""Staging a run's batches and replacing the day with them in one transaction.

Each batch is staged as it comes (committed into a temporary table, so DuckDB owns a copy and may spill it: a batch
waiting in an open transaction would pin the Arrow text it was read from); the day is then replaced from the stage
in one transaction (raw rows, quarantine rows, one ingest_file_stats row per file), so a failed run changes nothing.
"""

from __future__ import annotations

import contextlib
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.ingest import load_sql
from pipelines.ingest.feeds import Feed
from pipelines.ingest.files import LineProblem, date_in_name
from pipelines.ingest.report import IngestReport
from pipelines.warehouse.connection import table_exists


@contextlib.contextmanager
def replacing(con: duckdb.DuckDBPyConnection, feed: Feed, day: date | None, report: IngestReport):
    """Replace a day's rows of a feed (every day's when None) with what the batches inside the block stage. Yields
    the per-file counts {source_file: (read, loaded, quarantined)} that stage_batch fills; fills the report."""
    counts: dict = {}
    stage = feed.stage_table
    con.execute(f"DROP TABLE IF EXISTS {stage}")
    try:
        yield counts
        cols = ", ".join(feed.contract.names)
        staged = table_exists(con, stage)
        con.execute("BEGIN TRANSACTION")
        try:
            _clear(con, feed, day)
            if staged:
                con.execute(
                    f"INSERT INTO {feed.raw_table} ({cols}, source_file, source_line, partition_date, loaded_at) "
                    f"SELECT {cols}, source_file, source_line, partition_date, now() FROM {stage} "
                    "WHERE reason IS NULL")  # in staging order, batch by batch: no sort of a fleet-day
                con.execute(
                    "INSERT INTO ingest_quarantine SELECT ?, partition_date, source_file, source_line, raw_text, "
                    f"reason, now() FROM {stage} WHERE reason IS NOT NULL",
                    [feed.name])
            _write_file_stats(con, feed, day, counts)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        report.fill(counts)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {stage}")


def _clear(con: duckdb.DuckDBPyConnection, feed: Feed, day: date | None) -> None:
    where = f"partition_date = {load_sql.day_sql(day)}" if day else "true"
    con.execute(f"DELETE FROM {feed.raw_table} WHERE {where}")
    con.execute(f"DELETE FROM ingest_quarantine WHERE feed = ? AND {where}", [feed.name])
    con.execute(f"DELETE FROM ingest_file_stats WHERE feed = ? AND {where}", [feed.name])


def _write_file_stats(con: duckdb.DuckDBPyConnection, feed: Feed, day: date | None, counts: dict) -> None:
    """One ingest_file_stats row per file: rows read = rows loaded + rows quarantined."""
    if counts:
        con.executemany(f"INSERT INTO ingest_file_stats VALUES (?, {load_sql.day_sql(day)}, ?, ?, ?, ?, now())",
                        [[feed.name, f, *c] for f, c in sorted(counts.items())])


def problem_rows(con: duckdb.DuckDBPyConnection, feed: Feed, path: Path, problems: list[LineProblem]) -> str:
    """A parsed part (temp table) of quarantine rows: lines that cannot be rows, or where a file stopped."""
    name = f"problem_{abs(hash((str(path), problems[0].line))) % 10**9}"
    con.execute(load_sql.problem_rows_sql(feed, name))
    con.executemany(f"INSERT INTO {name} (source_file, source_line, raw_text, reason) VALUES (?, ?, ?, ?)",
                    [[str(path), p.line, p.raw_text, p.reason] for p in problems])
    return name


def register_files(con: duckdb.DuckDBPyConnection, files: list[Path]) -> None:
    """FILES_TABLE for a run's files (in arrival order): the date in each name, and its rank of arrival."""
    table = pa.table({"source_file": pa.array([str(p) for p in files], pa.string()),
                      "name_date": pa.array([date_in_name(p) for p in files], pa.date32()),
                      "arrival": pa.array(range(len(files)), pa.int64())})
    con.register("_ingest_files_arrow", table)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {load_sql.FILES_TABLE} AS SELECT * FROM _ingest_files_arrow")
    con.unregister("_ingest_files_arrow")


def stage_batch(con: duckdb.DuckDBPyConnection, feed: Feed, parsed_parts: list[str], day: date | None,
                counts: dict, files: bool = False) -> None:
    """Stage one batch of parsed files (or pieces of files), each row with its day and its reason if it is to be
    quarantined; each file's rows read, loaded and quarantined are added to ``counts``. Drops the parsed parts.
    ``files``: the run registered its files (register_files)."""
    any_bad = bool(parsed_parts) and bool(con.execute(load_sql.any_bad_sql(parsed_parts, day, files)).fetchall())
    con.execute(load_sql.batch_sql(feed, parsed_parts, day, any_bad, files))
    stage, batch = feed.stage_table, load_sql.BATCH_TABLE
    staged = table_exists(con, stage)
    if feed.duplicate_key:
        con.execute(load_sql.already_loaded_sql(feed, day, staged))
    if staged:
        con.execute(f"INSERT INTO {stage} SELECT * FROM {batch}")
    else:
        con.execute(f"CREATE TEMP TABLE {stage} AS SELECT * FROM {batch}")
    for f, read, loaded, quarantined in con.execute(
        "SELECT source_file, count(*), count(*) FILTER (WHERE reason IS NULL), "
        f"count(*) FILTER (WHERE reason IS NOT NULL) FROM {batch} GROUP BY 1 ORDER BY 1"
    ).fetchall():
        c = counts.get(f, (0, 0, 0))
        counts[f] = (c[0] + read, c[1] + loaded, c[2] + quarantined)
    con.execute(f"DROP TABLE {batch}")
    for p in parsed_parts:
        con.execute(f"DROP TABLE IF EXISTS {p}")
