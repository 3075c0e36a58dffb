"""The whole pipeline on the shipped sample day, through the CLI and Dagster, into a fresh warehouse."""

import json
import re
import shutil
import subprocess
import sys
import time

import duckdb
import pytest

from tests.conftest import REPO, cli_env, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    home = tmp_path_factory.mktemp("infercost_home")
    started = time.time()
    demo = run_cli(["demo"], home=home, timeout=900)
    # materializing the same day again replaces it, never doubles it
    run_cli(["materialize", "--partition", "2026-11-02"], home=home, landing=REPO / "sample_logs", timeout=900)
    path = home / "warehouse.duckdb"
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    yield {"con": con, "demo_output": demo.stdout, "home": home, "started": started}
    con.close()


def one(con, sql):
    return con.execute(sql).fetchall()[0]


def test_demo_prints_the_rollups(warehouse):
    out = warehouse["demo_output"]
    assert "Daily cost per model (agg_daily_model_cost)" in out
    assert "llama-3.1-70b-instruct" in out and "spec:prompt_lookup" in out


def test_demo_is_quiet_and_its_full_log_is_kept(warehouse):
    out = warehouse["demo_output"]
    assert " - dagster - " not in out and "\x1b[" not in out and "of 139 START" not in out
    assert len(out.splitlines()) < 120, out
    assert out.rstrip().splitlines()[-1].startswith("published copy for queries:")  # ends with the answer
    assert re.search(r"requests 2026-11-02: \d+ files?, [\d,]+ rows read", out)  # each feed's load summary
    assert "dbt build: " in out
    logs = sorted((warehouse["home"] / "logs").glob("materialize-*.log"))
    assert len(logs) == 2  # the demo's run and the day materialized again, a log each
    text = logs[0].read_text()
    assert " - dagster - INFO - " in text and " OK created sql table model " in text
    assert "\x1b[" not in text  # dbt's colours are off when its output is not a terminal


# what `make manifest` (dagster-dbt prepare: dbt parse) writes into dbt/target; a run writes nothing there
MANIFEST_FILES = {
    "manifest.json",
    "manifest.concurrent-update-lock",
    "partial_parse.msgpack",
    "perf_info.json",
    "semantic_manifest.json",
    "graph.gpickle",
    "graph_summary.json",
    "dbt.log",
    "run_results.json",
}


def test_a_run_writes_dbt_files_under_its_home_not_the_source_tree(warehouse):
    touched = [
        p
        for folder in (REPO / "dbt" / "target", REPO / "dbt" / "logs")
        if folder.exists()
        for p in folder.rglob("*")
        if p.is_file() and p.stat().st_mtime >= warehouse["started"]
    ]
    assert all(p.parent == REPO / "dbt" / "target" and p.name in MANIFEST_FILES for p in touched), touched
    builds = list((warehouse["home"] / "dbt" / "target").glob("build-*/run_results.json"))
    assert len(builds) == 2  # the demo and the re-materialized day, each in its own folder


def test_every_ingested_line_is_loaded_or_quarantined(warehouse):
    con = warehouse["con"]
    bad = con.execute(
        "SELECT * FROM ingest_file_stats WHERE rows_read <> rows_loaded + rows_quarantined + rows_skipped"
    )
    assert bad.fetchall() == []
    for feed in ("requests", "telemetry", "prices"):
        (loaded,) = one(con, f"SELECT count(*) FROM raw_{feed}")
        (stats,) = one(con, f"SELECT sum(rows_loaded) FROM ingest_file_stats WHERE feed = '{feed}'")
        assert loaded == stats > 0
    # re-materializing did not double anything
    (dupes,) = one(con, "SELECT count(*) - count(DISTINCT request_id) FROM raw_requests")
    assert dupes == 0


def test_energy_is_conserved_per_device_day(warehouse):
    con = warehouse["con"]
    metered, attributed, idle = one(
        con, "SELECT sum(metered_energy_j), sum(request_energy_j), sum(idle_energy_j) FROM int_device_days"
    )
    assert metered > 0 and attributed > 0 and idle > 0
    assert attributed + idle == pytest.approx(metered, rel=1e-9)
    (pieces,) = one(con, "SELECT sum(energy_j) FROM request_energy_pieces")
    assert pieces == pytest.approx(attributed, rel=1e-12)


def test_request_costs_add_up_and_cover_every_request(warehouse):
    con = warehouse["con"]
    (n_raw,) = one(con, "SELECT count(*) FROM raw_requests")
    n_fct, n_costed = one(con, "SELECT count(*), count(total_cost_usd) FROM fct_request_cost")
    assert n_raw == n_fct == n_costed
    (worst,) = one(
        con,
        "SELECT max(abs(total_cost_usd - energy_cost_usd - capex_cost_usd - overhead_cost_usd)) FROM fct_request_cost",
    )
    assert worst < 1e-12
    # capex: requests + idle = every device's day of amortization
    req, idle, day = one(
        con,
        "SELECT sum(request_capex_cost_usd), sum(idle_capex_cost_usd), sum(day_capex_cost_usd) FROM int_device_days",
    )
    assert req + idle == pytest.approx(day, rel=1e-9)
    (caveats,) = one(con, "SELECT count(*) FROM fct_request_cost WHERE cost_caveat IS NOT NULL")
    assert caveats == 0


def test_tensor_parallel_requests_draw_from_four_devices(warehouse):
    con = warehouse["con"]
    (devices,) = one(con, "SELECT min(devices) FROM fct_request_cost WHERE model = 'llama-3.1-70b-instruct'")
    assert devices == 4


def test_rollups_cover_models_and_techniques_with_plausible_energy(warehouse):
    con = warehouse["con"]
    models = dict(con.execute("SELECT model, j_per_output_token FROM agg_daily_model_cost").fetchall())
    assert len(models) >= 4
    # calibrated to an H100: 8B decode spans 9 J (batch 1) to 1.2 J (batch 32) per output token
    assert 1.2 < models["llama-3.1-8b-instruct"] < 9.0
    assert models["llama-3.1-70b-instruct"] > models["llama-3.1-8b-instruct"]
    techniques = {t for (t,) in con.execute("SELECT DISTINCT technique FROM agg_daily_technique_cost").fetchall()}
    assert {"baseline", "quant:int8", "spec:prompt_lookup", "batching:static", "moe", "distilled"} <= techniques
    change = dict(
        con.execute(
            "SELECT technique, cost_change_pct FROM technique_savings WHERE model = 'llama-3.1-8b-instruct'"
        ).fetchall()
    )
    assert change["baseline"] == 0
    assert change["quant:int8"] < 0 < change["batching:static"]  # negative is cheaper, as in technique_comparison
    (same,) = one(
        con,
        """SELECT max(abs(s.cost_change_pct - c.cost_change_pct)) FROM technique_savings s
                        JOIN technique_comparison c USING (model, technique)""",
    )
    assert same < 1e-9


def test_idle_cost_is_reported_and_shared(warehouse):
    con = warehouse["con"]
    (idle_usd,) = one(con, "SELECT sum(idle_cost_usd) FROM agg_idle_cost WHERE requests > 0")
    (allocated,) = one(con, "SELECT sum(idle_cost_allocated_usd) FROM fct_request_cost")
    assert idle_usd > 0
    assert allocated == pytest.approx(idle_usd, rel=1e-9)  # the default policy is proportional


IDLE_AGAINST_ALLOCATION_ROWS = """
    SELECT count(*), count(*) FILTER (WHERE f.idle_cost_allocated_usd > 0), sum(f.idle_cost_allocated_usd),
           max(abs(f.idle_cost_allocated_usd - coalesce(a.usd, 0)) / greatest(abs(a.usd), 1e-12))
    FROM fct_request_cost f
    LEFT JOIN (SELECT request_id, sum(idle_cost_allocated_usd) AS usd FROM int_request_idle_allocation GROUP BY ALL) a
        USING (request_id)"""
"""Requests, those with idle cost, their idle cost, and the largest relative gap between a request's idle cost in
fct_request_cost and the sum of its int_request_idle_allocation rows."""


def test_each_request_takes_the_idle_share_its_allocation_rows_give(warehouse):
    """fct_request_cost takes the proportional shares piece by piece, int_request_idle_allocation by day and
    request: each request's idle cost is the same either way."""
    rows, shared, _, worst = one(warehouse["con"], IDLE_AGAINST_ALLOCATION_ROWS)
    assert rows > 0 and shared > rows / 2 and worst < 1e-9


def test_the_even_policy_shares_every_idle_dollar_through_the_allocation_rows(warehouse, tmp_path):
    """Under the even policy fct_request_cost joins the requests' allocation rows (not the per-piece shares): the
    day materialized again with it shares the same idle cost, split otherwise."""
    home = tmp_path / "home"
    shutil.copytree(warehouse["home"], home)
    env = cli_env(home=home, landing=REPO / "sample_logs", INFERCOST_IDLE_SHARING_POLICY="even")
    run_cli(["materialize", "--partition", "2026-11-02"], env=env, timeout=900)
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        (idle_usd,) = one(con, "SELECT sum(idle_cost_usd) FROM agg_idle_cost WHERE requests > 0")
        _, _, allocated, worst = one(con, IDLE_AGAINST_ALLOCATION_ROWS)
        con.execute(f"ATTACH '{warehouse['home'] / 'warehouse.duckdb'}' AS proportional (READ_ONLY)")
        (moved,) = one(
            con,
            """SELECT count(*) FROM fct_request_cost e JOIN proportional.fct_request_cost p USING (request_id)
               WHERE abs(e.idle_cost_allocated_usd - p.idle_cost_allocated_usd) > 1e-9""",
        )
    finally:
        con.close()
    assert idle_usd > 0 and allocated == pytest.approx(idle_usd, rel=1e-9) and worst < 1e-9
    assert moved > 0  # even shares are not proportional ones


def test_sql_command_reads_the_warehouse_and_refuses_writes(warehouse):
    ok = run_cli(["sql", "SELECT count(*) AS n FROM fct_request_cost"], home=warehouse["home"])
    assert ok.stdout.splitlines()[0].strip() == "n"
    bad = run_cli(["sql", "DELETE FROM fct_request_cost"], home=warehouse["home"], ok=False)
    assert bad.returncode != 0 and "read-only" in bad.stderr


def test_clean_sample_day_raises_no_alert_and_passes_every_check(warehouse):
    from pipelines.outputs.alerts import collect

    con = warehouse["con"]
    assert collect(con) == []
    checks, failed = one(
        con, "SELECT count(DISTINCT check_name), count(*) FILTER (WHERE NOT success) FROM quality_check_results"
    )
    assert checks >= 15 and failed == 0


def test_analysts_query_the_published_copy_while_a_run_writes(warehouse):
    home = warehouse["home"]
    assert (home / "published" / "warehouse.duckdb").exists()
    warehouse["con"].close()  # let a writer take the live file, as a running pipeline does
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "c.execute('CREATE TABLE IF NOT EXISTS _busy(x INT)'); print('writing', flush=True); "
            "time.sleep(120)",
            str(home / "warehouse.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "writing"
        ok = run_cli(
            ["sql", "SELECT model, sum(requests) AS n FROM agg_daily_model_cost GROUP BY 1 ORDER BY 1"], home=home
        )
        assert "llama-3.1-8b-instruct" in ok.stdout
        live = run_cli(["sql", "--live", "SELECT 1"], home=home, ok=False)
        assert live.returncode != 0  # the live file is locked: exactly why the published copy exists
        assert live.stderr.strip() == (
            f"infercost: the pipeline is writing to {home / 'warehouse.duckdb'} "
            f"(PID {holder.pid}); query the published copy (drop --live)"
        ), live.stderr
    finally:
        holder.kill()
        holder.wait()
        warehouse["con"] = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)


def readme_queries():
    text = (REPO / "README.md").read_text()
    section = text.split("## Ten analyst queries", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0].strip() for block in section.split("```sql")[1:]]


def test_the_readme_analyst_queries_run_as_written(warehouse):
    """...in the sandbox of `infercost sql` (one SELECT, no other file)."""
    from pipelines.warehouse.readonly_query import query_read_only

    queries = readme_queries()
    assert len(queries) == 10
    for q in queries:
        assert query_read_only(warehouse["home"] / "published" / "warehouse.duckdb", q).total_rows > 0, q


def test_technique_comparison_has_intervals_and_sizes(warehouse):
    con = warehouse["con"]
    rows = con.execute(
        "SELECT technique, cost_change_pct, cost_change_ci_low_pct, cost_change_ci_high_pct, requests, "
        "summary FROM technique_comparison WHERE model = 'llama-3.1-8b-instruct'"
    ).fetchall()
    by = {r[0]: r for r in rows}
    assert {"quant:int8", "spec:prompt_lookup", "batching:static"} <= set(by)
    tech, change, low, high, n, summary = by["quant:int8"]
    assert low < change < high < 0 and n > 1000
    assert "% cost per 1M output tokens [" in summary and "p95 latency" in summary
    assert by["batching:static"][2] > 0  # static batching costs more, with confidence
    assert "Techniques against their baselines" in warehouse["demo_output"]


def test_docs_are_generated_offline_with_every_mart(warehouse):
    run_cli(["docs"], home=warehouse["home"], timeout=600)
    site = warehouse["home"] / "docs" / "site"
    catalog = json.loads((site / "catalog.json").read_text())
    assert "model.infercost.fct_request_cost" in catalog["nodes"]
    html = (site / "static_index.html").read_text()
    assert "fct_request_cost" in html and "https://cdn" not in html.split("<script")[0]


def test_focus_export_follows_the_column_rules(warehouse, tmp_path):
    import csv

    from tests.focus_rules import check_focus_rows

    out = tmp_path / "focus.csv"
    run_cli(["export", "focus", "--out", out], home=warehouse["home"])
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    check_focus_rows(rows)
    # the fleet's cost: every device-day's request cost and idle cost
    (fleet,) = one(warehouse["con"], "SELECT sum(request_cost_usd + idle_cost_usd) FROM agg_idle_cost")
    assert sum(float(r["BilledCost"]) for r in rows) == pytest.approx(fleet, rel=1e-9)
    (tokens,) = one(warehouse["con"], "SELECT sum(prompt_tokens + completion_tokens) FROM fct_request_cost")
    assert sum(float(r["ConsumedQuantity"]) for r in rows if r["ConsumedUnit"] == "Tokens") == tokens


def test_whatif_projections_rest_on_measurements(warehouse):
    from pipelines.analysis import whatif

    con = duckdb.connect(str(warehouse["home"] / "published" / "warehouse.duckdb"), read_only=True)
    try:
        p = whatif.technique(con, "llama-3.1-8b-instruct", "quant:int8")
        (base,) = one(
            con,
            "SELECT sum(fully_loaded_cost_usd) FROM fct_request_cost "
            "WHERE model = 'llama-3.1-8b-instruct' AND technique = 'baseline'",
        )
        (change,) = one(
            con,
            "SELECT cost_change_pct FROM technique_comparison "
            "WHERE model = 'llama-3.1-8b-instruct' AND technique = 'quant:int8'",
        )
        assert p.current_usd == pytest.approx(base) and p.projected_usd == pytest.approx(base * (1 + change / 100))
        assert p.low_usd < p.projected_usd < p.high_usd < p.current_usd
        assert "n=" in p.rests_on[0] and "bootstrap" in p.rests_on[0]
        q = whatif.prices(con, "us-west", "eu-central")
        (expected,) = one(
            con,
            """SELECT sum(p.facility_energy_j / 3.6e9 * s.price_usd_per_mwh)
            FROM int_request_cost_pieces p JOIN int_prices_usd s ON s.region = 'eu-central'
             AND p.bucket_start >= s.interval_start AND p.bucket_start < s.interval_end WHERE p.region = 'us-west'""",
        )
        assert q.projected_usd == pytest.approx(expected) and q.current_usd > 0
        with pytest.raises(whatif.NoMeasurement, match="never served it there"):
            whatif.device(con, "llama-3.1-8b-instruct", "A100-SXM4")
    finally:
        con.close()
    projection = run_cli(
        ["whatif", "technique", "--model", "llama-3.1-8b-instruct", "--technique", "quant:int8"], home=warehouse["home"]
    )
    assert "rests on:" in projection.stdout


def test_emissions_follow_energy_and_the_hourly_grid_intensity(warehouse):
    con = warehouse["con"]
    (got,) = one(con, "SELECT sum(emissions_g_co2e) FROM fct_request_cost")
    (expected,) = one(
        con,
        """
        SELECT sum(p.facility_energy_j / 3.6e6 * c.g_co2e_per_kwh)
        FROM int_request_cost_pieces p JOIN stg_carbon_intensity c ON c.region = p.region
         AND p.bucket_start >= c.interval_start AND p.bucket_start < c.interval_end""",
    )
    assert got > 0 and got == pytest.approx(expected, rel=1e-9)
    (missing,) = one(con, "SELECT count(*) FROM fct_request_cost WHERE emissions_g_co2e IS NULL")
    assert missing == 0
    (kg,) = one(con, "SELECT sum(emissions_kg_co2e) FROM agg_daily_model_cost")
    assert kg == pytest.approx(got / 1000, rel=1e-9)


def test_report_renders_offline_in_a_headless_browser(warehouse, tmp_path):
    from tests.browser import assert_fetches_nothing, coloured_pixels_per_chart, open_report

    out = tmp_path / "report.html"
    run_cli(["report", "--from", "2026-11-02", "--to", "2026-11-02", "--out", out], home=warehouse["home"])
    assert_fetches_nothing(out.read_text())
    body, charts = open_report(out, tmp_path)
    assert body["data-errors"] == "0"
    assert body["data-charts"] == body["data-charts-expected"] == str(len(charts))
    # the sample day has tenants, techniques beside their baselines, two regions' prices and telemetry coverage
    assert {"tenant_cost", "comparison", "cost_split", "coverage", "prices", "energy_cost"} <= set(charts)
    assert all(int(c["data-marks"]) > 0 for c in charts.values()), charts
    pixels = coloured_pixels_per_chart(out, tmp_path, charts)
    assert all(n >= 50 for n in pixels.values()), pixels


def test_every_mart_column_is_documented(warehouse):
    import yaml

    con = warehouse["con"]
    models = {}
    for path in (REPO / "dbt" / "models").rglob("*.yml"):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            assert model.get("description"), f"{model['name']} has no description"
            models[model["name"]] = {c["name"]: c.get("description") for c in model.get("columns", [])}
    for name, documented in models.items():
        built = [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()]
        assert set(built) == set(documented), (
            f"{name}: undocumented {set(built) - set(documented)}, stale {set(documented) - set(built)}"
        )
        assert all(documented.values()), f"{name}: a column without a description"


def test_comparison_carries_utilization(warehouse):
    rows = warehouse["con"].execute("SELECT utilization, baseline_utilization FROM technique_comparison").fetchall()
    assert rows and all(0 < u <= 1 and 0 < b <= 1 for u, b in rows)


def test_every_table_python_writes_matches_its_declaration(warehouse):
    from pipelines.warehouse.tables import RAW_TABLES, WRITTEN_TABLES, table

    con = warehouse["con"]
    for name in RAW_TABLES + WRITTEN_TABLES:
        built = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {name}").fetchall()]
        declared = [
            (c.name, {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}.get(c.type, c.type)) for c in table(name).columns
        ]
        assert built == declared, name


def test_no_comparison_leaves_requests_out_on_the_clean_sample_day(warehouse):
    con = warehouse["con"]
    assert one(con, "SELECT count(*) FILTER (WHERE inventory_missing) FROM fct_request_cost") == (0,)
    assert one(con, "SELECT sum(requests_excluded + baseline_requests_excluded) FROM technique_comparison") == (0,)
    assert one(con, "SELECT sum(requests_inventory_missing) FROM agg_daily_model_cost") == (0,)
    # every sample device is inside its amortization window and no request came from a cache
    assert one(
        con,
        "SELECT count(*) FILTER (WHERE device_before_in_service OR amortization_ended "
        "OR served_from_cache) FROM fct_request_cost",
    ) == (0,)
    assert one(
        con,
        "SELECT sum(requests_before_in_service + requests_amortization_ended + requests_from_cache) "
        "FROM agg_daily_model_cost",
    ) == (0,)


def test_prefill_and_decode_energy_reach_the_marts(warehouse):
    con = warehouse["con"]
    # the sample requests log first_token_at: every attributed one is split into measured phases
    n, split, worst = one(
        con,
        "SELECT count(*), count(prefill_energy_j), "
        "max(abs(prefill_energy_j + decode_energy_j - energy_j) / nullif(energy_j, 0)) "
        "FROM fct_request_cost WHERE energy_j > 0",
    )
    assert n > 0 and split == n and worst < 1e-9
    (measured,) = one(con, "SELECT count(*) FILTER (WHERE input_share_measured) FROM fct_request_cost")
    assert measured == n
    (gap,) = one(con, "SELECT max(abs(input_cost_usd + output_cost_usd - fully_loaded_cost_usd)) FROM fct_request_cost")
    assert gap < 1e-12
    # the rollups carry the phase energy and the input/output cost per 1M tokens it splits
    prefill_kwh, decode_kwh, energy_kwh, inp, out, total = one(
        con,
        "SELECT sum(prefill_energy_kwh), sum(decode_energy_kwh), sum(energy_kwh), "
        "sum(input_cost_per_1m_input_tokens_usd * prompt_tokens), "
        "sum(output_cost_per_1m_output_tokens_usd * completion_tokens), 1e6 * sum(fully_loaded_cost_usd) "
        "FROM agg_daily_model_cost",
    )
    assert prefill_kwh + decode_kwh == pytest.approx(energy_kwh, rel=1e-9)
    assert 0 < prefill_kwh < decode_kwh
    assert inp + out == pytest.approx(total, rel=1e-9)


def test_allocation_api_query_matches_the_marts_under_every_idle_policy(warehouse):
    from pipelines.outputs.allocation import allocate
    from pipelines.outputs.metrics import metrics_text

    with duckdb.connect(str(warehouse["home"] / "published" / "warehouse.duckdb"), read_only=True) as con:
        fleet = one(con, "SELECT sum(total_cost_usd) FROM fct_request_cost")[0]
        fleet += one(con, "SELECT sum(idle_cost_usd) FROM agg_idle_cost")[0]
        built = dict(
            con.execute("SELECT model, sum(idle_cost_allocated_usd) FROM fct_request_cost GROUP BY ALL").fetchall()
        )
        for policy in ("none", "proportional", "even"):
            result = allocate(con, "7d", "model,region", policy)
            assert sum(r["total_cost_usd"] for r in result["data"]) == pytest.approx(fleet, rel=1e-9)
        # the query-time rule is the warehouse's own for the policy it was built with
        by_model = allocate(con, "7d", "model")
        assert by_model["idle_policy"] == by_model["warehouse_idle_policy"] == "proportional"
        rows = {r["model"]: r for r in by_model["data"] if not r["idle_unallocated"]}
        assert {m: r["idle_cost_usd"] for m, r in rows.items()} == pytest.approx(built, rel=1e-9)
        text = metrics_text(con)
        for model, usd in con.execute(
            "SELECT model, cost_per_1m_output_tokens_usd FROM agg_daily_model_cost "
            "WHERE request_date = (SELECT max(request_date) FROM agg_daily_model_cost)"
        ).fetchall():
            assert f'infercost_cost_per_1m_output_tokens_usd{{model="{model}"}} {usd!r}' in text


def _scans(plan: dict, out: list[dict]) -> list[dict]:
    """The table scans of a plan from ``EXPLAIN (FORMAT json)``."""
    if "Table" in plan.get("extra_info", {}):
        out.append(plan["extra_info"])
    for child in plan.get("children", []):
        _scans(child, out)
    return out


@pytest.mark.parametrize(
    "view, day_column, tables",
    [
        ("int_requests", "request_date", {"raw_requests"}),
        ("int_request_cost_pieces", "partition_date", {"request_energy_pieces", "int_device_bucket_rates"}),
    ],
)
def test_request_intermediates_are_views_whose_day_filter_reaches_every_scan(
    warehouse, tmp_path, view, day_column, tables
):
    """The two request-level intermediates are views (a stored copy held every request and piece twice), so a
    run's read of its day must reach each table's scan as a filter: a scan without it reads the whole history."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(warehouse["home"] / "warehouse.duckdb", copy)
    con = duckdb.connect(str(copy))
    assert one(con, f"SELECT count(*) FROM duckdb_views() WHERE view_name = '{view}'") == (1,)
    assert one(con, f"SELECT count(*) FROM duckdb_tables() WHERE table_name = '{view}'") == (0,)
    for table in tables:  # a second day, or DuckDB drops a filter its statistics show to hold for every row
        con.execute(f"INSERT INTO {table} BY NAME SELECT * REPLACE (partition_date + 1 AS partition_date) FROM {table}")
    plan = one(con, f"EXPLAIN (FORMAT json) SELECT * FROM {view} WHERE {day_column} = DATE '2026-11-02'")[1]
    scans = {s["Table"].split(".")[-1]: s.get("Filters", "") for s in _scans(json.loads(plan)[0], [])}
    assert tables <= set(scans), scans
    assert all("2026-11-02" in scans[t] for t in tables), scans
    day_rows = one(con, f"SELECT count(*) FROM {view} WHERE {day_column} = DATE '2026-11-02'")[0]
    assert day_rows > 0 and one(con, f"SELECT count(*) FROM {view}") == (2 * day_rows,)
    con.close()
