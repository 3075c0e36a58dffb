import contextlib
import os
import shutil
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource

from pipelines.dbt_project import dbt_project
from pipelines.defs.child_process import dies_with_parent
from pipelines.settings import current
from pipelines.warehouse.connection import configure, connect, dbt_target_dir, warehouse_path

# Dagster and dbt read the same file: dbt's profiles.yml reads INFERCOST_WAREHOUSE
os.environ.setdefault("INFERCOST_WAREHOUSE", str(warehouse_path()))


class WarehouseResource(DuckDBResource):
    """The live warehouse, opened like every infercost writer: waiting for another process's lock with backoff for
    at most INFERCOST_LOCK_WAIT_S, then failing with a message naming the file (pipelines/warehouse/locks.py)."""

    @contextlib.contextmanager
    def get_connection(self):
        con = connect(self.database)
        try:
            yield con
        finally:
            con.close()


duckdb_resource = WarehouseResource(database=str(warehouse_path()))


def _dbt_executable() -> str:
    """The dbt installed beside this Python, whatever PATH says, behind a launcher that makes it die with the
    process that starts it (pipelines/defs/child_process.py)."""
    beside = Path(sys.executable).parent / "dbt"
    found = str(beside) if beside.exists() else shutil.which("dbt")
    if not found:
        return "dbt"  # dagster-dbt names what is missing
    return dies_with_parent(found, dbt_target_dir().parent / "bin")


dbt_resource = DbtCliResource(
    project_dir=dbt_project, profiles_dir=str(dbt_project.profiles_dir), dbt_executable=_dbt_executable()
)


@contextlib.contextmanager
def warehouse_connection(duckdb: DuckDBResource):
    """A connection with infercost's session settings (UTC dates, a memory cap)."""
    with duckdb.get_connection() as con:
        yield configure(con)


class EngineResource(dg.ConfigurableResource):
    """Where the row-level steps run (INFERCOST_ENGINE): ``duckdb`` in this process, or ``spark`` on the cluster of
    ``spark_master`` (INFERCOST_SPARK_MASTER), with extra Spark settings in ``spark_conf`` (what dagster-pyspark's
    PySparkResource takes as spark_config). The session is created on first use, in the step's process."""

    engine: str = "duckdb"
    spark_master: str = "local[*]"
    spark_conf: dict = {}

    @property
    def on_spark(self) -> bool:
        return self.engine == "spark"

    def spark(self):
        from pipelines.spark.session import spark_session

        return spark_session(self.spark_master, conf=dict(self.spark_conf))


engine_resource = EngineResource(engine=current().engine, spark_master=current().spark_master)
