"""A SparkSession configured the way the spark engine needs it (pyspark imported here, lazily).

The session's time zone is UTC (the contracts' timestamps are UTC), Arrow carries the rows between the JVM and the
Python workers, and Parquet timestamps are written as microseconds (what DuckDB and the contracts use). Executors
run this interpreter (PYSPARK_PYTHON) with the repo on their path, which is what a local or local-cluster master
needs; on a real cluster the executors' image or ``--py-files`` must hold the same package (README, Running on a
cluster).
"""

from __future__ import annotations

import os
import sys

from pipelines.settings import REPO_ROOT, current, environment

# the engine's session settings; spark-defaults.conf (SPARK_CONF_DIR) or spark-submit --conf may add to them
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.compression.codec": "zstd",
    # a day's rollups are small; a handful of shuffle partitions per core keeps task overhead down
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


def spark_session(master: str | None = None, app_name: str = "infercost", conf: dict | None = None):
    """The active session, else a new one on ``master`` (default INFERCOST_SPARK_MASTER)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    builder = SparkSession.builder.master(master or current().spark_master).appName(app_name)
    for key, value in {
        **SESSION_CONF,
        "spark.executorEnv.PYTHONPATH": path,
        "spark.executorEnv.PYSPARK_PYTHON": os.environ["PYSPARK_PYTHON"],
        "spark.executorEnv.GX_ANALYTICS_ENABLED": "false",
        # the executors read the driver's settings (memory cap, line reader...) as the driver does
        **{f"spark.executorEnv.{k}": v for k, v in environment().items()},
        **(conf or {}),
    }.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def spark_schema(arrow_schema):
    """The Spark schema of an Arrow schema (for mapInArrow / applyInArrow outputs)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(arrow_schema)
