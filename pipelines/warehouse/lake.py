"""The lake: raw feeds of past days as Parquet files partitioned by UTC day, one layout for every engine.

Layout (hive-style, what Spark's ``partitionBy("day")`` writes and DuckDB's ``hive_partitioning`` reads)::

    $INFERCOST_HOME/lake/<table>/day=YYYY-MM-DD/part-*.parquet

- ``<table>`` is the warehouse table's name (``raw_requests``, ``raw_telemetry``, ...);
- the files of a partition do not hold a ``day`` column: the directory name is the day (a reader adds it as a
  DATE column, ``hive_types={'day': DATE}``);
- a partition is written whole: files go to a staging directory beside it (``.staging-day=...-<id>``, which no
  reader's glob matches, since ``day=*`` does not match a name starting with a dot), which is then renamed into place.
  Replacing a day renames the old partition aside first (``.replaced-day=...-<id>``) and deletes it after, so a
  reader sees the old day or the new one, never a mix (for the instant between the two renames, no day);
- ``list_days`` lists committed partitions only; ``drop_day`` removes one (retention).

Imports no Dagster. Spark writers follow the same rules: write to a staging path, rename into ``day=...``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb

from pipelines.settings import current

PARTITION_KEY = "day"


def lake_root(home: Path | None = None) -> Path:
    """The lake's root: ``$INFERCOST_HOME/lake``."""
    return Path(home or current().home) / "lake"


def table_dir(table: str, root: Path | None = None) -> Path:
    return Path(root or lake_root()) / table


def partition_dir(table: str, day: date, root: Path | None = None) -> Path:
    """``<root>/<table>/day=YYYY-MM-DD``: where one day of a table lives."""
    return table_dir(table, root) / f"{PARTITION_KEY}={day.isoformat()}"


def table_glob(table: str, root: Path | None = None) -> str:
    """The glob of every committed file of a table (staging and replaced directories start with a dot)."""
    return str(table_dir(table, root) / f"{PARTITION_KEY}=*" / "*.parquet")


def list_days(table: str, root: Path | None = None) -> list[date]:
    """The days a table has a committed partition for, in order."""
    base = table_dir(table, root)
    if not base.is_dir():
        return []
    days = []
    for child in base.iterdir():
        if child.is_dir() and child.name.startswith(f"{PARTITION_KEY}="):
            days.append(date.fromisoformat(child.name.split("=", 1)[1]))
    return sorted(days)


def has_day(table: str, day: date, root: Path | None = None) -> bool:
    return partition_dir(table, day, root).is_dir()


def read_sql(table: str, root: Path | None = None, days: list[date] | None = None) -> str:
    """A DuckDB table expression over a table's partitions (every day, or only ``days``), with ``day`` as a DATE.

    Listing the days' directories reads only their files; a filter on ``day`` over the whole glob is pruned by
    DuckDB too. Files written under an older contract are read by column name (``union_by_name``)."""
    if days is None:
        files = f"'{table_glob(table, root)}'"
    else:
        paths = [str(partition_dir(table, d, root) / "*.parquet") for d in days if has_day(table, d, root)]
        if not paths:
            return f"(SELECT NULL::DATE AS {PARTITION_KEY} WHERE false)"
        files = "[" + ", ".join(f"'{p}'" for p in paths) + "]"
    return (
        f"read_parquet({files}, hive_partitioning = true, hive_types = {{'{PARTITION_KEY}': DATE}}, "
        "union_by_name = true)"
    )


def write_day(table: str, day: date, write_files: Callable[[Path], None], root: Path | None = None) -> Path:
    """Write one day's partition atomically: ``write_files(staging_dir)`` writes ``part-*.parquet`` files into an
    empty staging directory, which then replaces the day's partition. A failure leaves the old partition as it was.
    Returns the partition's directory."""
    target = partition_dir(table, day, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    staging = target.parent / f".staging-{target.name}-{token}"
    staging.mkdir()
    try:
        write_files(staging)
        if not any(staging.glob("*.parquet")):
            raise ValueError(f"lake: writing {table} {day} produced no part-*.parquet file")
        replaced = None
        if target.exists():
            replaced = target.parent / f".replaced-{target.name}-{token}"
            os.rename(target, replaced)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if replaced is not None:
        shutil.rmtree(replaced, ignore_errors=True)
    return target


def write_day_from_query(
    con: duckdb.DuckDBPyConnection, table: str, day: date, query: str, params=None, root: Path | None = None
) -> Path:
    """Write the rows of a DuckDB query (without a ``day`` column) as one day's partition, atomically."""

    def copy(staging: Path) -> None:
        con.execute(
            f"COPY ({query}) TO '{staging / 'part-00000.parquet'}' (FORMAT parquet, COMPRESSION zstd)",
            params or [],
        )

    return write_day(table, day, copy, root)


def drop_day(table: str, day: date, root: Path | None = None) -> bool:
    """Remove one day's partition (rename aside, then delete). True when there was one."""
    target = partition_dir(table, day, root)
    if not target.exists():
        return False
    gone = target.parent / f".dropped-{target.name}-{uuid.uuid4().hex[:12]}"
    os.rename(target, gone)
    shutil.rmtree(gone, ignore_errors=True)
    return True


def clean_staging(table: str, root: Path | None = None) -> int:
    """Remove staging and replaced directories a killed writer left behind; returns how many."""
    base = table_dir(table, root)
    if not base.is_dir():
        return 0
    left = [p for p in base.iterdir() if p.is_dir() and p.name.startswith(".")]
    for p in left:
        shutil.rmtree(p, ignore_errors=True)
    return len(left)
