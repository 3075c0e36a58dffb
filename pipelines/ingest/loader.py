"""Load one day of each feed from a landing directory into DuckDB raw tables, losing nothing.

Every line of every file is either loaded into ``raw_<feed>`` or written to ``ingest_quarantine`` with its file,
line number, raw text and reason; ``ingest_file_stats`` records rows read = rows loaded + rows quarantined for each
file of each run. Re-running a partition replaces that day (delete + insert in one transaction).

Which day a row belongs to is the UTC date of its event time (``partition_by`` in its contract). A row that is
quarantined takes the day of the nearest valid row before it in the same file (else after it, else the date in
the file name, else the day being loaded), so that it is quarantined once, beside the rows it came with. Files
whose name holds a date (YYYY-MM-DD) more than one day away from the day being loaded are not opened for it, so a
row dated more than a day from its file's date is quarantined; an undated file's rows dated only by the run stay
with the first day that quarantined them. Files are read in order of arrival: of two rows with one key, the first
delivered loads.

This module orchestrates; the jobs live beside it: decompress.py and files.py (reading files in bounded memory,
splitting lines), plain_files.py (decompressed ahead for DuckDB), duckdb_lines.py and duckdb_pieces.py (the same lines read by DuckDB), feeds.py (a feed resolved once), load_sql.py (the SQL that decides each row's fate), staging.py (staging and replacing a day).
A run never loses a loaded day by mistake: a reader of another feed is refused before anything is read, and a run
that would replace a loaded day with no rows or mostly quarantine is refused (refusal.py) unless
``replace_anyway``; ``dry_run`` reads, validates and reports, and writes nothing.
Pure DuckDB and Python; imports no Dagster.
"""

from __future__ import annotations

import collections
import contextlib
import functools
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.ingest import file_days, other_days, whole_files
from pipelines.ingest.duckdb_lines import FieldsNotExact, LineRelation, read_line_relation
from pipelines.ingest.duckdb_pieces import iter_piece_lines
from pipelines.ingest.feeds import (
    DEFAULT_FORMATS,
    Feed,
    fleet_feed,
    landing_formats,
    resolve_feed,
    resolve_landing_feed,
)
from pipelines.ingest.files import (
    CHUNK_BYTES,
    by_arrival,
    date_in_name,
    files_for,
    iter_line_chunks,
    read_lines,
)
from pipelines.ingest.formats import ParseContext
from pipelines.ingest.formats.common import WRITTEN
from pipelines.ingest.load_sql import FILES_TABLE
from pipelines.ingest.plain_files import DecompressAhead
from pipelines.ingest.report import FileReport, IngestError, IngestRefused, IngestReport
from pipelines.ingest.staging import (
    problem_rows,
    register_files,
    replacing,
    stage_batch,
)
from pipelines.settings import current
from pipelines.warehouse import temp_files
from pipelines.warehouse.connection import ensure_raw_tables
from pipelines.warehouse.contracts import OPTIONAL_FEEDS, OPTIONAL_FLEET_TABLES

__all__ = [
    "BATCH_LINES",
    "CHUNK_BYTES",
    "DEFAULT_FORMATS",
    "FileReport",
    "IngestError",
    "IngestReport",
    "day_range",
    "ingest_feed",
    "ingest_files",
    "ingest_fleet_table",
    "iter_line_chunks",
    "landing_formats",
    "read_lines",
]

# files are parsed and loaded in batches of about this many lines, so that memory stays bounded however many
# files a day has; all batches of a run are one transaction (a failed run changes nothing)
BATCH_LINES = 2_000_000


def ingest_feed(
    con: duckdb.DuckDBPyConnection,
    feed: str,
    landing: Path,
    day: date,
    *,
    fmt: str | None = None,
    options: dict | None = None,
    progress=None,
    replace_anyway: bool = False,
    dry_run: bool = False,
) -> IngestReport:
    """Load the rows of ``day`` from every file of ``landing/<feed>/`` into raw_<feed>.

    The format and its options come from the arguments, else from ``<landing>/formats.yaml`` (``<feed>: {format:
    ..., options: {...}}``, or a list of ``{pattern, format, options}``: the first pattern a file's name matches
    chooses its reader), else the feed's default format. ``replace_anyway``: replace a loaded day even with no rows
    or mostly quarantine; ``dry_run``: read and validate, write nothing (the report says what would load).
    """
    resolved = resolve_landing_feed(feed, Path(landing), fmt, options)
    if not dry_run:
        ensure_raw_tables(con)
    folder = Path(landing) / feed
    if not folder.is_dir():
        if feed in OPTIONAL_FEEDS:
            return _load_parts(con, resolved, [], day, replace_anyway=replace_anyway, dry_run=dry_run)
        raise IngestError(f"{folder}: landing folder for {feed} does not exist")
    files, not_opened = files_for(folder, resolved.patterns, day), []
    if day is not None:  # a file remembered to hold none of the day's rows is not opened (file_days.py)
        files, not_opened = file_days.known_without_day(con, resolved, files, day, Path(landing))
    try:
        report = _ingest(
            con, resolved, files, day, Path(landing), progress, replace_anyway=replace_anyway, dry_run=dry_run
        )
    except IngestRefused as refused:
        raise IngestRefused(f"{refused}{not_opened_note(not_opened)}") from None
    report.files_not_opened = not_opened
    if day is not None:  # and the late files no run of this day opens
        report.other_days += other_days.unread_late_files(con, resolved, folder, resolved.patterns, day)
    if report.refusal:
        report.refusal += not_opened_note(not_opened)
    return report


def not_opened_note(not_opened: list[str]) -> str:
    """What a refusal adds about the files the run did not open (file_days.py)."""
    if not not_opened:
        return ""
    return f" Not opened, remembered holding no row of the day: {', '.join(not_opened)}."


def ingest_files(
    con: duckdb.DuckDBPyConnection,
    feed: str,
    files: list[Path],
    day: date | None,
    *,
    fmt: str | None = None,
    options: dict | None = None,
    landing: Path | None = None,
    progress=None,
    replace_anyway: bool = False,
    dry_run: bool = False,
) -> IngestReport:
    """Load the rows of ``day`` (every day when None) from the given files (read in place) into raw_<feed>,
    replacing what an earlier run loaded for that day. ``progress(files_done, files_total, report)`` is called
    after every batch. ``replace_anyway`` and ``dry_run`` as for :func:`ingest_feed`."""
    resolved = resolve_feed(feed, fmt, options, landing)
    if not dry_run:
        ensure_raw_tables(con)
    return _ingest(con, resolved, list(files), day, landing, progress, replace_anyway=replace_anyway, dry_run=dry_run)


def ingest_fleet_table(con: duckdb.DuckDBPyConnection, name: str, landing: Path) -> IngestReport:
    """Load fleet/<name>.csv (a version-controlled file) into raw_<name>, replacing what was there."""
    ensure_raw_tables(con)
    feed = fleet_feed(name)
    path = Path(landing) / "fleet" / f"{name}.csv"
    if not path.exists():
        if name in OPTIONAL_FLEET_TABLES:
            return _load_parts(con, feed, [], None)  # an empty table
        raise IngestError(f"{path}: fleet file for {name} is missing")
    lines, problem = read_lines(path)
    if problem:
        raise IngestError(f"{path}: {problem}")
    rel = feed.reader.parse(ParseContext(con=con, landing=Path(landing), day=None, options={}), path, lines)
    return _load_parts(con, feed, [rel], None)


def day_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _load_parts(
    con: duckdb.DuckDBPyConnection, feed: Feed, parsed_parts: list[str], day: date | None, **guard
) -> IngestReport:
    """Replace the day's rows (all rows when day is None) with the parsed parts, in one transaction."""
    report = IngestReport(feed=feed.name, partition_date=day)
    with replacing(con, feed, day, report, files=[], **guard) as stage:
        stage_batch(con, feed, parsed_parts, day, stage)
    return report


def _ingest(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    files: list[Path],
    day: date | None,
    landing: Path | None,
    progress,
    **guard,
) -> IngestReport:
    """Parse the files piece by piece, stage them in batches of about BATCH_LINES lines, then replace the day."""
    report = IngestReport(feed=feed.name, partition_date=day)
    temp_files.remove_abandoned()  # a killed run's decompressed text
    files = by_arrival(files)  # a redelivered file comes after the original, whatever its name
    register_files(con, files)
    remembers = day is not None and not guard.get("dry_run")  # a written run of a day keeps its files' days
    before = file_days.fingerprints(files, feed, landing) if remembers else {}
    ahead = DecompressAhead() if current().line_reader == "duckdb" else None
    try:
        with replacing(con, feed, day, report, files=files, **guard) as stage:
            stage.other_days.changed = file_days.changed_since_read(con, feed, before)
            parts, lines_in_batch = [], 0
            named_twice = {p for p, n in collections.Counter(files).items() if n > 1}
            for i, path in enumerate(files, start=1):
                reader = feed.for_file(path)  # formats.yaml may give each file pattern its own reader
                name_date = date_in_name(path)
                ctx = ParseContext(con=con, landing=landing, day=day, options=reader.options, name_date=name_date)
                # a file whose every row loads goes straight in (once in the run: its rows are deleted by its name)
                if whole_files.may_write(stage, day, name_date) and path not in named_twice:
                    ctx.write_rows = functools.partial(whole_files.write_rows, feed, day, stage)
                following = feed.for_file(files[i]) if i < len(files) else None
                if ahead and following and _duckdb_reads_whole(following):
                    ahead.start(files[i])  # the next file decompresses while this one is read and parsed
                for piece_parts, n_lines in parse_file(con, ctx, reader, path, ahead):
                    parts += piece_parts
                    lines_in_batch += n_lines if piece_parts else 0  # none: its rows are written already
                    if lines_in_batch >= BATCH_LINES:
                        stage_batch(con, feed, parts, day, stage, files=True)
                        parts, lines_in_batch = [], 0
                        if progress:  # a long file reports each batch too
                            progress(i - 1, len(files), report.fill(stage.counts))
                if i == len(files) and parts:
                    stage_batch(con, feed, parts, day, stage, files=True)
                    parts, lines_in_batch = [], 0
                if progress:
                    progress(i, len(files), report.fill(stage.counts))
        if remembers and report.written:
            file_days.remember(con, feed, before, stage.file_days, landing)
    finally:
        if ahead:
            ahead.close()
        con.execute(f"DROP TABLE IF EXISTS {FILES_TABLE}")
    return report


def parse_file(con: duckdb.DuckDBPyConnection, ctx: ParseContext, feed: Feed, path: Path, ahead=None):
    """(parsed parts, lines read) for each piece of a file (one piece when the reader takes files whole): the
    piece's rows, and its lines that cannot be rows (over-long, or where the file stopped being read), in the same
    batch as the rows beside them, whose day they take."""
    if _duckdb_reads_whole(feed):
        # DuckDB's multithreaded reader, when it gives exactly the lines of the Python path (duckdb_lines.py); else
        # (INFERCOST_LINE_READER=python, another reader, or a file DuckDB cannot read exactly) the Python path
        tries = (True, False) if getattr(feed.reader, "csv_fields", False) else (False,)
        for i, csv_fields in enumerate(tries):  # as fields first, when the reader takes them
            relation = read_line_relation(con, path, feed.max_line_bytes, csv_fields, ahead if i == 0 else None)
            if relation is None:
                break
            try:
                part = feed.reader.parse_relation(ctx, path, relation)
                parts = [] if part == WRITTEN else [part]  # WRITTEN: in the run's transaction already
            except FieldsNotExact:  # not exactly its fields after all: read again a line a row
                ctx.release()
                continue
            finally:
                relation.drop(con)
            yield parts, relation.num_rows
            return
    if _duckdb_reads(feed):  # a file read line by line: DuckDB reads it piece by piece (duckdb_pieces.py)
        pieces = iter_piece_lines(con, path, CHUNK_BYTES, feed.max_line_bytes)
    else:
        pieces = iter_line_chunks(path, CHUNK_BYTES if feed.chunks else None, feed.max_line_bytes)
    header = None
    with contextlib.closing(pieces):
        for lines, problems in pieces:
            if isinstance(lines, LineRelation):
                try:
                    parts = [feed.reader.parse_relation(ctx, path, lines)]
                finally:
                    lines.drop(con)
            else:
                if header is not None:
                    lines = pa.concat_tables([header, lines])
                elif feed.chunks == "header" and lines.num_rows:
                    header = lines.slice(0, 1)
                parts = [feed.reader.parse(ctx, path, lines)]
                ctx.release()
            if problems:
                parts.append(problem_rows(con, feed, path, problems))
            n_lines = lines.num_rows + len(problems)
            del lines  # the piece's text is not held while the batch is staged
            yield parts, n_lines


def _duckdb_reads(feed: Feed) -> bool:
    """DuckDB's reader reads the feed's files (duckdb_lines.py whole, duckdb_pieces.py piece by piece)."""
    return current().line_reader == "duckdb" and hasattr(feed.reader, "parse_relation")


def _duckdb_reads_whole(feed: Feed) -> bool:
    """DuckDB reads the feed's files whole (duckdb_lines.py): all but those read line by line, which it reads in
    pieces."""
    return _duckdb_reads(feed) and feed.chunks != "lines"
