"""Attribution of one UTC day on Spark: ``attribute_day`` per device group, co-grouped requests and telemetry.

Every request row and telemetry sample is routed to its device group (whole hosts; a replica's hosts together:
tasks.device_groups): a request through its replica's deployments (else its own device_id), a sample through its
device. Requests whose replica has no deployment at all go to one group of their own, which records them as
unattributed exactly as on one machine. Each group runs the one-machine ``attribute_day`` on its slice
(``cogroup(...).applyInArrow``), so requests over midnight (requests of the two days before, kept only inside the
day), counter deltas (the day's neighbours' samples, at the edges of the window) and idle come out the same.

The pieces and device buckets go to the lake (staging, rename: a re-run replaces the day); the small tables
(unattributed requests, clock-skew checks) replace the day's rows in the warehouse.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.attribution.day import DayAttribution
from pipelines.settings import DEFAULT_ENERGY_PLACEMENT, DEFAULT_MAX_GAP_S, DEFAULT_PROMPT_TOKEN_WEIGHT
from pipelines.spark import tasks
from pipelines.spark.lake_io import attach_lake, read_days, write_frame
from pipelines.spark.session import spark_schema
from pipelines.warehouse.connection import ensure_raw_tables
from pipelines.warehouse.tables import create_tables, table

DIMENSIONS = ("raw_deployments", "raw_clock_offsets", "raw_inventory", "raw_regions")
UNPLACED = "~no deployment"
SMALL_OUTPUTS = ("unattributed_requests", "clock_skew_checks")


def _rows(spark, name: str, days: list[date], root: Path | None):
    """A raw table's lake rows of ``days`` (an empty frame when it has none)."""
    found = read_days(spark, name, days, root)
    if found is None:
        return spark.createDataFrame([], spark_schema(table(name).arrow_schema()))
    return found.drop("day") if "day" in found.columns else found


def _routed(spark, day: date, dims: dict[str, pa.Table], root: Path | None):
    """(requests, telemetry) with ``gid``, the device group each row is attributed in."""
    from pyspark.sql import functions as F

    groups = tasks.device_groups(dims["raw_deployments"], dims["raw_inventory"])
    by_device = spark.createDataFrame(sorted(groups.items()) or [("", "")], "device_id string, g_device string")
    deployments = dims["raw_deployments"]
    by_replica = spark.createDataFrame(
        sorted(
            {
                r: groups[d]
                for r, d in zip(deployments["replica_id"].to_pylist(), deployments["device_id"].to_pylist())
            }.items()
        )
        or [("", "")],
        "replica_id string, g_replica string",
    )
    requests = (
        _rows(spark, "raw_requests", [day - timedelta(days=2), day - timedelta(days=1), day], root)
        .join(F.broadcast(by_replica), "replica_id", "left")
        .join(F.broadcast(by_device), "device_id", "left")
        .withColumn("gid", F.coalesce("g_replica", "g_device", "device_id", F.lit(UNPLACED)))
        .drop("g_replica", "g_device")
    )
    telemetry = (
        _rows(spark, "raw_telemetry", [day - timedelta(days=1), day, day + timedelta(days=1)], root)
        .join(F.broadcast(by_device), "device_id", "left")
        .withColumn("gid", F.coalesce("g_device", "device_id"))
        .drop("g_device")
    )
    return requests, telemetry


def _store_small(con: duckdb.DuckDBPyConnection, out, day: date) -> None:
    from pyspark.sql import functions as F

    for name in SMALL_OUTPUTS:
        rows = out.where(F.col("kind") == name).select(*table(name).names).toArrow()
        con.execute(f"DELETE FROM {name} WHERE partition_date = ?", [day])
        if rows.num_rows:
            con.register("_rows", rows)
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _rows")
            con.unregister("_rows")


def _summary(out, day: date, con: duckdb.DuckDBPyConnection) -> DayAttribution:
    from pyspark.sql import functions as F

    sums = out.agg(
        *(F.sum(f"total_{t}").alias(t) for t in tasks.TOTALS),
        F.sum("metered_energy_j").alias("metered"),
        F.sum(F.when(F.col("kind") == "request_energy_pieces", F.col("energy_j"))).alias("attributed"),
        F.sum("idle_energy_j").alias("idle"),
    ).collect()[0]
    skewed = [
        r[0]
        for r in con.execute(
            "SELECT host FROM clock_skew_checks WHERE partition_date = ? AND likely_skew", [day]
        ).fetchall()
    ]
    unattributed = con.execute("SELECT count(*) FROM unattributed_requests WHERE partition_date = ?", [day]).fetchall()
    return DayAttribution(
        day=day,
        requests=int(sums["requests"] or 0),
        request_device_rows=int(sums["request_device_rows"] or 0),
        telemetry_rows=int(sums["telemetry_rows"] or 0),
        unattributed=int(unattributed[0][0]),
        metered_energy_j=float(sums["metered"] or 0.0),
        attributed_energy_j=float(sums["attributed"] or 0.0),
        idle_energy_j=float(sums["idle"] or 0.0),
        dropped_samples=int(sums["dropped_samples"] or 0),
        skewed_hosts=skewed,
        counter_intervals=int(sums["counter_intervals"] or 0),
        counter_resets=int(sums["counter_resets"] or 0),
    )


def attribute_day_spark(
    spark,
    con: duckdb.DuckDBPyConnection,
    day: date,
    *,
    root: Path | None = None,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    prompt_token_weight: float = DEFAULT_PROMPT_TOKEN_WEIGHT,
    placement: str = DEFAULT_ENERGY_PLACEMENT,
) -> DayAttribution:
    """Attribute one UTC day on Spark (module docstring); the fleet tables come from the warehouse ``con``."""
    from pyspark.sql import functions as F

    ensure_raw_tables(con)
    create_tables(con, *SMALL_OUTPUTS)
    dims = {name: con.sql(f"SELECT * FROM {name}").to_arrow_table() for name in DIMENSIONS}
    requests, telemetry = _routed(spark, day, dims, root)
    schema = tasks.tagged_schema()

    def attribute(group_requests: pa.Table, group_telemetry: pa.Table) -> pa.Table:
        tables, totals = tasks.attribute_group(
            day,
            dims,
            group_requests.drop(["gid"]),
            group_telemetry.drop(["gid"]),
            {"max_gap_s": max_gap_s, "prompt_token_weight": prompt_token_weight, "placement": placement},
        )
        return tasks.tagged(tables, totals, schema)

    out = (
        requests.groupBy("gid").cogroup(telemetry.groupBy("gid")).applyInArrow(attribute, spark_schema(schema))
    ).persist()
    try:
        for name in ("request_energy_pieces", "device_energy_buckets"):
            write_frame(out.where(F.col("kind") == name).select(*table(name).names), name, day, root)
        _store_small(con, out, day)
        summary = _summary(out, day, con)
    finally:
        out.unpersist()
    attach_lake(con, root)
    return summary
