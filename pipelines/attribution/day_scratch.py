"""Where an attribution day's results wait while its device groups run (day.py), before they replace the day's rows.

The day's pieces and device buckets must replace the old ones at once (a run killed halfway leaves the day as it
was). Inserted group by group inside that one transaction, DuckDB holds every group's rows in the transaction's
memory until the commit: about 2 GB more at the peak of a 1,000-accelerator day, beside the kernel's own. So each
group's rows are committed to a scratch DuckDB file beside the warehouse, and one short transaction at the end
deletes the day's old rows and copies the scratch tables in. The scratch file is removed afterwards; one left by a
killed run is removed by the next attribution of any day.

Pure DuckDB; imports no Dagster.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb

from pipelines.warehouse import temp_files
from pipelines.warehouse.connection import scalar, sql_str

SCRATCH = "_attribution_scratch"
"""the scratch database's name on the connection: its tables are named as the warehouse's"""
TABLES = ("request_energy_pieces", "device_energy_buckets")


def scratch_path(con: duckdb.DuckDBPyConnection, day: date) -> Path:
    """``<warehouse file>.attribution-<day>.duckdb``, on the warehouse's disk (the file's lock allows one writer, so
    one run of the day at a time); for a warehouse in memory (a Spark task's), a file of its own in the temporary
    folder, since several may run at once."""
    path = scalar(con, "SELECT path FROM duckdb_databases() WHERE database_name = current_database()")
    if not path:
        temp_files.remove_abandoned()  # a killed task's
        unique = f"{os.getpid()}-{uuid.uuid4().hex}"  # the process id: temp_files.remove_abandoned
        return Path(tempfile.gettempdir()) / f"infercost-attribution-{day.isoformat()}-{unique}.duckdb"
    return Path(path).with_name(f"{Path(path).name}.attribution-{day.isoformat()}.duckdb")


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


def _remove_other_days(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Remove the scratch files of other days beside the warehouse that this DuckDB does not have attached: a run
    killed while it attributed a day that is not run again would leave its file for good (no other process can
    hold the warehouse, so no other run is writing one)."""
    if ".attribution-" not in path.name:  # a file of its own in the temporary folder (temp_files)
        return
    attached = {p for (p,) in con.execute("SELECT path FROM duckdb_databases() WHERE path IS NOT NULL").fetchall()}
    warehouse = path.name.rsplit(".attribution-", 1)[0]
    for leftover in path.parent.glob(f"{warehouse}.attribution-*.duckdb"):
        if str(leftover) not in attached and str(leftover.resolve()) not in attached:
            _remove(leftover)


@contextmanager
def day_scratch(con: duckdb.DuckDBPyConnection, day: date) -> Iterator[str]:
    """Attach an empty scratch database holding empty copies of the result tables; yield its name; detach and
    remove it (also after a failure)."""
    path = scratch_path(con, day)
    _remove(path)  # left by a killed run
    _remove_other_days(con, path)
    con.execute(f"ATTACH {sql_str(path)} AS {SCRATCH}")
    try:
        for table in TABLES:
            con.execute(f"CREATE TABLE {SCRATCH}.{table} AS SELECT * FROM {table} LIMIT 0")
        yield SCRATCH
    finally:
        con.execute(f"DETACH {SCRATCH}")
        _remove(path)


def replace_day(con: duckdb.DuckDBPyConnection, day: date) -> None:
    """Inside the caller's transaction: the day's rows of the result tables replaced by the scratch's."""
    con.execute("DELETE FROM request_energy_pieces WHERE partition_date = ?", [day])
    con.execute(f"INSERT INTO request_energy_pieces BY NAME SELECT * FROM {SCRATCH}.request_energy_pieces")
    con.execute("DELETE FROM device_energy_buckets WHERE partition_date = ?", [day])
    con.execute(f"INSERT INTO device_energy_buckets BY NAME SELECT * FROM {SCRATCH}.device_energy_buckets")
