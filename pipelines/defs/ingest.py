"""One asset per feed (requests, telemetry, prices), daily partitioned, and the fleet files."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipelines.analysis.quality import run_suite
from pipelines.defs.partitions import daily_partitions, partition_days, single_run
from pipelines.defs.quality import check_results, suite_check_specs
from pipelines.defs.resources import EngineResource, warehouse_connection
from pipelines.ingest.loader import IngestReport, ingest_feed, ingest_fleet_table
from pipelines.spark import SPARK_FEEDS
from pipelines.warehouse.connection import landing_dir
from pipelines.warehouse.contracts import FLEET_TABLES, load_contract

FLEET_KEYS = [dg.AssetKey(f"raw_{name}") for name in FLEET_TABLES]


class IngestRunConfig(dg.Config):
    """Run config of a feed asset (launchpad: ``ops: {raw_requests: {config: {replace_anyway: true}}}``)."""

    replace_anyway: bool = False
    """Replace a loaded day even when the run loads no rows or quarantines most of them (else the run fails and
    the day is left as it was)."""


def report_metadata(reports: list[IngestReport]) -> dict:
    files = [f for r in reports for f in r.files]
    table = "| partition | file | read | loaded | quarantined | skipped | energy from |\n"
    table += "|---|---|---:|---:|---:|---:|---|\n" + "\n".join(
        f"| {r.partition_date or ''} | {f.source_file} | {f.rows_read} | {f.rows_loaded} | {f.rows_quarantined} "
        f"| {f.rows_skipped} | {f.energy_source} |"
        for r in reports
        for f in r.files
    )
    return {
        "rows_read": sum(f.rows_read for f in files),
        "rows_loaded": sum(f.rows_loaded for f in files),
        "rows_quarantined": sum(f.rows_quarantined for f in files),
        "rows_skipped": sum(f.rows_skipped for f in files),
        "rows_of_other_days_not_loaded": sum(o.rows for r in reports for o in r.other_days),
        "late_files_never_read": sum(o.never_read for r in reports for o in r.other_days),  # dated 2+ days back
        "files_not_opened": sum(len(r.files_not_opened) for r in reports),  # known to hold none of the day
        "files": dg.MetadataValue.md(table),
    }


def build_feed_asset(feed: str) -> dg.AssetsDefinition:
    contract = load_contract(feed)

    @dg.asset(
        name=f"raw_{feed}",
        group_name="ingest",
        kinds={"duckdb"},
        partitions_def=daily_partitions,
        backfill_policy=single_run,
        deps=FLEET_KEYS,
        check_specs=suite_check_specs(feed, f"raw_{feed}"),
        description=f"{contract.description} Files: <landing>/{feed}/. Contract: schemas/{feed}.yaml "
        f"(v{contract.version}). Bad rows go to ingest_quarantine; per-file counts to ingest_file_stats.",
    )
    def _asset(
        context: dg.AssetExecutionContext, duckdb: DuckDBResource, engine: EngineResource, config: IngestRunConfig
    ):
        reports, outcomes = [], []
        with warehouse_connection(duckdb) as con:
            for day in partition_days(context):

                def progress(done, total, so_far, day=day):
                    context.log.info(f"{feed} {day}: {done}/{total} files, {so_far.rows_read:,} rows read so far")

                if engine.on_spark and feed in SPARK_FEEDS:
                    from pipelines.spark.ingest import ingest_feed_spark

                    report = ingest_feed_spark(
                        engine.spark(), con, feed, landing_dir(), day, replace_anyway=config.replace_anyway
                    )
                else:
                    report = ingest_feed(
                        con, feed, landing_dir(), day, progress=progress, replace_anyway=config.replace_anyway
                    )
                context.log.info(report.summary())
                report.other_days = report.other_days_outside(partition_days(context))  # this run loads those
                for other in report.other_days:
                    context.log.warning(f"{feed} {day}: {other.warning()}")
                reports.append(report)
            # checks run after every day is loaded (freshness and cross-day checks see the whole range)
            for day in partition_days(context):
                outcomes += run_suite(con, feed, day)
        yield dg.MaterializeResult(metadata=report_metadata(reports))
        for o in outcomes:
            if not o.success:
                context.log.warning(f"{o.day} {o.summary()}")
        yield from check_results(outcomes, f"raw_{feed}")

    return _asset


raw_requests = build_feed_asset("requests")
raw_telemetry = build_feed_asset("telemetry")
raw_prices = build_feed_asset("prices")
raw_carbon = build_feed_asset("carbon")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key,
            group_name="ingest",
            kinds={"duckdb"},
            description=f"{load_contract(name).description} From <landing>/fleet/{name}.csv (schemas/{name}.yaml).",
        )
        for key, name in zip(FLEET_KEYS, FLEET_TABLES)
    ],
    check_specs=suite_check_specs("inventory", "raw_inventory"),
)
def fleet_files(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
    """The version-controlled fleet files: inventory, deployments, models, fx_rates, regions."""
    with warehouse_connection(duckdb) as con:
        for key, name in zip(FLEET_KEYS, FLEET_TABLES):
            report = ingest_fleet_table(con, name, landing_dir())
            context.log.info(report.summary())
            yield dg.MaterializeResult(asset_key=key, metadata=report_metadata([report]))
        yield from check_results(run_suite(con, "inventory", None), "raw_inventory")
