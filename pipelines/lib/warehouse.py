"""Where the warehouse lives and how its raw tables are laid out (from the contracts in schemas/)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from pipelines.lib.contracts import FEEDS, FLEET_TABLES, load_contract

REPO_ROOT = Path(__file__).resolve().parents[2]

# lineage columns every raw table carries beside its contract's columns
LINEAGE_DDL = "source_file VARCHAR, source_line BIGINT, partition_date DATE, loaded_at TIMESTAMPTZ"

QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS ingest_quarantine (
    feed VARCHAR, partition_date DATE, source_file VARCHAR, source_line BIGINT, raw_text VARCHAR,
    reason VARCHAR, loaded_at TIMESTAMPTZ
)"""
FILE_STATS_DDL = """
CREATE TABLE IF NOT EXISTS ingest_file_stats (
    feed VARCHAR, partition_date DATE, source_file VARCHAR, rows_read BIGINT, rows_loaded BIGINT,
    rows_quarantined BIGINT, loaded_at TIMESTAMPTZ
)"""


def infercost_home() -> Path:
    return Path(os.environ.get("INFERCOST_HOME", Path.cwd() / ".infercost")).resolve()


def warehouse_path() -> Path:
    """The DuckDB file Dagster and dbt share: $INFERCOST_WAREHOUSE, else $INFERCOST_HOME/warehouse.duckdb."""
    explicit = os.environ.get("INFERCOST_WAREHOUSE")
    return Path(explicit).resolve() if explicit else infercost_home() / "warehouse.duckdb"


def landing_dir() -> Path:
    return Path(os.environ.get("INFERCOST_LANDING", REPO_ROOT / "sample_logs")).resolve()


def duckdb_memory_limit() -> str:
    """DuckDB's memory cap for a run ($INFERCOST_DUCKDB_MEMORY, default 4GB): past it, DuckDB spills to disk
    rather than growing (its own default is 80 % of the machine)."""
    return os.environ.get("INFERCOST_DUCKDB_MEMORY", "4GB")


def configure(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Session settings every infercost connection uses: UTC dates, and a memory cap."""
    con.execute("SET TimeZone = 'UTC'").fetchall()
    con.execute(f"SET memory_limit = '{duckdb_memory_limit()}'").fetchall()
    return con


def connect(path: Path | str | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    path = Path(path) if path else warehouse_path()
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    return configure(duckdb.connect(str(path), read_only=read_only))


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw tables from the contracts; a warehouse made under an older contract gains its new columns
    (empty for the rows already loaded)."""
    for name in FEEDS + FLEET_TABLES:
        contract = load_contract(name)
        con.execute(f"CREATE TABLE IF NOT EXISTS raw_{name} ({contract.ddl_columns()}, {LINEAGE_DDL})")
        have = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main'",
            [f"raw_{name}"]).fetchall()}
        for c in contract.columns:
            if c.name not in have:
                con.execute(f"ALTER TABLE raw_{name} ADD COLUMN {c.name} {c.type}")
    con.execute(QUARANTINE_DDL)
    con.execute(FILE_STATS_DDL)


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params=None):
    """The first value of a query's single row (fetchall, so no result is left open on the connection)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        return float(value) if value not in (None, "") else default
    except ValueError as exc:
        raise ValueError(f"{name}={value!r} is not a number") from exc


def attribution_settings() -> dict:
    """Kernel settings shared by Dagster and the CLI; dbt receives prompt_token_weight as a var too."""
    return {
        "max_gap_s": env_float("INFERCOST_MAX_GAP_S", 5.0),
        "prompt_token_weight": env_float("INFERCOST_PROMPT_TOKEN_WEIGHT", 0.1),
    }


def dbt_vars() -> dict:
    return {
        "prompt_token_weight": attribution_settings()["prompt_token_weight"],
        "idle_sharing_policy": os.environ.get("INFERCOST_IDLE_SHARING_POLICY", "proportional"),
    }


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ?", [name]).fetchall())
