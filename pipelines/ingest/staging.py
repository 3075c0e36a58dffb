"""Staging a run's batches and replacing the day with them in one transaction.

A run writes each batch straight into the raw table and ingest_quarantine, in the run's own transaction on a second
connection that cleared the day first (:class:`Stage` ``writer``): the rows are compressed into the warehouse once.
A feed with a duplicate key (requests, prices, the fleet files) also keeps each batch's loaded keys in a temporary
stage, which the next batches are checked against. A dry run, which writes nothing, stages whole batches instead
(committed into a temporary table, so DuckDB owns a copy and may spill it: a batch waiting in an open transaction
would pin the Arrow text it was read from), and the day would be replaced from the stage in one transaction.
Either way the day's raw rows, quarantine rows and one ingest_file_stats row per file are committed together, so a
failed run changes nothing and a reader never sees half a day.

Before replacing a day that has loaded rows, the run is checked (refusal.py): a run that would load nothing, or
reject more than QUARANTINE_SHARE_LIMIT of its rows where the loaded day rejected far fewer, is refused and the day
stays as it was, unless ``replace_anyway``. A dry run stages and checks, and writes nothing."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.ingest import file_days, load_sql
from pipelines.ingest.feeds import Feed
from pipelines.ingest.files import LineProblem, files_table
from pipelines.ingest.other_days import OtherDays, left_for_other_days
from pipelines.ingest.other_days import add_batch as add_other_day_rows
from pipelines.ingest.refusal import refusal
from pipelines.ingest.report import IngestRefused, IngestReport
from pipelines.settings import current
from pipelines.warehouse.connection import scalar, sql_str, table_exists


@dataclass
class Stage:
    """A run's batches so far: the per-file counts {source_file: (read, loaded, quarantined, skipped, energy
    sources)} that stage_batch fills, and for a feed without a duplicate key the run's own write transaction
    (``writer``, a second connection to the warehouse) that its batches go straight into."""

    counts: dict = field(default_factory=dict)
    writer: duckdb.DuckDBPyConnection | None = None
    other_days: OtherDays = field(default_factory=OtherDays)
    """The files' valid rows of other days (other_days.add_batch)."""
    file_days: dict = field(default_factory=dict)  # {(source_file, day): [3 row counts]} (file_days.add_batch)


@contextlib.contextmanager
def replacing(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    day: date | None,
    report: IngestReport,
    *,
    files: list[Path] | None = None,
    replace_anyway: bool = False,
    dry_run: bool = False,
):
    """Replace a day's rows of a feed (every day's when None) with what the batches inside the block stage. Yields
    the run's Stage, which stage_batch fills; fills the report.
    ``files``: the files the run read (named when it is refused). Raises IngestRefused (see :func:`refusal`)."""
    con.execute(f"DROP TABLE IF EXISTS {feed.stage_table}")
    stage = Stage(writer=None if dry_run else _begin_writing(con, feed, day))
    try:
        yield stage
        report.fill(stage.counts)
        report.other_days = left_for_other_days(con, feed, day, stage.other_days) if day else []
        report.refusal = None if replace_anyway else refusal(con, feed, day, stage.counts, files)
        if dry_run or report.refusal:
            report.written = False
            if report.refusal and not dry_run:
                raise IngestRefused(report.refusal)
            return
        if stage.writer is not None:
            _write_file_stats(stage.writer, feed, day, stage.counts)
            stage.writer.execute("COMMIT")
        else:
            _write(con, feed, day, stage.counts, table_exists(con, feed.stage_table))
    finally:
        if stage.writer is not None:
            with contextlib.suppress(duckdb.Error):  # after COMMIT there is no transaction left to roll back
                stage.writer.execute("ROLLBACK")
            stage.writer.close()
        con.execute(f"DROP TABLE IF EXISTS {feed.stage_table}")


def _begin_writing(con: duckdb.DuckDBPyConnection, feed: Feed, day: date | None) -> duckdb.DuckDBPyConnection:
    """The run's write transaction, on a second connection: the day cleared, then each batch written into the raw
    table as it comes (stage_batch): a fleet-day's rows are compressed once, not spilled into a stage and copied
    (45 s of 86M telemetry rows); the parsing connection holds no transaction. Until COMMIT nobody sees the new
    rows: a refused, failed or killed run leaves the day as it was."""
    _add_missing_columns(con)
    writer = con.cursor()
    zone = con.execute("SELECT current_setting('TimeZone')").fetchall()[0][0]
    writer.execute(f"SET TimeZone = {sql_str(zone)}")  # a row's day (whole_files.py) as the parse gives it
    writer.execute("BEGIN TRANSACTION")
    try:
        _clear(writer, feed, day)
    except Exception:
        writer.execute("ROLLBACK")
        writer.close()
        raise
    return writer


def _add_missing_columns(con: duckdb.DuckDBPyConnection) -> None:
    for column in ("rows_skipped BIGINT", "energy_source VARCHAR"):  # an older warehouse
        con.execute(f"ALTER TABLE ingest_file_stats ADD COLUMN IF NOT EXISTS {column}")


def _write(con: duckdb.DuckDBPyConnection, feed: Feed, day: date | None, counts: dict, staged: bool) -> None:
    """Replace the day with the stage: raw rows, quarantine rows, file stats, in one transaction."""
    _add_missing_columns(con)
    con.execute("BEGIN TRANSACTION")
    try:
        _clear(con, feed, day)
        if staged:
            _insert_rows(con, feed, feed.stage_table)
        _write_file_stats(con, feed, day, counts)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def _insert_rows(con: duckdb.DuckDBPyConnection, feed: Feed, rows: str | pa.Table) -> None:
    """The staged rows (a table of the stage's columns, or a batch of them as Arrow) into the raw table, and the
    quarantined ones with their lines and reasons into ingest_quarantine."""
    if isinstance(rows, pa.Table):
        # read by its variable's name (DuckDB's replacement scan): a view registered inside the run's transaction
        # would stay in its catalog until COMMIT, and pin every batch's Arrow (a fleet-day ran out of 24 GB)
        _ingest_written_batch = rows  # noqa: F841 (read by name in the SQL below)
        rows = "_ingest_written_batch"
    con.execute(load_sql.insert_loaded_sql(feed, rows))  # in staging order, batch by batch: no sort of a fleet-day
    con.execute(
        "INSERT INTO ingest_quarantine SELECT ?, partition_date, source_file, source_line, raw_text, "
        f"reason, now() FROM {rows} WHERE reason IS NOT NULL",
        [feed.name],
    )


def _clear(con: duckdb.DuckDBPyConnection, feed: Feed, day: date | None) -> None:
    where = f"partition_date = {load_sql.day_sql(day)}" if day else "true"
    con.execute(f"DELETE FROM {feed.raw_table} WHERE {where}")
    con.execute(f"DELETE FROM ingest_quarantine WHERE feed = ? AND {where}", [feed.name])
    con.execute(f"DELETE FROM ingest_file_stats WHERE feed = ? AND {where}", [feed.name])


def _write_file_stats(con: duckdb.DuckDBPyConnection, feed: Feed, day: date | None, counts: dict) -> None:
    """One ingest_file_stats row per file: rows read = rows loaded + rows quarantined + rows skipped."""
    if counts:
        con.executemany(
            "INSERT INTO ingest_file_stats (feed, partition_date, source_file, rows_read, rows_loaded, "
            f"rows_quarantined, rows_skipped, energy_source, loaded_at) VALUES (?, {load_sql.day_sql(day)}, ?, ?, "
            "?, ?, ?, nullif(?, ''), now())",
            [[feed.name, f, *c] for f, c in sorted(counts.items())],
        )


def problem_rows(con: duckdb.DuckDBPyConnection, feed: Feed, path: Path, problems: list[LineProblem]) -> str:
    """A parsed part (temp table) of quarantine rows: lines that cannot be rows, or where a file stopped."""
    name = f"problem_{abs(hash((str(path), problems[0].line))) % 10**9}"
    con.execute(load_sql.problem_rows_sql(feed, name))
    con.executemany(
        f"INSERT INTO {name} (source_file, source_line, raw_text, reason) VALUES (?, ?, ?, ?)",
        [[str(path), p.line, p.raw_text, p.reason] for p in problems],
    )
    return name


def register_files(con: duckdb.DuckDBPyConnection, files: list[Path]) -> None:
    """FILES_TABLE for a run's files (in arrival order)."""
    con.register("_ingest_files_arrow", files_table(files))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {load_sql.FILES_TABLE} AS SELECT * FROM _ingest_files_arrow")
    con.unregister("_ingest_files_arrow")


def stage_batch(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    parsed_parts: list[str],
    day: date | None,
    stage: Stage,
    files: bool = False,
) -> None:
    """Stage one batch of parsed files (or pieces), each row with its day and its reason if it is to be quarantined;
    each file's rows read, loaded, quarantined and skipped go to ``stage.counts``. Drops the parsed parts. With
    ``stage.writer`` the batch is written into the raw table (and ingest_quarantine) in the run's transaction, else
    kept in the stage table until the day is replaced. ``files``: the run registered its files (register_files)."""
    any_bad = bool(parsed_parts) and bool(con.execute(load_sql.any_bad_sql(parsed_parts, day, files)).fetchall())
    if day is not None and files and parsed_parts:
        add_other_day_rows(con, feed, parsed_parts, day, stage.other_days)
        file_days.add_batch(con, feed, parsed_parts, day, any_bad, stage.file_days)
    table, batch = feed.stage_table, load_sql.BATCH_TABLE
    staged = table_exists(con, table)
    window = current().duplicate_window_days
    if parsed_parts and feed.duplicate_key:  # the batch is kept, to quarantine keys already loaded
        batch_sql = load_sql.batch_query_sql(feed, parsed_parts, day, any_bad, files, detached=True)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {batch} AS {batch_sql}")
        con.execute(load_sql.already_loaded_sql(feed, day, staged, window))
        # a row that loads needs no line (a later repeat of its key is quarantined with its own line): only the
        # quarantined rows' lines are joined back from the parsed parts, when the batch has any (the join reads
        # every line's text even when nothing is quarantined: 1 s for 2M request lines)
        rows = f"SELECT * EXCLUDE (_part, _row), NULL::VARCHAR AS raw_text FROM {batch} WHERE reason IS NULL"
        if con.execute(f"SELECT 1 FROM {batch} WHERE reason IS NOT NULL LIMIT 1").fetchall():
            rows += f"""
                UNION ALL BY NAME
                SELECT b.* EXCLUDE (_part, _row), t.raw_text
                FROM (SELECT * FROM {batch} WHERE reason IS NOT NULL) b
                JOIN ({load_sql.parts_text_sql(parsed_parts)}) t USING (_part, _row)"""
        if stage.writer is not None:  # the rows go into the run's transaction; the stage keeps their keys only
            _insert_rows(stage.writer, feed, con.sql(rows).to_arrow_table())
            rows = load_sql.staged_keys_sql(feed, batch)
        _stage_rows(con, table, rows, staged)
        _count(con, feed, batch, stage.counts)
    else:  # nothing more to decide: the batch goes straight on, its rows counted where they went
        rows = load_sql.batch_query_sql(feed, parsed_parts, day, any_bad, files)
        rows = f"SELECT * REPLACE (CASE WHEN reason IS NOT NULL THEN raw_text END AS raw_text) FROM ({rows})"
        if stage.writer is not None:
            _write_batch(con, feed, rows, stage)
        else:
            # the first rowid this batch gets: one past the stage's last (its row count while nothing is deleted)
            first = scalar(con, f"SELECT coalesce(max(rowid) + 1, 0) FROM {table}") if staged else 0
            _stage_rows(con, table, rows, staged)
            _count(con, feed, f"(SELECT * FROM {table} WHERE rowid >= {int(first)})", stage.counts)
    con.execute(f"DROP TABLE IF EXISTS {batch}")
    if files and parsed_parts:  # the next batch may go on with the last file: its last valid date goes with it
        con.execute(load_sql.carried_date_sql(parsed_parts))
    for p in parsed_parts:
        con.execute(f"DROP TABLE IF EXISTS {p}")


def _stage_rows(con: duckdb.DuckDBPyConnection, table: str, rows: str, staged: bool) -> None:
    """The batch's rows (a query) added to the stage table, which the first batch creates."""
    if staged:
        con.execute(f"INSERT INTO {table} BY NAME {rows}")
    else:
        con.execute(f"CREATE TEMP TABLE {table} AS {rows}")


def _write_batch(con: duckdb.DuckDBPyConnection, feed: Feed, rows: str, stage: Stage) -> None:
    """The batch's rows (a query on ``con``) written in the run's transaction (DuckDB hands them over as Arrow),
    then counted."""
    written = con.sql(rows).to_arrow_table()
    _insert_rows(stage.writer, feed, written)
    con.register(_WRITTEN, written)  # con holds no transaction: the view is gone with unregister
    try:
        _count(con, feed, _WRITTEN, stage.counts)
    finally:
        con.unregister(_WRITTEN)


_WRITTEN = "_ingest_batch_written"  # a batch written into the run's transaction, as Arrow, while it is counted


def _count(con: duckdb.DuckDBPyConnection, feed: Feed, rows: str, counts: dict) -> None:
    """Add a batch's rows (``rows``: a table or a subquery) to the per-file counts: read, loaded, quarantined,
    skipped, and the columns the loaded telemetry samples' energy came from."""
    skipped = f"starts_with(reason, '{load_sql.SKIPPED_REASON}')"
    # the column each loaded telemetry sample's energy came from (README "Input formats"), per file
    source = (
        "list(DISTINCT energy_source) FILTER (WHERE reason IS NULL)" if "energy_source" in feed.contract.names else "[]"
    )
    for f, *added, sources in con.execute(
        "SELECT source_file, count(*), count(*) FILTER (WHERE reason IS NULL), "
        f"count(*) FILTER (WHERE reason IS NOT NULL AND NOT {skipped}), count(*) FILTER (WHERE {skipped}), "
        f"{source} FROM {rows} GROUP BY 1 ORDER BY 1"
    ).fetchall():
        add_counts(counts, f, added, sources or [])


def add_counts(counts: dict, source_file: str, added, sources) -> None:
    """Add rows read, loaded, quarantined and skipped (``added``) and the energy sources of its loaded rows to a
    file's counts (Stage.counts)."""
    old = counts.get(source_file, (0, 0, 0, 0, ""))
    known = {s for s in (*old[4].split(", "), *sources) if s}
    counts[source_file] = (*(a + b for a, b in zip(old[:4], added)), ", ".join(sorted(known)))
