"""The Dagster code location loads, with the expected assets, checks, job and schedule (a snapshot)."""

import dagster as dg

from pipelines.definitions import defs

EXPECTED_ASSETS = {
    # ingest
    "raw_requests",
    "raw_telemetry",
    "raw_prices",
    "raw_carbon",
    "raw_inventory",
    "raw_deployments",
    "raw_models",
    "raw_fx_rates",
    "raw_regions",
    "raw_clock_offsets",
    # attribution
    "request_energy_pieces",
    "device_energy_buckets",
    "unattributed_requests",
    "clock_skew_checks",
    # dbt
    "stg_requests",
    "stg_prices",
    "stg_regions",
    "stg_carbon_intensity",
    "stg_inventory",
    "stg_models",
    "stg_fx_rates",
    "stg_request_energy_pieces",
    "stg_device_energy_buckets",
    "int_requests",
    "int_prices_filled",
    "int_prices_usd",
    "int_fx_rate_periods",
    "int_inventory_usd",
    "int_device_bucket_rates",
    "int_request_cost_pieces",
    "int_device_days",
    "int_device_request_groups",
    "int_request_idle_allocation",
    "fct_request_cost",
    "agg_daily_model_cost",
    "agg_daily_technique_cost",
    "agg_idle_cost",
    "technique_savings",
    "agg_telemetry_coverage",
    "agg_daily_device_type_cost",
    "agg_region_bucket_cost",
    "fct_electricity_prices",
    "agg_daily_label_cost",
    # alerts
    "cost_anomalies",
    "budget_status",
    # publish
    "published_warehouse",
    "raw_telemetry_lake",
    "technique_comparison",
}


def test_asset_graph_snapshot():
    graph = defs.get_repository_def().asset_graph
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == EXPECTED_ASSETS
    # the dbt models hang off the Python assets, not off loose source keys
    fct = graph.get(dg.AssetKey("stg_request_energy_pieces"))
    assert dg.AssetKey("request_energy_pieces") in fct.parent_keys


def test_dbt_tests_are_asset_checks():
    checks = defs.get_repository_def().asset_graph.asset_check_keys
    by_name = {c.name: c.asset_key.to_user_string() for c in checks}
    assert len(checks) > 50
    # the reconciliations are checks on the models they reconcile
    assert by_name["assert_energy_conserved"] == "int_device_days"
    assert by_name["assert_capex_conserved"] == "int_device_days"
    assert by_name["assert_cost_components_add_up"] == "fct_request_cost"
    assert "accepted_range_fct_request_cost_energy_j__0" in by_name


def test_daily_job_and_schedule_for_the_previous_day():
    job = defs.resolve_job_def("daily_cost_job")
    assert job.partitions_def is not None
    schedule = defs.resolve_schedule_def("daily_cost_job_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone in (None, "UTC")


def test_models_stored_without_a_column_they_gained_are_dropped_for_one_full_build(tmp_path):
    import duckdb

    from pipelines.defs.dbt import REGRAINED, drop_regrained_models

    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE int_device_days (partition_date DATE, device_id VARCHAR, requests BIGINT)")
    con.execute("CREATE TABLE int_request_idle_allocation (partition_date DATE, request_id VARCHAR)")
    con.close()
    assert REGRAINED["int_device_days"] == "request_direct_cost_usd"
    assert drop_regrained_models(path) == ["int_device_days"]  # the other has its column: kept
    con = duckdb.connect(str(path))
    tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    con.close()
    assert tables == {"int_request_idle_allocation"}
    assert drop_regrained_models(tmp_path / "none.duckdb") == []
