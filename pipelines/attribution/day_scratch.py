"""Where an attribution day's results wait while its device groups run (day.py), before they replace the day's rows.

The day's pieces and device buckets must replace the old ones at once (a run killed halfway leaves the day as it
was). Inserted group by group inside that one transaction, DuckDB holds every group's rows in the transaction's
memory until the commit: about 2 GB more at the peak of a 1,000-accelerator day, beside the kernel's own. So each
group's rows are committed to a scratch DuckDB file beside the warehouse, and one short transaction at the end
deletes the day's old rows and copies the scratch tables in. The scratch file is removed afterwards; one left by a
killed run is replaced by the next run of that day.

Pure DuckDB; imports no Dagster.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb

from pipelines.warehouse.connection import scalar

SCRATCH = "_attribution_scratch"
"""the scratch database's name on the connection: its tables are named as the warehouse's"""
TABLES = ("request_energy_pieces", "device_energy_buckets")


def scratch_path(con: duckdb.DuckDBPyConnection, day: date) -> Path:
    """``<warehouse file>.attribution-<day>.duckdb`` (on the warehouse's disk), or a temporary folder's file for a
    warehouse in memory."""
    path = scalar(con, "SELECT path FROM duckdb_databases() WHERE database_name = current_database()")
    folder, name = (Path(path).parent, Path(path).name) if path else (Path(tempfile.gettempdir()), "memory")
    return folder / f"{name}.attribution-{day.isoformat()}.duckdb"


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


@contextmanager
def day_scratch(con: duckdb.DuckDBPyConnection, day: date) -> Iterator[str]:
    """Attach an empty scratch database holding empty copies of the result tables; yield its name; detach and
    remove it (also after a failure)."""
    path = scratch_path(con, day)
    _remove(path)
    quoted = str(path).replace("'", "''")
    con.execute(f"ATTACH '{quoted}' AS {SCRATCH}")
    try:
        for table in TABLES:
            con.execute(f"CREATE TABLE {SCRATCH}.{table} AS SELECT * FROM {table} LIMIT 0")
        yield SCRATCH
    finally:
        con.execute(f"DETACH {SCRATCH}")
        _remove(path)


def replace_day(con: duckdb.DuckDBPyConnection, day: date) -> None:
    """Inside the caller's transaction: the day's rows of the result tables replaced by the scratch's."""
    for table in TABLES:
        con.execute(f"DELETE FROM {table} WHERE partition_date = ?", [day])
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {SCRATCH}.{table}")
