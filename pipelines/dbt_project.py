"""The dbt project as Dagster sees it; this module holds only the DbtProject."""

from pathlib import Path

from dagster_dbt import DbtProject

dbt_project = DbtProject(
    project_dir=Path(__file__).resolve().parents[1] / "dbt", profiles_dir=Path(__file__).resolve().parents[1] / "dbt"
)
dbt_project.prepare_if_dev()
