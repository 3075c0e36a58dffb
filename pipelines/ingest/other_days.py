"""Rows of other days in the files a run reads, that the warehouse does not hold.

A run loads the rows of its own day. A file it reads can also hold rows of the day before or after (a late
delivery, a log rotated at local midnight): those are loaded by the runs of their own days, when they read the
file. When that day's run came before the file (requests for 11-03 delivered in a file named for 11-04, after
11-03's nightly run), nothing would load them until the day is run again. The run says so: for each file, how many
of its rows of which days the warehouse does not hold, and the command that loads them (IngestReport.warnings).

A day is owed its rows when it was run already (ingest_file_stats has a row for it) or comes before the run's day;
a later day that has not run yet will load them itself, and is not named.
"""

from __future__ import annotations

from datetime import date

import duckdb

from pipelines.ingest import load_sql
from pipelines.ingest.feeds import Feed
from pipelines.ingest.formats.common import far_from_file_date_sql
from pipelines.ingest.report import OtherDayRows
from pipelines.warehouse.connection import table_exists


def counts_sql(parsed_parts: list[str], day: date) -> str:
    """(source_file, event_date, rows) of a batch's valid rows of days other than ``day`` that their own day's run
    would load (within a day of the date in the file's name; FILES_TABLE names the run's files)."""
    union = " UNION ALL BY NAME ".join(f"SELECT source_file, event_date, reason FROM {p}" for p in parsed_parts)
    return f"""
        SELECT source_file, event_date, n FROM (
            SELECT source_file, event_date, count(*) AS n FROM ({union})
            WHERE reason IS NULL AND event_date <> {load_sql.day_sql(day)} GROUP BY ALL
        ) LEFT JOIN {load_sql.FILES_TABLE} USING (source_file)
        WHERE NOT coalesce({far_from_file_date_sql("name_date", "event_date")}, false)"""


def add_counts(con: duckdb.DuckDBPyConnection, parsed_parts: list[str], day: date, into: dict) -> None:
    """Add a batch's rows of other days to ``into`` {(source_file, day): rows}."""
    for source_file, other, n in con.execute(counts_sql(parsed_parts, day)).fetchall():
        into[(source_file, other)] = into.get((source_file, other), 0) + n


def left_for_other_days(con: duckdb.DuckDBPyConnection, feed: Feed, day: date, counts: dict) -> list[OtherDayRows]:
    """Per file, its rows of other days (``counts``: add_counts) that the warehouse does not hold: more than those
    days' runs read from the file (ingest_file_stats), for days that were run or come before ``day``."""
    if not counts:
        return []
    read: dict = {}
    ran: set = set()
    if table_exists(con, "ingest_file_stats"):
        days = sorted({d for _, d in counts})
        for source_file, other, rows_read in con.execute(
            "SELECT source_file, partition_date, rows_read FROM ingest_file_stats "
            "WHERE feed = ? AND list_contains(?, partition_date)",
            [feed.name, days],
        ).fetchall():
            ran.add(other)
            read[(source_file, other)] = read.get((source_file, other), 0) + rows_read
    by_file: dict[str, OtherDayRows] = {}
    for (source_file, other), n in sorted(counts.items()):
        missing = n - read.get((source_file, other), 0)
        if missing > 0 and (other in ran or other < day):
            found = by_file.setdefault(source_file, OtherDayRows(source_file))
            found.days.append(other)
            found.rows += missing
            found.never_run += [other] if other not in ran else []
    return list(by_file.values())
