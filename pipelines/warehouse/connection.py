"""Where the warehouse lives and how its raw tables are laid out (from the contracts in schemas/)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.settings import current
from pipelines.warehouse.contracts import FEEDS, FLEET_TABLES
from pipelines.warehouse.locks import open_with_retry
from pipelines.warehouse.tables import create_tables, table


def infercost_home() -> Path:
    return current().home


def warehouse_path() -> Path:
    """The DuckDB file Dagster and dbt share: $INFERCOST_WAREHOUSE, else $INFERCOST_HOME/warehouse.duckdb."""
    return current().warehouse


def dbt_target_dir() -> Path:
    """Where each run's dbt invocation writes its artifacts and log (one folder per invocation): under
    INFERCOST_HOME, not the source tree. The dbt manifest `make manifest` prepares stays in dbt/target."""
    return current().home / "dbt" / "target"


def dbt_logs_dir() -> Path:
    """dbt's log folder for the commands infercost runs dbt in directly (`infercost docs`)."""
    return current().home / "dbt" / "logs"


def landing_dir() -> Path:
    return current().landing


def configure(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Session settings every infercost connection uses: UTC dates, and a memory cap."""
    con.execute("SET TimeZone = 'UTC'").fetchall()
    con.execute(f"SET memory_limit = '{current().duckdb_memory}'").fetchall()
    return con


def connect(
    path: Path | str | None = None, read_only: bool = False, wait_s: float | None = None
) -> duckdb.DuckDBPyConnection:
    """A configured connection to ``path`` (default the live warehouse). A writer waits for another process's lock
    with backoff for at most ``wait_s`` (default INFERCOST_LOCK_WAIT_S), then raises ``WarehouseLocked``; a reader
    does not wait (readers open the published copy, which no process locks)."""
    path = Path(path) if path else warehouse_path()
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    return configure(open_with_retry(path, read_only=read_only, wait_s=0 if read_only else wait_s))


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw tables from the contracts; a warehouse made under an older contract gains its new columns
    (empty for the rows already loaded)."""
    for name in FEEDS + FLEET_TABLES:
        contract = table(f"raw_{name}")
        create_tables(con, f"raw_{name}")
        have = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main'",
                [f"raw_{name}"],
            ).fetchall()
        }
        for c in contract.columns:
            if c.name not in have:
                con.execute(f"ALTER TABLE raw_{name} ADD COLUMN {c.name} {c.type}")
    create_tables(con, "ingest_quarantine", "ingest_file_stats", "ingest_file_days")


def sql_str(text) -> str:
    """``text`` (a str or a path) as a single-quoted SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params=None):
    """The first value of a query's single row (fetchall, so no result is left open on the connection)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ?", [name]).fetchall())
