"""One asset per feed (requests, telemetry, prices), daily partitioned, and the fleet files."""


import dagster as dg
from dagster_duckdb import DuckDBResource

from pipelines.defs.partitions import daily_partitions, single_run
from pipelines.defs.resources import warehouse_connection
from pipelines.lib.contracts import FLEET_TABLES, load_contract
from pipelines.lib.ingest import IngestReport, day_range, ingest_feed, ingest_fleet_table
from pipelines.lib.warehouse import landing_dir

FLEET_KEYS = [dg.AssetKey(f"raw_{name}") for name in FLEET_TABLES]


def report_metadata(reports: list[IngestReport]) -> dict:
    files = [f for r in reports for f in r.files]
    table = "| partition | file | read | loaded | quarantined |\n|---|---|---:|---:|---:|\n" + "\n".join(
        f"| {r.partition_date or ''} | {f.source_file} | {f.rows_read} | {f.rows_loaded} | {f.rows_quarantined} |"
        for r in reports for f in r.files
    )
    return {
        "rows_read": sum(f.rows_read for f in files),
        "rows_loaded": sum(f.rows_loaded for f in files),
        "rows_quarantined": sum(f.rows_quarantined for f in files),
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
        description=f"{contract.description} Files: <landing>/{feed}/. Contract: schemas/{feed}.yaml "
        f"(v{contract.version}). Bad rows go to ingest_quarantine; per-file counts to ingest_file_stats.",
    )
    def _asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
        window = context.partition_time_window
        days = day_range(window.start.date(), (window.end.date()).fromordinal(window.end.date().toordinal() - 1))
        reports = []
        with warehouse_connection(duckdb) as con:
            for day in days:
                report = ingest_feed(con, feed, landing_dir(), day)
                context.log.info(report.summary())
                reports.append(report)
        return dg.MaterializeResult(metadata=report_metadata(reports))

    return _asset


raw_requests = build_feed_asset("requests")
raw_telemetry = build_feed_asset("telemetry")
raw_prices = build_feed_asset("prices")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key,
            group_name="ingest",
            kinds={"duckdb"},
            description=f"{load_contract(name).description} From <landing>/fleet/{name}.csv "
            f"(schemas/{name}.yaml).",
        )
        for key, name in zip(FLEET_KEYS, FLEET_TABLES)
    ],
)
def fleet_files(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
    """The version-controlled fleet files: inventory, deployments, models, fx_rates, regions."""
    with warehouse_connection(duckdb) as con:
        for key, name in zip(FLEET_KEYS, FLEET_TABLES):
            report = ingest_fleet_table(con, name, landing_dir())
            context.log.info(report.summary())
            yield dg.MaterializeResult(asset_key=key, metadata=report_metadata([report]))
