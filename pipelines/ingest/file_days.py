"""Which days each landing file holds, remembered, so that a run does not open a file it knows holds none of its day.

A run of day D opens every file whose name's date is at most a day from D (files.files_for): a nightly run parses
yesterday's files again to find none of its rows, and a backfill parses each file three times. So when a run of a
day is written, the days of the rows of every file it read are kept in ``ingest_file_days`` with the file's
fingerprint: its path, size, modification time, a hash of its bytes, and how it was read (format,
options, a mapping file's text, the contract's version). A row's day is the day the loader files it to (a
quarantined row takes its neighbour's day: load_sql.filed_days_sql), and also its own date when it was quarantined
(a row dated in the future is implausible now and may load later). A later run of a day does not open a file whose
fingerprint is unchanged, that holds no row of that day and no row whose key another file has, and whose rows of
other days their days' runs read (or belong to later days not run yet); its report names the file (IngestReport.
files_not_opened). Any other file is read: one no written run of a day read, one changed since, one read another
way, one with a row dated only by the run (an undated file with no valid row: a NULL day with its rows; a file with
no row at all is kept as a NULL day of 0 rows).

Only runs of one day through the landing skip files: loader.ingest_feed, and the spark engine's ingest_feed_spark,
whose parse tasks count each file's days (pipelines/spark/tasks.py); files named to the loader are read. A spark
task sees one file and counts no rows sharing keys with another (the spark engine ranks a key's rows of the run's
day only, so a file with none of them changes nothing of the day), so the spark engine's memory is kept under a
reader key of its own, which the loader does not take for its own. A run that opens fewer files cuts its batches
elsewhere; a quarantined line's day does not depend on the cuts (load_sql._assigned_sql looks back past them),
except for bad lines before a file's first valid row when that row is past a cut (2M lines of a file with no
valid row). Imports no Dagster.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.ingest import load_sql
from pipelines.ingest.feeds import Feed
from pipelines.ingest.formats.config import resolve_mapping
from pipelines.warehouse.connection import table_exists

TABLE = "ingest_file_days"
RULE_VERSION = 1
"""Raised when the rule that gives a row its day changes: every remembered file is then read again."""

Fingerprint = tuple[int, int, str, str]
"""A file's size in bytes, modification time in ns, the SHA-256 of its bytes (content_hash) and how it is read
(reader_key)."""


def reader_key(feed: Feed, landing: Path | None, engine: str = "duckdb") -> str:
    """How a file is read: the reader's format and options, a mapping file's text (by hash), the contract's
    version and the rule's, and the engine when it is not the loader (a spark task sees one file, so it cannot
    count rows sharing a key with another file: the loader does not trust the spark engine's memory)."""
    mapping = getattr(feed.reader, "mapping_path", None) or feed.options.get("mapping")
    mapping_hash = ""
    if mapping:
        try:
            mapping_hash = hashlib.sha256(resolve_mapping(mapping, landing).read_bytes()).hexdigest()[:16]
        except (OSError, ValueError):
            mapping_hash = "unreadable"  # the read will fail and say why; the file is not remembered
    key = [RULE_VERSION, feed.contract.version, feed.format, feed.options, mapping_hash]
    return json.dumps(key if engine == "duckdb" else [*key, engine], sort_keys=True, default=str)


def content_hash(path: Path) -> str:
    """SHA-256 (the first 32 hex digits) of the file's bytes: about 0.05 s for a 44 MB day of gzipped requests
    here, against seconds to parse it; an edit anywhere changes it, whatever its size and modification time."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:32]


def stat_of(path: Path) -> tuple[int, int] | None:
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def fingerprint(path: Path, feed: Feed, landing: Path | None, engine: str = "duckdb") -> Fingerprint | None:
    """The file's fingerprint as it is now (None: it cannot be read; the read will say why)."""
    stat = stat_of(path)
    try:
        key = reader_key(feed.for_file(path), landing, engine)
        return None if stat is None else (*stat, content_hash(Path(path)), key)
    except OSError:
        return None


def fingerprints(
    files: list[Path], feed: Feed, landing: Path | None, engine: str = "duckdb"
) -> dict[str, Fingerprint | None]:
    return {str(p): fingerprint(p, feed, landing, engine) for p in files}


MUST_OPEN_SQL = f"""
    WITH remembered AS (SELECT * FROM {TABLE} WHERE feed = $feed),
    read_by_day AS (
        SELECT source_file, partition_date, sum(rows_read) AS rows_read FROM ingest_file_stats
        WHERE feed = $feed AND source_file IN (SELECT source_file FROM remembered) GROUP BY ALL
    ),
    days_run AS (SELECT DISTINCT partition_date FROM ingest_file_stats WHERE feed = $feed)
    SELECT m.source_file, any_value(size_bytes), any_value(modified_ns), any_value(content_sha256), any_value(reader),
        bool_or(
            (m.partition_date IS NULL AND m.rows_filed > 0)
            OR m.rows_sharing_keys > 0
            OR (m.partition_date = $day AND m.rows_filed + m.rows_dated > 0)
            OR (m.rows_filed > coalesce(r.rows_read, 0) AND m.partition_date <> $day
                AND (m.partition_date < $day OR m.partition_date IN (SELECT partition_date FROM days_run)))
        ) AS must_open
    FROM remembered m LEFT JOIN read_by_day r USING (source_file, partition_date)
    GROUP BY m.source_file
"""
"""Per remembered file: its fingerprint, and whether the run of $day must open it anyway: it holds rows of the day
(or dated only by the run); a row whose key another file has too (the loader ranks the two, whatever their days);
or rows of another day that the warehouse may not hold, which the run's check of rows of other days needs to see
(other_days.py): a day that ran, or an earlier one, whose runs read fewer of them."""


def known_without_day(
    con: duckdb.DuckDBPyConnection, feed: Feed, files: list[Path], day: date, landing: Path | None, engine="duckdb"
) -> tuple[list[Path], list[str]]:
    """(the files to read, the files not to open): a file is not opened when its fingerprint is unchanged since a
    written run read it, it holds no row of ``day``, and each of its rows of other days was read by its day's run
    or belongs to a later day that has not run (MUST_OPEN_SQL)."""
    if not files or not table_exists(con, TABLE) or not table_exists(con, "ingest_file_stats"):
        return files, []
    known: dict[str, tuple[Fingerprint, bool]] = {}
    for source_file, size, modified, content, reader, must_open in con.execute(
        MUST_OPEN_SQL, {"feed": feed.name, "day": day}
    ).fetchall():
        known[source_file] = ((size, modified, content, reader), must_open)
    read, not_opened = [], []
    for path in files:
        fp, must_open = known.get(str(path), (None, True))
        if not must_open and _unchanged(path, fp, feed, landing, engine):
            not_opened.append(str(path))
        else:
            read.append(path)
    return read, not_opened


def changed_since_read(con: duckdb.DuckDBPyConnection, feed: Feed, before: dict[str, Fingerprint | None]) -> set[str]:
    """The files of ``before`` (their fingerprints now) whose bytes differ from what the last written run that read
    them saw: their rows of other days are then looked up by key, not counted (other_days.add_batch)."""
    if not before or not table_exists(con, TABLE):
        return set()
    remembered = dict(
        con.execute(
            f"SELECT source_file, any_value(content_sha256) FROM {TABLE} WHERE feed = ? GROUP BY source_file",
            [feed.name],
        ).fetchall()
    )
    return {f for f, fp in before.items() if f in remembered and (fp is None or fp[2] != remembered[f])}


def _unchanged(path: Path, remembered: Fingerprint, feed: Feed, landing: Path | None, engine: str) -> bool:
    """Whether the file's fingerprint is still ``remembered``: the cheap parts first, the content hashed only when
    they match."""
    if stat_of(path) != remembered[:2] or reader_key(feed.for_file(path), landing, engine) != remembered[3]:
        return False
    try:
        return content_hash(Path(path)) == remembered[2]
    except OSError:
        return False  # the read will say why


def add_batch(
    con: duckdb.DuckDBPyConnection, feed: Feed, parsed_parts: list[str], day: date, any_bad: bool, found: dict
) -> None:
    """Add a batch's rows per file and day to ``found`` {(source_file, day or None): [rows filed, rows dated,
    rows sharing keys]} (load_sql.filed_days_sql)."""
    # a key shared with another file of the batch: none when the batch is one file's (a day of requests in pieces)
    key = feed.duplicate_key if feed.duplicate_key and _files_in(con, parsed_parts) > 1 else ()
    query = load_sql.filed_days_sql(parsed_parts, day, any_bad, key)
    for source_file, row_day, *added in con.execute(query).fetchall():
        add_counts(found, source_file, row_day, added)


def add_counts(found: dict, source_file: str, day: date | None, added) -> None:
    """Add [rows filed, rows dated, rows sharing keys] of a file and day to ``found`` (add_batch)."""
    counts = found.setdefault((source_file, day), [0, 0, 0])
    for i, n in enumerate(added):
        counts[i] += n


def _files_in(con: duckdb.DuckDBPyConnection, parsed_parts: list[str]) -> int:
    union = " UNION ALL ".join(f"SELECT DISTINCT source_file FROM {p}" for p in parsed_parts)
    return con.execute(f"SELECT count(DISTINCT source_file) FROM ({union})").fetchall()[0][0]


def remember(
    con: duckdb.DuckDBPyConnection, feed: Feed, before: dict[str, Fingerprint | None], found: dict, landing
) -> None:
    """Keep the days of each file a written run of a day read (``found``), under the fingerprint it had before the
    run read it (``before``); a file that changed while it was read, or cannot be stat'ed, is not kept (it is read
    again next time). A file with no row is kept with no day: it holds none of any day."""
    kept = {f: fp for f, fp in before.items() if fp is not None and stat_of(Path(f)) == fp[:2]}
    if not kept:
        return
    rows = [(f, d, *n) for (f, d), n in found.items() if f in kept]
    with_rows = {r[0] for r in rows}
    rows += [(f, None, 0, 0, 0) for f in kept if f not in with_rows]  # no row: no day (a NULL day with 0 rows)
    table = pa.table(
        {
            "feed": pa.array([feed.name] * len(rows), pa.string()),
            "source_file": pa.array([r[0] for r in rows], pa.string()),
            "size_bytes": pa.array([kept[r[0]][0] for r in rows], pa.int64()),
            "modified_ns": pa.array([kept[r[0]][1] for r in rows], pa.int64()),
            "content_sha256": pa.array([kept[r[0]][2] for r in rows], pa.string()),
            "reader": pa.array([kept[r[0]][3] for r in rows], pa.string()),
            "partition_date": pa.array([r[1] for r in rows], pa.date32()),
            "rows_filed": pa.array([r[2] for r in rows], pa.int64()),
            "rows_dated": pa.array([r[3] for r in rows], pa.int64()),
            "rows_sharing_keys": pa.array([r[4] for r in rows], pa.int64()),
        }
    )
    con.register("_ingest_file_days_arrow", table)
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute(
            f"DELETE FROM {TABLE} WHERE feed = ? AND source_file IN (SELECT source_file FROM _ingest_file_days_arrow)",
            [feed.name],
        )
        con.execute(f"INSERT INTO {TABLE} BY NAME SELECT *, now() AS recorded_at FROM _ingest_file_days_arrow")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_ingest_file_days_arrow")
