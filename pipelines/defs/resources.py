import contextlib
import os
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource

from pipelines.dbt_project import dbt_project
from pipelines.warehouse.connection import configure, warehouse_path

# Dagster and dbt read the same file: dbt's profiles.yml reads INFERCOST_WAREHOUSE
os.environ.setdefault("INFERCOST_WAREHOUSE", str(warehouse_path()))

duckdb_resource = DuckDBResource(database=str(warehouse_path()))
# the dbt installed beside this Python, whatever PATH says
_dbt = Path(sys.executable).parent / "dbt"
dbt_resource = DbtCliResource(project_dir=dbt_project, profiles_dir=str(dbt_project.profiles_dir),
                              dbt_executable=str(_dbt) if _dbt.exists() else "dbt")


@contextlib.contextmanager
def warehouse_connection(duckdb: DuckDBResource):
    """A connection with infercost's session settings (UTC dates, a memory cap)."""
    with duckdb.get_connection() as con:
        yield configure(con)
