"""The SQL that turns a batch of parsed rows into rows to load and rows to quarantine.

A parsed row carries the contract's columns, its lineage (source_file, source_line, raw_text), the reason it breaks
the contract (NULL when valid) and its event_date. Here each row gets the day it belongs to (``partition_date``),
repeats of the feed's key get a reason, and rows of other days are left for their own partition.

Strings only; staging.py runs them.
"""

from __future__ import annotations

from datetime import date

from pipelines.ingest.feeds import Feed
from pipelines.ingest.formats.common import far_from_file_date_sql

BATCH_TABLE = "_ingest_batch"
# the files of a run: source_file, name_date (the date in its name), arrival (its rank by modification time, name),
# carried_date (the date of its last valid row in the run's earlier batches: carried_date_sql)
FILES_TABLE = "_ingest_files"
# the reason of a row a mapping's skip rule says is not data (pipelines/ingest/formats/mapping.py, skip_when): kept in
# ingest_quarantine with its reason, counted as skipped rather than quarantined
SKIPPED_REASON = "skipped by the mapping: "


def day_sql(day: date | None) -> str:
    """The partition day as a SQL literal (NULL when a load covers every day)."""
    return f"DATE '{day.isoformat()}'" if day else "NULL::DATE"


def empty_parsed_sql(feed: Feed) -> str:
    """A query with a parsed part's columns and no rows."""
    cols = ", ".join(f"NULL::{c.type} AS {c.name}" for c in feed.contract.columns)
    return (
        f"SELECT {cols}, NULL::VARCHAR AS source_file, NULL::BIGINT AS source_line, NULL::VARCHAR AS raw_text, "
        "NULL::VARCHAR AS reason, NULL::DATE AS event_date WHERE false"
    )


def problem_rows_sql(feed: Feed, name: str) -> str:
    """An empty temp table ``name`` for quarantine rows that are problems of lines or of a whole file."""
    return f"CREATE OR REPLACE TEMP TABLE {name} AS {empty_parsed_sql(feed)}"


def filed_sql(union: str, day: date | None, files: bool) -> str:
    """CTE ``filed``: parsed rows with their file's name_date and arrival (FILES_TABLE), and a reason for a valid row
    dated more than a day from the date in its file's name. Such a row would be loaded by no run that opens the
    file (a run opens a file only when the date in its name is at most a day away), so it is quarantined."""
    source = (
        f"SELECT * FROM ({union}) LEFT JOIN {FILES_TABLE} USING (source_file)"
        if files
        else f"SELECT *, NULL::DATE AS name_date, 0 AS arrival, NULL::DATE AS carried_date FROM ({union})"
    )
    if day is None:  # a load of every day loads every row on its own day
        return f"filed AS ({source})"
    return f"""filed AS (
            SELECT * REPLACE (CASE WHEN reason IS NULL AND {far_from_file_date_sql("name_date", "event_date")}
                THEN 'row dated ' || event_date || ', more than a day from the file''s date ' || name_date
                ELSE reason END AS reason)
            FROM ({source})
        )"""


def any_bad_sql(parsed_parts: list[str], day: date | None, files: bool) -> str:
    """A query with a row when some parsed row is to be quarantined (else none needs a day from its neighbours)."""
    union = " UNION ALL BY NAME ".join(f"SELECT * FROM {p}" for p in parsed_parts)
    return f"WITH {filed_sql(union, day, files)} SELECT 1 FROM filed WHERE reason IS NOT NULL LIMIT 1"


def _assigned_sql(day: date | None, any_bad: bool) -> str:
    """CTE ``assigned``: each row's partition_date. A quarantined row takes the day of the nearest valid row before
    it in its file (in this batch, else in the run's earlier batches: carried_date), else after it, else the date in
    the file name, else the day being loaded (``dated_by_run``). Looking back past the batch keeps a line's day the
    same however a run cuts its batches: a bad line first in a batch, between two days, was otherwise filed to the
    day after by one run and the day before by the other, and quarantined by neither."""
    own_date = (
        r"""coalesce(
                valid_date,
                last_value(valid_date IGNORE NULLS) OVER (PARTITION BY source_file ORDER BY source_line
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
                carried_date,
                first_value(valid_date IGNORE NULLS) OVER (PARTITION BY source_file ORDER BY source_line
                    ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING),
                name_date)"""
        if any_bad
        else "valid_date"
    )
    return f"""assigned AS (
            SELECT * EXCLUDE (own_date), coalesce(own_date, {day_sql(day)}) AS partition_date,
                own_date IS NULL AS dated_by_run
            FROM (SELECT *, {own_date} AS own_date
                  FROM (SELECT *, CASE WHEN reason IS NULL THEN event_date END AS valid_date FROM filed))
        )"""


def filed_days_sql(parsed_parts: list[str], day: date, any_bad: bool, key: tuple[str, ...]) -> str:
    """Per file (source_file) and day (``day``; NULL for rows dated only by the run): ``rows_filed``, its rows the
    batch's rule files to the day (_assigned_sql); ``rows_dated``, its rows quarantined on another day but dated on
    this one; ``rows_sharing_keys``, its valid rows whose ``key`` a valid row of another file of the batch has too
    (_ranked_sql ranks them against each other, whatever their days). For file_days.py."""
    needed = ", ".join(["source_file", "source_line", "event_date", "reason", *key])
    # only the columns needed (``assigned`` is read more than once, and DuckDB may materialize it)
    union = " UNION ALL ".join(f"SELECT {needed} FROM {p}" for p in parsed_parts)
    cols = ", ".join(key)
    shared, sharing, joined = "", "0", ""  # a feed without a duplicate key ranks nothing
    if key:
        shared = f""", shared AS (
            SELECT {cols}, true AS shared FROM assigned WHERE reason IS NULL
            GROUP BY ALL HAVING count(DISTINCT source_file) > 1
        )"""
        sharing, joined = "CASE WHEN shared AND reason IS NULL THEN 1 ELSE 0 END", f"LEFT JOIN shared USING ({cols})"
    dated = (  # rows quarantined on another day than their own date (only a batch with a bad row has any)
        """UNION ALL
            SELECT source_file, event_date, 0, 0 FROM assigned
            WHERE reason IS NOT NULL AND event_date IS NOT NULL AND event_date IS DISTINCT FROM partition_date"""
        if any_bad
        else ""
    )
    return f"""
        WITH {filed_sql(union, day, files=True)},
        {_assigned_sql(day, any_bad)}{shared},
        days AS (
            SELECT source_file, CASE WHEN dated_by_run THEN NULL ELSE partition_date END AS day, 1 AS filed,
                {sharing} AS sharing
            FROM assigned {joined}
            {dated}
        )
        SELECT source_file, day, sum(filed) AS rows_filed, count(*) - sum(filed) AS rows_dated,
            sum(sharing) AS rows_sharing_keys
        FROM days GROUP BY ALL"""


def _ranked_sql(key: tuple[str, ...]) -> str:
    """CTE ``ranked``: a key seen twice in the batch ranks by arrival (file modification time, then name), then
    line; the first loads. Only keys that occur more than once are ranked."""
    if not key:
        return ", ranked AS (SELECT *, 1 AS key_rank, NULL AS first_seen FROM assigned)"
    part = ", ".join(key)
    order = "ORDER BY arrival, source_file, source_line"
    return f"""
        , repeated AS (SELECT {part} FROM assigned WHERE reason IS NULL GROUP BY ALL HAVING count(*) > 1),
        ranked AS (
            SELECT *, 1 AS key_rank, NULL AS first_seen FROM assigned ANTI JOIN repeated USING ({part})
            UNION ALL BY NAME
            SELECT *, CASE WHEN reason IS NULL THEN row_number() OVER (
                PARTITION BY reason IS NULL, {part} {order}) END AS key_rank,
                first_value(source_file || ':' || source_line) OVER (
                PARTITION BY reason IS NULL, {part} {order}) AS first_seen
            FROM assigned SEMI JOIN repeated USING ({part})
        )"""


def _of_this_run_sql(feed: Feed, day: date | None, any_bad: bool) -> str:
    """The rows this run stages: those of its day (every row when day is None). A row dated only by the run (an
    undated file with no valid row) that an earlier run quarantined for another day stays there: once."""
    if day is None:
        return "true"
    where = f"partition_date = {day_sql(day)}"
    if any_bad:
        where += f""" AND NOT (dated_by_run AND EXISTS (
            SELECT 1 FROM ingest_quarantine q WHERE q.feed = '{feed.name}' AND q.partition_date <> {day_sql(day)}
                AND q.source_file = ranked.source_file AND q.source_line = ranked.source_line))"""
    return where


def batch_sql(feed: Feed, parsed_parts: list[str], day: date | None, any_bad: bool, files: bool) -> str:
    """Create BATCH_TABLE from batch_query_sql."""
    return f"CREATE OR REPLACE TEMP TABLE {BATCH_TABLE} AS {batch_query_sql(feed, parsed_parts, day, any_bad, files)}"


def batch_query_sql(
    feed: Feed, parsed_parts: list[str], day: date | None, any_bad: bool, files: bool, detached: bool = False
) -> str:
    """The batch: the day's rows of the parsed parts, each with its partition_date and its reason if it
    is to be quarantined (its own, far from its file's date, or a repeat of a key earlier in the batch).
    ``any_bad``: some row is to be quarantined (any_bad_sql); ``files``: FILES_TABLE describes the parts' files.
    ``detached``: the rows carry no raw_text but where it is (``_part``, ``_row``: parts_text_sql), so that the
    ranking of keys does not move every line of the batch; the quarantined rows' lines are joined back later."""
    if detached:
        union = " UNION ALL BY NAME ".join(
            f"SELECT * EXCLUDE (raw_text), {i} AS _part, rowid AS _row FROM {p}" for i, p in enumerate(parsed_parts)
        )
    else:
        union = " UNION ALL BY NAME ".join(f"SELECT * FROM {p}" for p in parsed_parts)
    union = union or empty_parsed_sql(feed)
    key = feed.duplicate_key
    return f"""
        WITH {filed_sql(union, day, files)},
        {_assigned_sql(day, any_bad)}{_ranked_sql(key)}
        SELECT * EXCLUDE (key_rank, first_seen, reason, valid_date, name_date, arrival, carried_date, dated_by_run),
            CASE WHEN reason IS NOT NULL THEN reason
                 WHEN key_rank > 1 THEN 'duplicate {"/".join(key) or "row"} (first loaded from ' || first_seen || ')'
            END AS reason
        FROM ranked
        WHERE {_of_this_run_sql(feed, day, any_bad)}
    """


def carried_date_sql(parsed_parts: list[str]) -> str:
    """Set FILES_TABLE's carried_date of the batch's last file (the one a batch cut can split) to the date of its
    last valid row in the batch, when it has one."""
    union = " UNION ALL ".join(f"SELECT source_file, source_line, event_date, reason FROM {p}" for p in parsed_parts)
    return f"""
        UPDATE {FILES_TABLE} f SET carried_date = b.last_date
        FROM (SELECT source_file, arg_max(event_date, source_line) AS last_date FROM ({union})
              WHERE reason IS NULL AND event_date IS NOT NULL
                AND source_file = (SELECT source_file FROM {parsed_parts[-1]} WHERE source_file IS NOT NULL LIMIT 1)
              GROUP BY source_file) b
        WHERE f.source_file = b.source_file"""


def insert_loaded_sql(feed: Feed, rows: str) -> str:
    """Insert the rows of ``rows`` that load (reason NULL) into the raw table: a relation with the contract's
    columns, source_file, source_line, partition_date and reason."""
    cols = ", ".join(feed.contract.names)
    return (
        f"INSERT INTO {feed.raw_table} ({cols}, source_file, source_line, partition_date, loaded_at) "
        f"SELECT {cols}, source_file, source_line, partition_date, now() FROM {rows} WHERE reason IS NULL"
    )


def staged_keys_sql(feed: Feed, batch: str) -> str:
    """The batch's loaded keys and where they are: what the stage of a run that writes as it goes keeps of a batch
    (loaded_keys_sql reads it)."""
    return (
        f"SELECT {', '.join(feed.duplicate_key)}, partition_date, source_file, source_line, reason FROM {batch} "
        "WHERE reason IS NULL"
    )


def parts_text_sql(parsed_parts: list[str]) -> str:
    """Each parsed row's raw_text with where it is (``_part``, ``_row``) in a detached batch (batch_query_sql)."""
    return " UNION ALL ".join(
        f"SELECT {i} AS _part, rowid AS _row, raw_text FROM {p}" for i, p in enumerate(parsed_parts)
    )


def already_loaded_sql(feed: Feed, day: date | None, staged: bool, window_days: int) -> str:
    """Quarantine batch rows whose key is already loaded (for another day at most ``window_days`` away, or staged by
    an earlier batch of this run): the first keeps it. Only for a feed with a duplicate key. The window keeps the
    check to a few days of rows (the raw table is appended day by day, so DuckDB skips the other row groups by
    their partition_date ranges) however long the history."""
    key = feed.duplicate_key
    on = " AND ".join(f"b.{k} = r.{k}" for k in key)
    return f"""
        UPDATE {BATCH_TABLE} b SET reason = 'duplicate {"/".join(key)} ('
            || CASE WHEN r.partition_date IS NOT DISTINCT FROM b.partition_date THEN 'first loaded from '
                    ELSE 'already loaded for ' || r.partition_date || ' from ' END
            || r.source_file || ':' || r.source_line || ')'
        FROM ({loaded_keys_sql(feed, day, staged, window_days)}) r
        WHERE b.reason IS NULL AND {on}
    """


def loaded_keys_sql(feed: Feed, day: date | None, staged: bool, window_days: int) -> str:
    """The keys already loaded, with where: for another day at most ``window_days`` away, or staged by an earlier
    batch of this run (already_loaded_sql)."""
    cols = ", ".join(feed.duplicate_key)
    other_days = f"SELECT {cols}, partition_date, source_file, source_line FROM {feed.raw_table} " + (
        f"WHERE partition_date <> {day_sql(day)} AND partition_date BETWEEN {day_sql(day)} - {int(window_days)} "
        f"AND {day_sql(day)} + {int(window_days)}"
        if day
        else "WHERE false"
    )
    earlier = (
        (
            f" UNION ALL SELECT {cols}, partition_date, source_file, source_line FROM {feed.stage_table} "
            "WHERE reason IS NULL"
        )
        if staged
        else ""
    )
    return other_days + earlier
