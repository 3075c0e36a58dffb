"""The attribution kernel as a daily partitioned asset."""

from datetime import timedelta

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipelines.analysis.quality import run_suite
from pipelines.attribution.day import attribute_day
from pipelines.defs.partitions import daily_partitions, partition_days, single_run
from pipelines.defs.quality import check_results, suite_check_specs
from pipelines.defs.resources import EngineResource, warehouse_connection
from pipelines.settings import current
from pipelines.warehouse.archive import ARCHIVED_TABLES, restore_days


def restore_neighbours(con, days, log) -> None:
    """A day reads the telemetry of the days beside it: load back any the lake holds (re-running a past day)."""
    neighbours = {d + timedelta(days=k) for d in days for k in (-1, 0, 1)}
    for table in ARCHIVED_TABLES:
        restore_days(con, table, neighbours, log=log)


def _attribute(engine: EngineResource, con, day, progress):
    """One day on the engine the resource names (the same outputs either way)."""
    settings = current()
    if engine.on_spark:
        from pipelines.spark.attribution import attribute_day_spark

        return attribute_day_spark(
            engine.spark(),
            con,
            day,
            max_gap_s=settings.max_gap_s,
            prompt_token_weight=settings.prompt_token_weight,
            placement=settings.energy_placement,
        )
    return attribute_day(
        con,
        day,
        progress=progress,
        max_gap_s=settings.max_gap_s,
        prompt_token_weight=settings.prompt_token_weight,
        placement=settings.energy_placement,
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "request_energy_pieces",
            group_name="attribution",
            kinds={"duckdb", "python"},
            deps=["raw_requests", "raw_telemetry", "raw_deployments", "raw_regions"],
            description="Energy and device-seconds of each request per device and price bucket.",
        ),
        dg.AssetSpec(
            "device_energy_buckets",
            group_name="attribution",
            kinds={"duckdb", "python"},
            deps=["raw_requests", "raw_telemetry"],
            description="Metered, busy, idle and unmetered time and energy per device and bucket.",
        ),
        dg.AssetSpec(
            "clock_skew_checks",
            group_name="attribution",
            kinds={"duckdb"},
            deps=["raw_requests", "raw_telemetry", "raw_clock_offsets"],
            description="Per host and day, the lag between request logs and power that fits best, and "
            "whether the host's clocks look skewed (fleet/clock_offsets.csv corrects them).",
        ),
        dg.AssetSpec(
            "unattributed_requests",
            group_name="attribution",
            kinds={"duckdb"},
            deps=["raw_requests", "raw_deployments"],
            description="Requests that could not be placed on a device, with the reason.",
        ),
    ],
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    check_specs=suite_check_specs("attribution", "request_energy_pieces"),
)
def energy_attribution(context: dg.AssetExecutionContext, duckdb: DuckDBResource, engine: EngineResource):
    """Split each device's measured energy across the requests running on it (pipelines/attribution/kernel.py)."""
    days = partition_days(context)
    settings = current()
    totals = {
        "metered_kwh": 0.0,
        "attributed_kwh": 0.0,
        "idle_kwh": 0.0,
        "requests": 0,
        "unattributed": 0,
        "dropped_samples": 0,
        "counter_intervals": 0,
        "counter_resets": 0,
    }
    skewed = set()
    outcomes = []
    with warehouse_connection(duckdb) as con:
        restore_neighbours(con, days, log=context.log.info)
        for day in days:

            def progress(done, total, so_far, day=day):
                context.log.info(
                    f"attribution {day}: device group {done}/{total}, "
                    f"{so_far['telemetry_rows']:,} samples and {so_far['request_device_rows']:,} "
                    "request-devices so far"
                )

            result = _attribute(engine, con, day, progress)
            outcomes += run_suite(con, "attribution", day)
            context.log.info(result.summary())
            totals["metered_kwh"] += result.metered_energy_j / 3.6e6
            totals["attributed_kwh"] += result.attributed_energy_j / 3.6e6
            totals["idle_kwh"] += result.idle_energy_j / 3.6e6
            totals["requests"] += result.requests
            totals["unattributed"] += result.unattributed
            for key in ("dropped_samples", "counter_intervals", "counter_resets"):
                totals[key] += getattr(result, key)
            skewed.update(result.skewed_hosts)
            if result.skewed_hosts:
                context.log.warning(f"{day}: likely clock skew on {result.skewed_hosts}; see clock_skew_checks")
    yield dg.MaterializeResult(
        asset_key="request_energy_pieces",
        metadata={
            **totals,
            "max_gap_s": settings.max_gap_s,
            "prompt_token_weight": settings.prompt_token_weight,
            "energy_placement": settings.energy_placement,
        },
    )
    yield dg.MaterializeResult(asset_key="device_energy_buckets", metadata={"idle_kwh": totals["idle_kwh"]})
    yield dg.MaterializeResult(asset_key="clock_skew_checks", metadata={"likely_skewed_hosts": sorted(skewed)})
    yield dg.MaterializeResult(asset_key="unattributed_requests", metadata={"rows": totals["unattributed"]})
    yield from check_results(outcomes, "request_energy_pieces")
