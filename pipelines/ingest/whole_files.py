"""A whole file's parsed rows written straight into the run's transaction, when every row loads on the run's day.

A file read typed (formats/telemetry_typed.py: most nvidia-smi files) is handed over as Arrow to the run's writer
(staging.Stage ``writer``), which validates and inserts it in one statement: the rows are not kept in a parsed part,
read again to be filed and counted, then copied once more into the writer (a fleet-day's 86M samples took 0.87 s a
file that way). Only rows that are valid and of the run's day are inserted; when that is not every row of the
file, the file's rows are deleted again in the same transaction and the file goes the usual way (parsed part,
staging.stage_batch), which quarantines, files and counts each row by its rules. So the rows, counts and days kept
are those stage_batch gives a file whose every row loads on the day: rows read = rows loaded, one day filed.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from pipelines.ingest.feeds import Feed
from pipelines.ingest.file_days import add_counts as add_file_day_counts
from pipelines.ingest.load_sql import day_sql, insert_loaded_sql
from pipelines.ingest.staging import add_counts


def may_write(stage, day: date | None, name_date: date | None) -> bool:
    """Whether a file's rows may go straight into the run's transaction: the run writes as it goes (a writer: not
    a dry run, a feed without a duplicate key) and loads one day, and the date rule cannot quarantine a row of
    that day (the date in the file's name, if any, is at most a day away: load_sql.filed_sql)."""
    return stage.writer is not None and day is not None and (name_date is None or abs((name_date - day).days) <= 1)


def write_rows(feed: Feed, day: date, stage, rows: pa.Table, query, source_file: str, energy_source: str) -> bool:
    """Insert a whole file's rows (``query(name)``: its parsed rows, common.finish_query's columns, over a table
    ``name``, here ``rows``) into the run's transaction when all are valid and of ``day``, and count them as
    stage_batch would (read = loaded, one day filed, ``energy_source`` their column); True. Else nothing of the
    file stays written, nothing is counted: False."""
    _ingest_file_rows = rows  # noqa: F841 (read by name in the SQL below: DuckDB's replacement scan)
    day_literal = day_sql(day)
    of_day = (
        f"(SELECT *, event_date AS partition_date FROM ({query('_ingest_file_rows')}) WHERE event_date = {day_literal})"
    )
    inserted = stage.writer.execute(insert_loaded_sql(feed, of_day)).fetchall()[0][0]
    if inserted != rows.num_rows:
        if inserted:  # some row is bad or of another day: the usual way files and counts it
            stage.writer.execute(
                f"DELETE FROM {feed.raw_table} WHERE partition_date = {day_literal} AND source_file = ?",
                [source_file],
            )
        return False
    add_counts(stage.counts, source_file, (inserted, inserted, 0, 0), [energy_source])
    add_file_day_counts(stage.file_days, source_file, day, (inserted, 0, 0))
    return True
