"""The dbt project's models as Dagster assets; dbt tests become asset checks."""


import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from pipelines.dbt_project import dbt_project
from pipelines.defs.partitions import daily_partitions, single_run
from pipelines.settings import current


class InfercostTranslator(DagsterDbtTranslator):
    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            # sources are the tables the Python assets write, keyed by table name
            return spec.replace_attributes(key=dg.AssetKey(props["name"]))
        layer = props["fqn"][1] if len(props["fqn"]) > 2 else "dbt"
        return spec.replace_attributes(group_name=layer)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    dagster_dbt_translator=InfercostTranslator(),
    partitions_def=daily_partitions,
    backfill_policy=single_run,
)
def cost_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Rebuild the cost models over every loaded day (the marts are small; their inputs are partitioned)."""
    yield from dbt.cli(["build", "--vars", json.dumps(current().dbt_vars)], context=context).stream()
