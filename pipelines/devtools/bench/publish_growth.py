"""The two steps of a daily run that read past days by design, as the history grows to months: publishing and the
technique comparison.

A real history of 90 daily runs takes hours to generate and backfill here, so this bench grows one. It copies the
warehouse of the history bench's day 1 (``make bench-history`` leaves it in bench_data/history-<devices>-day1/) and
gives it more days by copying that day's rows of every table with a day column (but raw telemetry, which the live
file keeps two days of), with the day column shifted by whole days: sizes and scans as a real history, not
consistent data. At each length, side by side in one run:

- the whole file copied, as publishing did before (a checkpoint and a file copy);
- the by-day copy of a daily run (pipelines/warehouse/publish.py): the copy is first brought up to the day before
  (not timed), then the run's day is published (timed);
- the technique comparison over its window (pipelines/analysis/compare_store.py).
"""

from __future__ import annotations

import shutil
import time
from datetime import timedelta
from pathlib import Path

import duckdb

from pipelines.analysis.compare_store import compare_and_store
from pipelines.devtools.bench.history import FIRST_DAY
from pipelines.devtools.bench.inputs import bench_dir
from pipelines.warehouse import publish as publish_module
from pipelines.warehouse.connection import scalar

BOUNDED = ("raw_telemetry",)
"""Tables the live file keeps a bounded number of days of (pipelines/warehouse/archive.py): not grown."""


def growing_tables(con) -> dict[str, str]:
    """The tables a history grows, with their day column: every table with one (publish.DAY_COLUMNS), but those the
    live file keeps a bounded number of days of."""
    tables = {}
    source = scalar(con, "SELECT current_database()")
    for schema, table in publish_module.base_tables(con, source):
        day_column = publish_module.day_column_of(publish_module.table_columns(con, source, schema, table))
        if day_column and schema == "main" and table not in BOUNDED:
            tables[table] = day_column
    return tables


def grow(con, tables: dict[str, str], held: int, length: int) -> None:
    """Add days held+1 .. length: copies of the first day's rows with the day column moved."""
    for table, day_column in tables.items():
        for k in range(held, length):
            con.execute(
                f"INSERT INTO {table} SELECT * REPLACE ({day_column} + {k} AS {day_column}) FROM {table} "
                f"WHERE {day_column} = DATE '{FIRST_DAY}'"
            )
    con.execute("CHECKPOINT")


def _whole_copy(con, live: Path, copy: Path) -> float:
    t0 = time.perf_counter()
    con.execute("CHECKPOINT")
    shutil.copyfile(live, copy)
    seconds = time.perf_counter() - t0
    copy.unlink()
    return seconds


def _folder_gb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e9


def publish_growth(devices: int = 64, lengths=(1, 10, 30, 60), say=print) -> list[dict]:
    day1 = bench_dir(f"history-{devices}-day1") / "warehouse.duckdb"
    if not day1.is_file():
        raise FileNotFoundError(f"no day-1 warehouse at {day1}: run `make bench-history` first")
    work = bench_dir(f"publish-growth-{devices}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    live = work / "warehouse.duckdb"
    shutil.copyfile(day1, live)
    target = work / "published" / "warehouse.duckdb"
    con = duckdb.connect(str(live))
    tables = growing_tables(con)
    say(f"grown tables: {', '.join(f'{t} ({c})' for t, c in tables.items())}")
    say(
        f"{'days':>5}{'file GB':>9}{'parts GB':>10}{'whole copy s':>14}{'by day s':>10}{'ratio':>7}{'comparison s':>14}"
    )
    held, rows = 1, []
    for length in sorted(lengths):
        grow(con, tables, held, length)
        last = FIRST_DAY + timedelta(days=length - 1)
        if length > 1:  # the copy as the day before's run left it
            publish_module.publish(con, target, days=(FIRST_DAY + timedelta(days=held), last - timedelta(days=1)))
        held = length
        whole = _whole_copy(con, live, work / "whole-copy.duckdb")
        t0 = time.perf_counter()
        publish_module.publish(con, target, days=(last, last))
        by_day = time.perf_counter() - t0
        t0 = time.perf_counter()
        compare_and_store(con)
        comparison = time.perf_counter() - t0
        row = {
            "days": length,
            "file_gb": live.stat().st_size / 1e9,
            "parts_gb": _folder_gb(publish_module.parts_dir(target)),
            "whole_s": whole,
            "by_day_s": by_day,
            "comparison_s": comparison,
        }
        rows.append(row)
        say(
            f"{length:>5}{row['file_gb']:>9.2f}{row['parts_gb']:>10.2f}{whole:>14.1f}{by_day:>10.1f}"
            f"{whole / by_day:>7.1f}{comparison:>14.1f}"
        )
    con.close()
    first, last_row = rows[0], rows[-1]
    say(
        f"summary publish growth ({devices} accelerators): by-day publish {first['by_day_s']:.1f} s on day "
        f"{first['days']}, {last_row['by_day_s']:.1f} s on day {last_row['days']}; whole-file copy "
        f"{first['whole_s']:.1f} s and {last_row['whole_s']:.1f} s; comparison {first['comparison_s']:.1f} s and "
        f"{last_row['comparison_s']:.1f} s"
    )
    shutil.rmtree(work, ignore_errors=True)
    return rows
