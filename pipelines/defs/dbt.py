"""The dbt project's models as Dagster assets; dbt tests become asset checks."""

import json
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets
from dagster_dbt.errors import DagsterDbtCliRuntimeError

from pipelines.dbt_project import dbt_project
from pipelines.defs.partitions import daily_partitions, partition_days, single_run
from pipelines.settings import current
from pipelines.warehouse.connection import connect, dbt_target_dir, warehouse_path
from pipelines.warehouse.locks import WarehouseLocked, wait_for_write_lock


class InfercostTranslator(DagsterDbtTranslator):
    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            # sources are the tables the Python assets write, keyed by table name
            return spec.replace_attributes(key=dg.AssetKey(props["name"]))
        layer = props["fqn"][1] if len(props["fqn"]) > 2 else "dbt"
        return spec.replace_attributes(group_name=layer)


# the latest runs' dbt folders kept under INFERCOST_HOME/dbt/target (about 5 MB each), for their logs and artifacts
KEEP_DBT_RUNS = 5


def dbt_target_path(run_id: str) -> Path:
    """This run's own folder for dbt's artifacts and log, under INFERCOST_HOME (never the source tree); the oldest
    run folders beyond KEEP_DBT_RUNS are removed."""
    root = dbt_target_dir()
    root.mkdir(parents=True, exist_ok=True)
    runs = sorted(
        (p for p in root.iterdir() if p.is_dir() and p.name.startswith("build-")), key=lambda p: p.stat().st_mtime
    )
    for old in runs[: max(0, len(runs) - KEEP_DBT_RUNS + 1)]:
        shutil.rmtree(old, ignore_errors=True)
    return root / f"build-{run_id[:8]}-{uuid.uuid4().hex[:6]}"


# incremental models that gained a column (int_request_idle_allocation its day column when it became incremental,
# int_device_days the direct cost the idle shares are proportional to): a warehouse built before holds them without
# it, so they are dropped and dbt builds them once over every day
REGRAINED = {"int_request_idle_allocation": "partition_date", "int_device_days": "request_direct_cost_usd"}


def drop_regrained_models(path) -> list[str]:
    """Drop the REGRAINED models a warehouse holds without their new column; returns their names."""
    if not path.exists():
        return []
    con = connect(path)
    try:
        dropped = []
        for model, column in REGRAINED.items():
            columns = {
                c
                for (c,) in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [model]
                ).fetchall()
            }
            if columns and column not in columns:
                con.execute(f"DROP TABLE {model}")
                dropped.append(model)
        return dropped
    finally:
        con.close()


def run_vars(context: dg.AssetExecutionContext) -> dict:
    """dbt's vars for a run: the settings, and the run's first and last day (partition_start, partition_end)."""
    days = partition_days(context)
    return {**current().dbt_vars, "partition_start": days[0].isoformat(), "partition_end": days[-1].isoformat()}


@dbt_assets(
    manifest=dbt_project.manifest_path,
    dagster_dbt_translator=InfercostTranslator(),
    partitions_def=daily_partitions,
    backfill_policy=single_run,
)
def cost_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Build the cost models for the run's days: the incremental models delete and insert those days' rows
    (dbt/macros/run_days.sql), the windowed rollups read their window; the days go to dbt as vars.

    dbt-duckdb opens the live file itself, once per invocation (profiles.yml: keep_open), and fails at once if
    another process holds it. So the step first waits for the lock like every writer (INFERCOST_LOCK_WAIT_S);
    profiles.yml's connect retries cover the second in which dbt starts."""
    path = warehouse_path()
    wait_for_write_lock(path)
    for model in drop_regrained_models(path):
        context.log.info(f"{model}: built before it had {REGRAINED[model]}; rebuilt over every day once")
    try:
        target = dbt_target_path(context.run.run_id)
        yield from dbt.cli(
            ["build", "--vars", json.dumps(run_vars(context))], context=context, target_path=target
        ).stream()
    except DagsterDbtCliRuntimeError as exc:
        if "Could not set lock" in str(exc):
            raise WarehouseLocked(
                f"dbt could not open {path}: another process holds it (DuckDB lets one process "
                "write the file and none open it meanwhile). Close it and run again."
            ) from exc
        raise
