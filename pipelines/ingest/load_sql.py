"""The SQL that turns a batch of parsed rows into rows to load and rows to quarantine.

A parsed row carries the contract's columns, its lineage (source_file, source_line, raw_text), the reason it breaks
the contract (NULL when valid) and its event_date. Here each row gets the day it belongs to (``partition_date``),
repeats of the feed's key get a reason, and rows of other days are left for their own partition.

Strings only; staging.py runs them.
"""

from __future__ import annotations

from datetime import date

from pipelines.ingest.feeds import Feed

BATCH_TABLE = "_ingest_batch"


def day_sql(day: date | None) -> str:
    """The partition day as a SQL literal (NULL when a load covers every day)."""
    return f"DATE '{day.isoformat()}'" if day else "NULL::DATE"


def empty_parsed_sql(feed: Feed) -> str:
    """A query with a parsed part's columns and no rows."""
    cols = ", ".join(f"NULL::{c.type} AS {c.name}" for c in feed.contract.columns)
    return (f"SELECT {cols}, NULL::VARCHAR AS source_file, NULL::BIGINT AS source_line, NULL::VARCHAR AS raw_text, "
            "NULL::VARCHAR AS reason, NULL::DATE AS event_date WHERE false")


def problem_row_sql(feed: Feed, name: str) -> str:
    """A temp table ``name`` of one quarantine row for a problem of a whole file (parameters: file, line, reason)."""
    cols = ", ".join(f"NULL::{c.type} AS {c.name}" for c in feed.contract.columns)
    return (f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {cols}, ?::VARCHAR AS source_file, "
            "?::BIGINT AS source_line, ''::VARCHAR AS raw_text, ?::VARCHAR AS reason, NULL::DATE AS event_date")


def _assigned_date_sql(day: date | None) -> str:
    """A quarantined row takes the day of the nearest valid row before it in its file (else after it, else the date
    in the file name, else the day being loaded)."""
    return rf"""coalesce(
                valid_date,
                last_value(valid_date IGNORE NULLS) OVER (PARTITION BY source_file ORDER BY source_line
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
                first_value(valid_date IGNORE NULLS) OVER (PARTITION BY source_file ORDER BY source_line
                    ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING),
                TRY_CAST(regexp_extract(regexp_extract(source_file, '[^/]*$'), '\d{{4}}-\d{{2}}-\d{{2}}') AS DATE),
                {day_sql(day)})"""


def _ranked_sql(key: tuple[str, ...]) -> str:
    """CTE ``ranked``: a key seen twice in the batch ranks by (file, line), the first loads; only keys that occur
    more than once are ranked."""
    if not key:
        return ", ranked AS (SELECT *, 1 AS key_rank, NULL AS first_seen FROM assigned)"
    part = ", ".join(key)
    return f"""
        , repeated AS (SELECT {part} FROM assigned WHERE reason IS NULL GROUP BY ALL HAVING count(*) > 1),
        ranked AS (
            SELECT *, 1 AS key_rank, NULL AS first_seen FROM assigned ANTI JOIN repeated USING ({part})
            UNION ALL BY NAME
            SELECT *, CASE WHEN reason IS NULL THEN row_number() OVER (
                PARTITION BY reason IS NULL, {part} ORDER BY source_file, source_line) END AS key_rank,
                first_value(source_file || ':' || source_line) OVER (
                PARTITION BY reason IS NULL, {part} ORDER BY source_file, source_line) AS first_seen
            FROM assigned SEMI JOIN repeated USING ({part})
        )"""


def batch_sql(feed: Feed, parsed_parts: list[str], day: date | None, any_bad: bool) -> str:
    """Create BATCH_TABLE: the day's rows of the parsed parts, each with its partition_date and its reason if it
    is to be quarantined (its own, or a repeat of a key earlier in the batch). ``any_bad``: some row has a reason
    (else no row needs a day assigned from its neighbours)."""
    union = " UNION ALL BY NAME ".join(f"SELECT * FROM {p}" for p in parsed_parts) or empty_parsed_sql(feed)
    assigned_date = _assigned_date_sql(day) if any_bad else "valid_date"
    key = feed.duplicate_key
    return f"""
        CREATE OR REPLACE TEMP TABLE {BATCH_TABLE} AS
        WITH parsed AS ({union}),
        assigned AS (
            SELECT *, {assigned_date} AS partition_date
            FROM (SELECT *, CASE WHEN reason IS NULL THEN event_date END AS valid_date FROM parsed)
        ){_ranked_sql(key)}
        SELECT * EXCLUDE (key_rank, first_seen, reason, valid_date),
            CASE WHEN reason IS NOT NULL THEN reason
                 WHEN key_rank > 1 THEN 'duplicate {"/".join(key) or "row"} (first loaded from ' || first_seen || ')'
            END AS reason
        FROM ranked
        WHERE {"partition_date = " + day_sql(day) if day else "true"}
    """


def already_loaded_sql(feed: Feed, day: date | None, staged: bool) -> str:
    """Quarantine batch rows whose key is already loaded (for another day, or staged by an earlier batch of this
    run): the first keeps it. Only for a feed with a duplicate key."""
    key = feed.duplicate_key
    cols = ", ".join(key)
    on = " AND ".join(f"b.{k} = r.{k}" for k in key)
    other_days = f"SELECT {cols}, partition_date, source_file, source_line FROM {feed.raw_table} " + (
        f"WHERE partition_date IS DISTINCT FROM {day_sql(day)}" if day else "WHERE false")
    earlier = (f" UNION ALL SELECT {cols}, partition_date, source_file, source_line FROM {feed.stage_table} "
               "WHERE reason IS NULL") if staged else ""
    return f"""
        UPDATE {BATCH_TABLE} b SET reason = 'duplicate {"/".join(key)} ('
            || CASE WHEN r.partition_date IS NOT DISTINCT FROM b.partition_date THEN 'first loaded from '
                    ELSE 'already loaded for ' || r.partition_date || ' from ' END
            || r.source_file || ':' || r.source_line || ')'
        FROM ({other_days}{earlier}) r
        WHERE b.reason IS NULL AND {on}
    """
