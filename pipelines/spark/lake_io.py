"""The spark engine's side of the lake: a DataFrame written as one day's partition (staging path, then rename:
lake.write_day), the days of a lake table read back, and the lake's big tables shown to the warehouse as views so
that dbt-duckdb and the quality checks read them in place.

Exactly once: Spark's commit protocol keeps only one attempt of each task in the staging directory (a retried or
speculative task leaves no second copy), and the day is renamed into place only when the whole job has succeeded,
replacing what was there. Re-running a day replaces it; nothing is appended.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from pipelines.warehouse import lake
from pipelines.warehouse.connection import scalar
from pipelines.warehouse.tables import table

# the row-level tables the spark engine keeps in the lake; the warehouse reads them through views
LAKE_TABLES = ("raw_requests", "raw_telemetry", "request_energy_pieces", "device_energy_buckets")


def write_frame(frame, table_name: str, day: date, root: Path | None = None, files: int | None = None) -> Path:
    """Write a DataFrame as ``day``'s partition of a lake table, atomically (``files``: coalesce to this many)."""

    def write(staging: Path) -> None:
        out = frame.coalesce(files) if files else frame
        out.write.mode("overwrite").parquet(str(staging))

    return lake.write_day(table_name, day, write, root)


def read_days(spark, table_name: str, days: list[date], root: Path | None = None):
    """The rows of a lake table's committed partitions among ``days`` (None when it has none of them)."""
    dirs = [str(lake.partition_dir(table_name, d, root)) for d in days if lake.has_day(table_name, d, root)]
    return spark.read.parquet(*dirs) if dirs else None


def attach_lake(con: duckdb.DuckDBPyConnection, root: Path | None = None) -> list[str]:
    """Point the warehouse's row-level tables at the lake: a view per lake table that has a partition, with the
    table's declared columns and types. An empty table of that name gives way to the view; a table with rows
    (a warehouse built by the duckdb engine) is an error rather than a loss. Returns the tables attached."""
    attached = []
    for name in LAKE_TABLES:
        if not lake.list_days(name, root):
            continue
        kind = scalar(con, "SELECT table_type FROM information_schema.tables WHERE table_name = ?", [name])
        if kind == "BASE TABLE":
            if scalar(con, f"SELECT count(*) FROM {name}"):
                raise RuntimeError(
                    f"{name} in this warehouse holds rows loaded by the duckdb engine; the spark engine keeps it "
                    "in the lake. Use another INFERCOST_HOME for the spark engine (or drop the table)."
                )
            con.execute(f"DROP TABLE {name}")
        cols = ", ".join(f"CAST({c.name} AS {c.type}) AS {c.name}" for c in table(name).columns)
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT {cols} FROM {lake.read_sql(name, root)}")
        attached.append(name)
    return attached
