"""The sample day (sample_logs/) through both engines, then dbt's marts over each: every mart equal, floats within
1e-9 relative (energy per request, costs far closer than a cent), and the same quarantine rows. The spark engine
runs on conftest's multi-process cluster; its warehouse reads the lake's Parquet through views."""

from datetime import date

import pytest

from pipelines.attribution.day import attribute_day
from pipelines.devtools.bench.engine_marts import MARTS, sorted_rows
from pipelines.ingest.loader import ingest_feed, ingest_fleet_table
from pipelines.warehouse.connection import connect
from pipelines.warehouse.contracts import FLEET_TABLES
from tests.conftest import REPO, cli_env, dbt_build
from tests.test_spark_engine import assert_same_rows

DAY = date(2026, 11, 2)
LANDING = REPO / "sample_logs"


def _build(home, spark=None):
    con = connect(home / "warehouse.duckdb")
    for name in FLEET_TABLES:
        ingest_fleet_table(con, name, LANDING)
    for feed in ("prices", "carbon"):
        ingest_feed(con, feed, LANDING, DAY)
    if spark is None:
        for feed in ("requests", "telemetry"):
            ingest_feed(con, feed, LANDING, DAY)
        attribute_day(con, DAY)
    else:
        from pipelines.spark.attribution import attribute_day_spark
        from pipelines.spark.ingest import ingest_feed_spark

        for feed in ("requests", "telemetry"):
            ingest_feed_spark(spark, con, feed, LANDING, DAY, root=home / "lake")
        attribute_day_spark(spark, con, DAY, root=home / "lake")
    con.close()
    dbt_build(home, cli_env(home=home, warehouse=home / "warehouse.duckdb"), timeout=900)
    return connect(home / "warehouse.duckdb", read_only=True)


@pytest.mark.e2e
def test_the_sample_day_gives_the_same_marts_on_both_engines(spark, tmp_path):
    duck = _build(tmp_path / "duckdb")
    on_spark = _build(tmp_path / "spark", spark)
    assert on_spark.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = 'raw_telemetry'"
    ).fetchall() == [("VIEW",)]
    for name in [*MARTS, "ingest_quarantine", "ingest_file_stats", "unattributed_requests"]:
        assert_same_rows(sorted_rows(duck, name)[1], sorted_rows(on_spark, name)[1], name)
    n = duck.execute("SELECT count(*), sum(total_cost_usd) FROM fct_request_cost").fetchall()[0]
    assert n[0] > 100_000 and n[1] > 0
