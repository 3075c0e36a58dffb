"""Rows of other days in the files a run reads, that the warehouse does not hold.

A run loads the rows of its own day. A file it reads can also hold rows of the day before or after (a late
delivery, a log rotated at local midnight): those are loaded by the runs of their own days, when they read the
file. When that day's run came before the file (requests for 11-03 delivered in a file named for 11-04, after
11-03's nightly run), nothing would load them until the day is run again. The run says so: for each file, how many
of its rows of which days the warehouse does not hold, and the command that loads them (IngestReport.other_days).

Cheap first, exact second. Per batch, the valid rows of other days are counted per file and day and held against
the valid rows those days' runs read from the same file (loaded, or quarantined as repeats of a key:
ingest_file_stats and ingest_quarantine; a bad line those runs quarantined is not counted, or it would hide a
valid row added since). Only where a file holds more than that (a day that
never read it: a late delivery, or a file renamed or compressed after its day ran) are the rows' keys (the contract's
``key``) kept, and at the end each such row is owed only if its key is not loaded for its day (a redelivered copy
of loaded rows is not owed). Raw telemetry of a day moved to the lake is not looked up: its days fall back to the
count. A day is owed its rows when it was run already or comes before the run's day; a later day that has not run
yet will load them itself, and is not named.

The spark engine counts its batches in its parse tasks (for_run gives them what the days around ran) and looks the
kept keys up here, on the driver (pipelines/spark/ingest.py).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb

from pipelines.ingest import load_sql
from pipelines.ingest.feeds import Feed
from pipelines.ingest.files import date_in_name, files_for
from pipelines.ingest.report import OtherDayRows
from pipelines.warehouse.connection import table_exists

KEYS_TABLE = "_ingest_other_day_keys"
"""source_file, event_date and the key of each row of another day that its day's run did not read (temp table)."""


class OtherDays:
    """What a run's batches found of other days: {(source_file, day): rows}, the rows those days' runs read from
    each file, and whether any key was kept (KEYS_TABLE)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, date], int] = {}
        self.read_before: dict[tuple[str, date], int] | None = None
        self.ran: set[date] = set()
        self.keys_kept = False
        self.changed: set[str] = set()
        """Files whose bytes changed since the last run that read them (file_days.changed_since_read): their rows
        of other days are looked up by key even where those days' runs read the file (the same count of other
        rows would otherwise pass)."""


def _union(parsed_parts: list[str], columns: list[str]) -> str:
    cols = ", ".join(columns)
    return " UNION ALL BY NAME ".join(f"SELECT {cols} FROM {p}" for p in parsed_parts)


def _other_day_rows_sql(parsed_parts: list[str], day: date, columns: list[str]) -> str:
    """A batch's valid rows of days other than ``day`` that their own day's run would load (the batch's own rule:
    load_sql.filed_sql quarantines a row more than a day from the date in its file's name), with ``columns``
    (source_file and event_date among them)."""
    union = _union(parsed_parts, [*columns, "reason"])
    return f"""
        WITH {load_sql.filed_sql(union, day, files=True)}
        SELECT {", ".join(columns)} FROM filed WHERE reason IS NULL AND event_date <> {load_sql.day_sql(day)}"""


def _may_be_owed(other: date, day: date, found: OtherDays) -> bool:
    """Whether rows of ``other`` may be owed to it: it ran already, or comes before ``day`` (a later day not run
    yet loads them itself)."""
    return other < day or other in found.ran


def for_run(con: duckdb.DuckDBPyConnection, feed: Feed, day: date) -> OtherDays:
    """An OtherDays with what the runs of the days around ``day`` read already filled in, for batches counted
    away from the warehouse (the spark engine's tasks: pipelines/spark/tasks.py)."""
    found = OtherDays()
    _read_before(con, feed, day, found)
    return found


def _read_before(con: duckdb.DuckDBPyConnection, feed: Feed, day: date, found: OtherDays) -> None:
    """The valid rows the runs of the days around ``day`` (a row of another day is at most two days away) read
    from each file: those they loaded and those they quarantined as repeats of a key (ingest_file_stats,
    ingest_quarantine), as add_batch counts them now. Not every row read: a file's bad lines filed to that day
    would hide as many valid rows added to it since. Once per run."""
    found.read_before = {}
    if not table_exists(con, "ingest_file_stats"):
        return
    window = [feed.name, day - timedelta(days=2), day + timedelta(days=2), day]
    repeats = ""
    if table_exists(con, "ingest_quarantine"):
        repeats = """
            UNION ALL
            SELECT source_file, partition_date, count(*) FROM ingest_quarantine
            WHERE feed = ? AND partition_date BETWEEN ? AND ? AND partition_date <> ?
                AND starts_with(reason, 'duplicate ') GROUP BY ALL"""
    for source_file, other, rows_valid in con.execute(
        f"""SELECT source_file, partition_date, sum(rows) FROM (
            SELECT source_file, partition_date, sum(rows_loaded) AS rows FROM ingest_file_stats
            WHERE feed = ? AND partition_date BETWEEN ? AND ? AND partition_date <> ? GROUP BY ALL{repeats}
        ) GROUP BY ALL""",
        window + (window if repeats else []),
    ).fetchall():
        found.ran.add(other)
        found.read_before[(source_file, other)] = rows_valid


def add_batch(con: duckdb.DuckDBPyConnection, feed: Feed, parsed_parts: list[str], day: date, found: OtherDays) -> None:
    """Count a batch's rows of other days; keep the keys of those in a file their day's run never read, for days
    that may be owed them (keeping a whole neighbouring file's keys for a later day not run yet cost a 64-accelerator
    day 8 s of requests and 9 s of telemetry)."""
    rows = _other_day_rows_sql(parsed_parts, day, ["source_file", "event_date"])
    counted = con.execute(f"SELECT source_file, event_date, count(*) FROM ({rows}) GROUP BY ALL").fetchall()
    if not counted:
        return
    if found.read_before is None:
        _read_before(con, feed, day, found)
    unread = []
    for source_file, other, n in counted:
        found.counts[(source_file, other)] = found.counts.get((source_file, other), 0) + n
        not_read = (source_file, other) not in found.read_before or source_file in found.changed
        if _may_be_owed(other, day, found) and not_read:
            unread.append((source_file, other))
    if unread and feed.contract.key:
        keyed = _other_day_rows_sql(parsed_parts, day, ["source_file", "event_date", *feed.contract.key])
        pairs = " OR ".join("(source_file = ? AND event_date = ?)" for _ in unread)
        query = f"SELECT * FROM ({keyed}) WHERE {pairs}"
        into = f"INSERT INTO {KEYS_TABLE} BY NAME " if found.keys_kept else f"CREATE TEMP TABLE {KEYS_TABLE} AS "
        con.execute(into + query, [v for pair in unread for v in pair])
        found.keys_kept = True


def _not_loaded(con: duckdb.DuckDBPyConnection, feed: Feed, other: date) -> dict[str, int] | None:
    """Per file, the kept keys of ``other`` not loaded for that day; None when the day's raw rows are not in the
    raw table to look them up (never loaded, or raw telemetry moved to the lake)."""
    if (
        not table_exists(con, feed.raw_table)
        or not con.execute(f"SELECT 1 FROM {feed.raw_table} WHERE partition_date = ? LIMIT 1", [other]).fetchall()
    ):
        return None
    on = " AND ".join(f"r.{c} = k.{c}" for c in feed.contract.key)
    return dict(
        con.execute(
            f"SELECT source_file, count(*) FROM {KEYS_TABLE} k WHERE event_date = ? AND NOT EXISTS ("
            f"SELECT 1 FROM {feed.raw_table} r WHERE r.partition_date = ? AND {on}) GROUP BY ALL",
            [other, other],
        ).fetchall()
    )


def left_for_other_days(con: duckdb.DuckDBPyConnection, feed: Feed, day: date, found: OtherDays) -> list[OtherDayRows]:
    """Per file, its rows of other days that the warehouse does not hold, for days that were run or come before
    ``day`` (module docstring). Drops the kept keys."""
    try:
        owed: dict[str, OtherDayRows] = {}
        exact: dict[date, dict[str, int] | None] = {}
        for (source_file, other), n in sorted(found.counts.items()):
            if not _may_be_owed(other, day, found):
                continue
            read = found.read_before.get((source_file, other))
            missing = n - (read or 0)  # counted, where the keys cannot be looked up
            if (read is None or source_file in found.changed) and found.keys_kept:  # look its rows' keys up
                if other not in exact:
                    exact[other] = _not_loaded(con, feed, other)
                if exact[other] is not None:
                    missing = exact[other].get(source_file, 0)
            if missing > 0:
                rows = owed.setdefault(source_file, OtherDayRows(source_file))
                rows.rows_by_day[other] = missing
                if other not in found.ran:
                    rows.never_run.add(other)
        return list(owed.values())
    finally:
        con.execute(f"DROP TABLE IF EXISTS {KEYS_TABLE}")


def unread_late_files(
    con: duckdb.DuckDBPyConnection, feed: Feed, folder: Path, patterns: tuple[str, ...], day: date
) -> list[OtherDayRows]:
    """The files of ``folder`` dated two days or more before ``day`` (no run of ``day`` opens them) that no run
    ever read, although a run of their date or a day beside it has run: a delivery that came after its days' runs.
    A file whose days have not run is left to those runs. The rows are not read here (only their file's name)."""
    if not table_exists(con, "ingest_file_stats") or not folder.is_dir():
        return []
    dated = {str(p): date_in_name(p) for p in files_for(folder, patterns, None)}
    late = {f: named for f, named in dated.items() if named is not None and (day - named).days >= 2}
    if not late:
        return []
    read, ran = set(), set()
    for source_file, partition_date in con.execute(
        "SELECT DISTINCT source_file, partition_date FROM ingest_file_stats WHERE feed = ?", [feed.name]
    ).fetchall():
        read.add(source_file)
        ran.add(partition_date)
    return [
        OtherDayRows(f, {named: 0}, never_read=True)
        for f, named in late.items()
        if f not in read and any(named + timedelta(days=k) in ran for k in (-1, 0, 1))
    ]
