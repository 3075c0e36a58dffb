"""Publish a read-only copy of the warehouse for analysts.

DuckDB allows one writer, and while it writes no other process can open the file, even read-only. After each
successful run the writer copies every table into a new file and atomically renames it to
``$INFERCOST_HOME/published/warehouse.duckdb``. Readers (``infercost sql``, notebooks, BI tools) open that copy
read-only; a reader that already has the previous copy open keeps it until it reconnects.

Imports no Dagster.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb

from pipelines.settings import current
from pipelines.warehouse.connection import scalar


def published_path() -> Path:
    return current().published


def publish(con: duckdb.DuckDBPyConnection, target: Path | None = None) -> Path:
    target = Path(target or published_path())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".new")
    staging.unlink(missing_ok=True)
    source = scalar(con, "SELECT current_database()")
    path = scalar(con, "SELECT path FROM duckdb_databases() WHERE database_name = current_database()")
    if path and Path(path).is_file():
        # a checkpointed file is complete on disk: copying its bytes is a disk-speed copy (a fleet-day's
        # warehouse is several GB), where copying table by table rewrites every block
        con.execute("CHECKPOINT")
        shutil.copyfile(path, staging)
    else:
        con.execute(f"ATTACH '{staging}' AS _publish")
        try:
            con.execute(f'COPY FROM DATABASE "{source}" TO _publish')
        finally:
            con.execute("DETACH _publish")
    os.replace(staging, target)
    return target
