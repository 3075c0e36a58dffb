"""The sample day with one inventory row removed (as if quarantined): the requests on that device carry a caveat
into fct_request_cost and every rollup, and the technique comparisons leave them out and say how many."""

import os
import subprocess
import sys

import duckdb
import pytest

from tests.conftest import REPO

# the GPU serving half of llama-3.1-8b-instruct's untreated (baseline) requests on the sample day
DEVICE = "GPU-7f6c8da4-4135-41b5-a575-f21de76186b1"
MODEL = "llama-3.1-8b-instruct"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    root = tmp_path_factory.mktemp("inventory_missing")
    landing = root / "landing"
    landing.mkdir()
    for feed in ("requests", "telemetry", "prices", "carbon"):
        (landing / feed).symlink_to(REPO / "sample_logs" / feed)
    fleet = landing / "fleet"
    fleet.mkdir()
    for src in (REPO / "sample_logs" / "fleet").iterdir():
        lines = src.read_text().splitlines(keepends=True)
        if src.name == "inventory.csv":
            kept = [x for x in lines if not x.startswith(DEVICE)]
            assert len(kept) == len(lines) - 1
            lines = kept
        (fleet / src.name).write_text("".join(lines))
    env = {**os.environ, "INFERCOST_HOME": str(root / "home"), "INFERCOST_LANDING": str(landing)}
    env.pop("INFERCOST_WAREHOUSE", None)
    env.pop("DAGSTER_HOME", None)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    run = subprocess.run([sys.executable, "-m", "pipelines.cli", "materialize", "--partition", "2026-11-02"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    con = duckdb.connect(str(root / "home" / "warehouse.duckdb"), read_only=True)
    yield con
    con.close()


def one(con, sql):
    return con.execute(sql).fetchall()[0]


def test_requests_on_the_device_carry_the_caveat_into_the_fact_table(warehouse):
    on_device, = one(warehouse, f"SELECT count(DISTINCT request_id) FROM request_energy_pieces "
                                f"WHERE device_id = '{DEVICE}'")
    flagged, caveated = one(warehouse, "SELECT count(*) FILTER (WHERE inventory_missing), "
                                       "count(*) FILTER (WHERE cost_caveat LIKE 'device missing from inventory%') "
                                       "FROM fct_request_cost")
    assert on_device > 1000 and flagged == caveated == on_device


def test_every_rollup_counts_them(warehouse):
    flagged, = one(warehouse, "SELECT count(*) FROM fct_request_cost WHERE inventory_missing")
    for rollup in ("agg_daily_model_cost", "agg_daily_technique_cost", "agg_daily_device_type_cost"):
        counted, caveated = one(warehouse, f"SELECT sum(requests_inventory_missing), sum(requests_with_caveat) "
                                           f"FROM {rollup}")
        assert counted == flagged and caveated >= flagged, rollup
    baseline, = one(warehouse, f"SELECT requests_inventory_missing FROM agg_daily_technique_cost "
                               f"WHERE model = '{MODEL}' AND technique = 'baseline'")
    assert baseline == flagged
    excluded, = one(warehouse, f"SELECT requests_excluded FROM technique_savings "
                               f"WHERE model = '{MODEL}' AND technique = 'baseline'")
    assert excluded == flagged


def test_the_comparisons_leave_them_out_and_say_so(warehouse):
    flagged, = one(warehouse, "SELECT count(*) FROM fct_request_cost WHERE inventory_missing")
    change, excluded, base_n, summary = one(warehouse, f"""
        SELECT cost_change_pct, baseline_requests_excluded, baseline_requests, summary FROM technique_comparison
        WHERE model = '{MODEL}' AND technique = 'quant:int8'""")
    assert excluded == flagged and base_n > 1000
    assert f"left out 0 vs {flagged:,} requests" in summary
    # the clean sample day measures about -25 %; the remaining baseline requests tell the same story
    assert -30 < change < -20
    saving, = one(warehouse, f"SELECT cost_change_pct FROM technique_savings "
                             f"WHERE model = '{MODEL}' AND technique = 'quant:int8'")
    assert saving == pytest.approx(change, abs=1e-9)
