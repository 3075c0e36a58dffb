"""The sample day with one inventory row removed (as if quarantined): the requests on that device carry a caveat
into fct_request_cost and every rollup, and the technique comparisons leave them out and say how many."""

import duckdb
import pytest

from tests.conftest import run_cli, sample_landing

pytestmark = pytest.mark.e2e

# one of the four GPUs of the tensor-parallel replica serving llama-3.1-70b-instruct's untreated (baseline)
# requests: without its inventory row, those requests' cost is three quarters of the truth, not null
DEVICE = "GPU-500320d4-f8f2-4545-b2d7-e6de5793354a"
MODEL = "llama-3.1-70b-instruct"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    root = tmp_path_factory.mktemp("inventory_missing")

    def without_device(lines):
        kept = [x for x in lines if not x.startswith(DEVICE)]
        assert len(kept) == len(lines) - 1
        return kept

    landing = sample_landing(root, edit_inventory=without_device)
    run_cli(["materialize", "--partition", "2026-11-02"], home=root / "home", landing=landing, timeout=900)
    con = duckdb.connect(str(root / "home" / "warehouse.duckdb"), read_only=True)
    yield con
    con.close()


def one(con, sql):
    return con.execute(sql).fetchall()[0]


def test_requests_on_the_device_carry_the_caveat_into_the_fact_table(warehouse):
    (on_device,) = one(
        warehouse, f"SELECT count(DISTINCT request_id) FROM request_energy_pieces WHERE device_id = '{DEVICE}'"
    )
    flagged, caveated, partial = one(
        warehouse,
        """
        SELECT count(*) FILTER (WHERE inventory_missing),
               count(*) FILTER (WHERE cost_caveat LIKE 'device missing from inventory%'),
               count(*) FILTER (WHERE inventory_missing AND fully_loaded_cost_usd > 0) FROM fct_request_cost""",
    )
    # a partial cost, not a missing one: without the flag it would pass for a complete cost
    assert on_device > 1000 and flagged == caveated == partial == on_device


def test_every_rollup_counts_them(warehouse):
    (flagged,) = one(warehouse, "SELECT count(*) FROM fct_request_cost WHERE inventory_missing")
    for rollup in ("agg_daily_model_cost", "agg_daily_technique_cost", "agg_daily_device_type_cost"):
        counted, caveated = one(
            warehouse, f"SELECT sum(requests_inventory_missing), sum(requests_with_caveat) FROM {rollup}"
        )
        assert counted == flagged and caveated >= flagged, rollup
    (baseline,) = one(
        warehouse,
        f"SELECT requests_inventory_missing FROM agg_daily_technique_cost "
        f"WHERE model = '{MODEL}' AND technique = 'baseline'",
    )
    assert baseline == flagged
    (excluded,) = one(
        warehouse, f"SELECT requests_excluded FROM technique_savings WHERE model = '{MODEL}' AND technique = 'baseline'"
    )
    assert excluded == flagged


def test_the_comparisons_leave_them_out_and_say_so(warehouse):
    from pipelines.analysis.compare import compare

    (flagged,) = one(warehouse, "SELECT count(*) FROM fct_request_cost WHERE inventory_missing")
    rows = warehouse.execute(f"""
        SELECT technique, cost_change_pct, requests, baseline_requests, baseline_requests_excluded, summary
        FROM technique_comparison WHERE baseline_model = '{MODEL}' ORDER BY technique""").fetchall()
    # every baseline request of the 70B ran on the device: nothing is left to compare with, and the table says so
    assert [r[0] for r in rows] == ["moe", "quant:fp8"]
    for _technique, change, n, n_base, excluded, summary in rows:
        assert change is None and n > 1000 and n_base == 0 and excluded == flagged
        assert f"left out 0 vs {flagged:,} requests" in summary and "no comparison" in summary
    (saving,) = one(
        warehouse, f"SELECT cost_change_pct FROM technique_savings WHERE model = '{MODEL}' AND technique = 'quant:fp8'"
    )
    assert saving is None
    # the 8B comparisons, on other devices, are as on the clean day (about -25 %)
    (int8,) = one(
        warehouse,
        "SELECT cost_change_pct FROM technique_comparison "
        "WHERE model = 'llama-3.1-8b-instruct' AND technique = 'quant:int8'",
    )
    assert -30 < int8 < -20
    # counting the partial costs would have reported a different, wrong change (the clean day's is about -27 %)
    frame = warehouse.sql(
        "SELECT family, model, technique, baseline_model, fully_loaded_cost_usd, completion_tokens, "
        "time_to_first_token_s, duration_s FROM fct_request_cost"
    ).df()
    naive = compare(frame, n_boot=50).set_index("technique").loc["quant:fp8", "cost_change_pct"]
    print(f"quant:fp8 counting partial costs: {naive:+.1f} %")
    assert naive > -15
