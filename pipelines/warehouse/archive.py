"""Raw telemetry of past days moves from the live warehouse to the lake (pipelines/warehouse/lake.py), so the
DuckDB file holds about two days of it however long the history; a retention setting drops old lake days.

- ``archive_past_days``: every day of the table older than the newest day but one is written to the lake (a day
  whole, atomically), checked (the lake's row count equals the warehouse's) and only then deleted from the table.
  The newest two days stay: attributing a day reads the telemetry of the days beside it.
- ``restore_days``: a day the warehouse no longer holds is loaded back from the lake (re-running a past day reads
  its neighbours' telemetry); the next archive writes it back.
- ``apply_retention``: lake days older than ``keep_days`` before a run's last day are deleted, each logged with its
  row count. Nothing is deleted unless INFERCOST_RAW_TELEMETRY_RETENTION_DAYS asks for it.

Imports no Dagster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, timedelta
from pathlib import Path

import duckdb

from pipelines.warehouse import lake
from pipelines.warehouse.connection import scalar, table_exists

ARCHIVED_TABLES = ("raw_telemetry",)
# the newest day and the one before it stay in the warehouse
HOT_DAYS = 2


def warehouse_days(con: duckdb.DuckDBPyConnection, table: str) -> list[date]:
    """The days a warehouse table holds rows for."""
    if not table_exists(con, table):
        return []
    rows = con.execute(f"SELECT DISTINCT partition_date FROM {table} ORDER BY 1").fetchall()
    return [r[0] for r in rows if r[0] is not None]


def holds_rows(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """The table is the warehouse's own (a base table). On the spark engine it is a view over the lake, whose days
    are already there: nothing moves to the lake or back."""
    kind = scalar(con, "SELECT table_type FROM information_schema.tables WHERE table_name = ?", [table])
    return kind == "BASE TABLE"


def _lake_rows(table: str, day: date, root: Path | None) -> int:
    expr = lake.read_sql(table, root, days=[day])
    return scalar(duckdb.connect(), f"SELECT count(*) FROM {expr}")


def archive_past_days(
    con: duckdb.DuckDBPyConnection, table: str, root: Path | None = None, log: Callable[[str], None] = print
) -> list[date]:
    """Move the table's days older than its newest day but one into the lake; returns the days moved. A view over
    the lake (the spark engine) moves nothing."""
    held = warehouse_days(con, table) if holds_rows(con, table) else []
    if not held:
        return []
    newest = max(held + lake.list_days(table, root))
    moved = []
    for day in held:
        if day > newest - timedelta(days=HOT_DAYS):
            continue
        query = f"SELECT * EXCLUDE (partition_date) FROM {table} WHERE partition_date = ?"
        path = lake.write_day_from_query(con, table, day, query, [day], root)
        in_warehouse = scalar(con, f"SELECT count(*) FROM {table} WHERE partition_date = ?", [day])
        in_lake = _lake_rows(table, day, root)
        if in_lake != in_warehouse:
            raise RuntimeError(
                f"archiving {table} {day}: the lake holds {in_lake:,} rows, the warehouse {in_warehouse:,}; "
                "the warehouse rows were kept"
            )
        con.execute(f"DELETE FROM {table} WHERE partition_date = ?", [day]).fetchall()
        log(f"{table} {day}: {in_lake:,} rows moved to {path}")
        moved.append(day)
    return moved


def restore_days(
    con: duckdb.DuckDBPyConnection,
    table: str,
    days: Iterable[date],
    root: Path | None = None,
    log: Callable[[str], None] = print,
) -> list[date]:
    """Load back from the lake the given days the warehouse table does not hold; returns the days loaded (none for
    a view over the lake, which reads every lake day)."""
    if not holds_rows(con, table):
        return []
    held = set(warehouse_days(con, table))
    wanted = sorted({d for d in days if d not in held and lake.has_day(table, d, root)})
    for day in wanted:
        con.execute(
            f"INSERT INTO {table} BY NAME SELECT * EXCLUDE ({lake.PARTITION_KEY}), "
            f"{lake.PARTITION_KEY} AS partition_date FROM {lake.read_sql(table, root, days=[day])}"
        ).fetchall()
        log(f"{table} {day}: loaded back from the lake ({lake.partition_dir(table, day, root)})")
    return wanted


def apply_retention(
    table: str,
    keep_days: int | None,
    last_day: date,
    root: Path | None = None,
    log: Callable[[str], None] = print,
) -> list[date]:
    """Delete the table's lake days older than ``keep_days`` before ``last_day`` (none when keep_days is None),
    logging each day and its rows; returns the days deleted."""
    if keep_days is None:
        return []
    cutoff = last_day - timedelta(days=keep_days)
    dropped = []
    for day in lake.list_days(table, root):
        if day >= cutoff:
            break
        rows = _lake_rows(table, day, root)
        lake.drop_day(table, day, root)
        log(
            f"{table} {day}: {rows:,} rows deleted from the lake (INFERCOST_RAW_TELEMETRY_RETENTION_DAYS="
            f"{keep_days}: raw telemetry before {cutoff} is not kept; the marts keep every day)"
        )
        dropped.append(day)
    return dropped


def with_lake(con: duckdb.DuckDBPyConnection, table: str, root: Path | None = None) -> str:
    """A table expression over the warehouse table and the lake days it does not hold (the table itself when the
    lake holds none): for readers of past days' raw telemetry."""
    held = set(warehouse_days(con, table))
    days = [d for d in lake.list_days(table, root) if d not in held]
    if not days:
        return table
    key = lake.PARTITION_KEY
    return (
        f"(SELECT * FROM {table} UNION ALL BY NAME "
        f"SELECT * EXCLUDE ({key}), {key} AS partition_date FROM {lake.read_sql(table, root, days)})"
    )
