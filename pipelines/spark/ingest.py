"""Ingest of one feed's day on Spark: files parsed in parallel by the feed's own reader, the duplicate-key rule
over key buckets, loaded rows and quarantine rows written to the lake, per-file counts into the warehouse.

Stages (each a Spark job; tasks run pipelines/spark/tasks.py):
1. one task per file (``mapInArrow`` over the file list): read, parse and stage, as the loader does, with the
   file's rows of other days counted (and keyed where their day's run never read the file) in rows of their own;
2. the valid rows and the keys already loaded for other days, co-grouped by a hash of the key
   (``cogroup(...).applyInArrow``): repeats get their reason, the first delivered loads;
3. ``raw_<feed>/day=...`` and ``ingest_quarantine/feed=<feed>/day=...`` written to the lake (staging, rename);
   the warehouse's ``ingest_quarantine`` and ``ingest_file_stats`` rows of the day replaced from them.

The run is checked before anything is written with the loader's own guard (refusal.py). Its report names the
rows of other days the warehouse does not hold, as the loader's does (pipelines/ingest/other_days.py). Like the
loader, it does not open a file remembered to hold none of its day's rows (pipelines/ingest/file_days.py): the
parse tasks count each file's rows per day, and the driver keeps them once the day is written.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.ingest import file_days, load_sql, other_days
from pipelines.ingest.feeds import resolve_landing_feed
from pipelines.ingest.files import by_arrival, files_for, files_table
from pipelines.ingest.loader import not_opened_note
from pipelines.ingest.refusal import refusal
from pipelines.ingest.report import IngestRefused, IngestReport
from pipelines.settings import current
from pipelines.spark import tasks
from pipelines.spark.lake_io import attach_lake, read_days, write_frame
from pipelines.spark.session import spark_schema
from pipelines.warehouse import lake
from pipelines.warehouse.connection import ensure_raw_tables
from pipelines.warehouse.contracts import FLEET_TABLES
from pipelines.warehouse.tables import table

KEY_BUCKETS = 16


def _parsed(spark, con: duckdb.DuckDBPyConnection, feed, day, files: list[Path], landing: Path, found):
    """Stage 1: every file's staged rows (one task per file), the fleet tables beside them as in the warehouse;
    the files' rows of other days follow (tasks.OTHER_DAY), counted against ``found`` (other_days.for_run)."""
    schema = tasks.task_schema(tasks.staged_schema(tasks.without_duplicate_rule(feed), day))
    files_arrow = files_table(files)
    dims = {f"raw_{n}": con.sql(f"SELECT * FROM raw_{n}").to_arrow_table() for n in FLEET_TABLES}
    # lines of these files already quarantined for another day: an undated file's are not quarantined again
    con.register("_run_files", files_arrow)
    dims["ingest_quarantine"] = con.sql(
        f"SELECT * FROM ingest_quarantine WHERE feed = '{feed.name}' AND partition_date IS DISTINCT FROM "
        f"{load_sql.day_sql(day)} AND source_file IN (SELECT source_file FROM _run_files)"
    ).to_arrow_table()
    con.unregister("_run_files")

    def parse(batches):
        for batch in batches:
            for path in batch.column(0).to_pylist():
                for t in tasks.parse_files(feed, day, files_arrow, dims, [path], landing, found):
                    yield from t.to_batches()

    paths = spark.createDataFrame([(str(p),) for p in files], "source_file string")
    return paths.repartition(max(len(files), 1)).mapInArrow(parse, spark_schema(schema))


def _file_days(rows: pa.Table) -> dict:
    """The tasks' FILE_DAY_KINDS rows as file_days.add_batch fills its dict: {(source_file, day): [rows filed,
    rows dated, rows sharing keys (none: a task sees one file)]}."""
    found: dict = {}
    kinds, files, days, counts = (
        rows.column(c).to_pylist() for c in (tasks.OTHER_DAY, "source_file", "event_date", tasks.OTHER_DAY_ROWS)
    )
    for kind, source_file, day, n in zip(kinds, files, days, counts):
        if kind in tasks.FILE_DAY_KINDS:
            found.setdefault((source_file, day), [0, 0, 0])[tasks.FILE_DAY_KINDS.index(kind)] += n
    return found


def _other_days(con: duckdb.DuckDBPyConnection, feed, day: date, rows: pa.Table, found) -> list:
    """The tasks' rows of other days (tasks.OTHER_DAY) summed into ``found`` and looked up as the loader does
    (other_days.left_for_other_days): per file, the rows of other days the warehouse does not hold."""
    kinds = rows.column(tasks.OTHER_DAY).to_pylist()
    files, days, counts = (rows.column(c).to_pylist() for c in ("source_file", "event_date", tasks.OTHER_DAY_ROWS))
    for kind, source_file, other, n in zip(kinds, files, days, counts):
        if kind == "count":
            found.counts[(source_file, other)] = found.counts.get((source_file, other), 0) + n
    keys = rows.filter(pc.equal(rows.column(tasks.OTHER_DAY), "key"))
    if keys.num_rows:
        con.register("_other_day_keys", keys.select(["source_file", "event_date", *feed.contract.key]))
        con.execute(f"CREATE OR REPLACE TEMP TABLE {other_days.KEYS_TABLE} AS SELECT * FROM _other_day_keys")
        con.unregister("_other_day_keys")
        found.keys_kept = True
    return other_days.left_for_other_days(con, feed, day, found)


def _deduplicated(spark, feed, day, staged, files: list[Path], root: Path | None):
    """Stage 2: the duplicate-key rule over key buckets; rows already quarantined pass through."""
    from pyspark.sql import functions as F

    key = list(feed.duplicate_key)
    if not key:
        return staged
    bucket = F.pmod(F.xxhash64(*key), F.lit(KEY_BUCKETS)).alias("_bucket")
    valid = staged.where(F.col("reason").isNull())
    window = current().duplicate_window_days
    earlier = [
        d for d in lake.list_days(feed.raw_table, root) if d != day and (day is None or abs((d - day).days) <= window)
    ]
    loaded = read_days(spark, feed.raw_table, earlier, root)
    loaded_cols = [*key, "partition_date", "source_file", "source_line"]
    if loaded is None:
        loaded = spark.createDataFrame([], _loaded_schema(feed, loaded_cols))
    loaded = loaded.select(*loaded_cols).join(valid.select(*key).distinct(), key, "left_semi")
    files_arrow = files_table(files)
    out_schema = staged.schema

    def dedup(rows: pa.Table, earlier_rows: pa.Table) -> pa.Table:
        return tasks.dedup_bucket(
            feed, day, files_arrow, rows.drop(["_bucket"]), earlier_rows.drop(["_bucket"]), window
        )

    deduped = (
        valid.select("*", bucket)
        .groupBy("_bucket")
        .cogroup(loaded.select("*", bucket).groupBy("_bucket"))
        .applyInArrow(dedup, out_schema)
    )
    return staged.where(F.col("reason").isNotNull()).unionByName(deduped)


def _loaded_schema(feed, cols: list[str]):
    schema = table(feed.raw_table).arrow_schema()
    return spark_schema(pa.schema([schema.field(c) for c in cols]))


def _file_counts(rows, feed) -> dict:
    """{source_file: (read, loaded, quarantined, skipped, energy_source)}, as staging.stage_batch counts them."""
    from pyspark.sql import functions as F

    skipped = F.col("reason").startswith(load_sql.SKIPPED_REASON)
    sources = (
        F.array_join(F.array_sort(F.collect_set(F.when(F.col("reason").isNull(), F.col("energy_source")))), ", ")
        if "energy_source" in feed.contract.names
        else F.lit("")
    )
    counts = rows.groupBy("source_file").agg(
        F.count(F.lit(1)).alias("read"),
        F.count(F.when(F.col("reason").isNull(), 1)).alias("loaded"),
        F.count(F.when(F.col("reason").isNotNull() & ~skipped, 1)).alias("quarantined"),
        F.count(F.when(skipped, 1)).alias("skipped"),
        sources.alias("energy_source"),
    )
    return {
        r["source_file"]: (r["read"], r["loaded"], r["quarantined"], r["skipped"], r["energy_source"] or "")
        for r in counts.collect()
    }


def _write(con: duckdb.DuckDBPyConnection, feed, day: date, rows, counts: dict, root: Path | None) -> None:
    """Stage 3: the day's loaded and quarantined rows into the lake, the warehouse's bookkeeping from them."""
    from pyspark.sql import functions as F

    raw_cols = [F.current_timestamp().alias(c) if c == "loaded_at" else F.col(c) for c in table(feed.raw_table).names]
    write_frame(rows.where(F.col("reason").isNull()).select(*raw_cols), feed.raw_table, day, root)
    quarantine = rows.where(F.col("reason").isNotNull()).select(
        F.lit(feed.name).alias("feed"),
        "partition_date",
        "source_file",
        "source_line",
        "raw_text",
        "reason",
        F.current_timestamp().alias("loaded_at"),
    )
    written = write_frame(quarantine, f"ingest_quarantine/feed={feed.name}", day, root, files=1)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM ingest_quarantine WHERE feed = ? AND partition_date = ?", [feed.name, day])
        con.execute("DELETE FROM ingest_file_stats WHERE feed = ? AND partition_date = ?", [feed.name, day])
        con.execute(
            "INSERT INTO ingest_quarantine BY NAME SELECT * "
            f"FROM read_parquet('{written}/*.parquet', hive_partitioning = false)"
        )
        if counts:  # none for a day without files (or whose lines were all quarantined on another day)
            con.executemany(
                "INSERT INTO ingest_file_stats (feed, partition_date, source_file, rows_read, rows_loaded, "
                "rows_quarantined, rows_skipped, energy_source, loaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, nullif(?, ''), now())",
                [[feed.name, day, f, *c] for f, c in sorted(counts.items())],
            )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    attach_lake(con, root)


def ingest_feed_spark(
    spark,
    con: duckdb.DuckDBPyConnection,
    feed_name: str,
    landing: Path,
    day: date,
    *,
    root: Path | None = None,
    replace_anyway: bool = False,
    fmt: str | None = None,
    options: dict | None = None,
) -> IngestReport:
    """Load ``day`` of ``landing/<feed_name>/`` into the lake on Spark (see the module docstring); the same
    readers, options (``fmt`` and ``options``, else formats.yaml) and rules as pipelines/ingest/loader.ingest_feed,
    the same report."""
    from pyspark.sql import functions as F

    ensure_raw_tables(con)
    attach_lake(con, root)
    feed = resolve_landing_feed(feed_name, Path(landing), fmt, options)
    folder = Path(landing) / feed_name
    files = by_arrival(files_for(folder, feed.patterns, day)) if folder.is_dir() else []
    # a file remembered to hold none of the day's rows is not opened (file_days.py: the spark engine's own memory)
    files, not_opened = file_days.known_without_day(con, feed, files, day, Path(landing), engine="spark")
    before = file_days.fingerprints(files, feed, Path(landing), engine="spark")
    found = other_days.for_run(con, feed, day)
    found.changed = file_days.changed_since_read(con, feed, before)
    parsed = _parsed(spark, con, feed, day, files, Path(landing), found).persist()
    try:
        staged = parsed.where(F.col(tasks.OTHER_DAY).isNull()).drop(tasks.OTHER_DAY, tasks.OTHER_DAY_ROWS)
        rows = _deduplicated(spark, feed, day, staged, files, root).persist()
        counts = _file_counts(rows, feed)
        report = IngestReport(feed=feed.name, partition_date=day).fill(dict(sorted(counts.items())))
        report.files_not_opened = not_opened
        report.refusal = None if replace_anyway else refusal(con, feed, day, counts, files)
        if report.refusal:
            raise IngestRefused(report.refusal + not_opened_note(not_opened))
        _write(con, feed, day, rows, counts, root)
        rows.unpersist()
        side = parsed.where(F.col(tasks.OTHER_DAY).isNotNull()).toArrow()
        report.other_days = _other_days(con, feed, day, side, found)
        # kept only once the changed files' rows of other days are named: a failed lookup is tried again next run
        file_days.remember(con, feed, before, _file_days(side), Path(landing))
        report.other_days += other_days.unread_late_files(con, feed, folder, feed.patterns, day)
    finally:
        parsed.unpersist()
    return report
