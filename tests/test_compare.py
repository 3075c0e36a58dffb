"""Technique comparison: the bootstrap interval covers a known effect, shrinks with more data, and is the same on
every run of the same data; requests without a usable cost are left out and counted."""

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipelines.analysis.compare import compare


def frame(n_tech, n_base, effect, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for technique, n, scale in (("quant:int8", n_tech, 1 + effect), ("baseline", n_base, 1.0)):
        tokens = rng.integers(20, 400, n)
        cost = tokens * 5e-6 * scale * rng.lognormal(0, 0.3, n)
        for t, c in zip(tokens, cost):
            rows.append(
                {
                    "family": "f",
                    "model": "m",
                    "technique": technique,
                    "baseline_model": "m",
                    "fully_loaded_cost_usd": c,
                    "completion_tokens": t,
                    "time_to_first_token_s": rng.exponential(0.2),
                    "duration_s": t * 0.05 * scale,
                }
            )
    return pd.DataFrame(rows)


def test_interval_covers_the_true_effect_and_reports_sizes():
    out = compare(frame(3000, 3000, -0.30), n_boot=400)
    (row,) = out.to_dict("records")
    assert row["cost_change_ci_low_pct"] < -30 < row["cost_change_ci_high_pct"] or abs(row["cost_change_pct"] + 30) < 2
    assert row["cost_change_ci_low_pct"] < row["cost_change_pct"] < row["cost_change_ci_high_pct"]
    assert (row["requests"], row["baseline_requests"]) == (3000, 3000)
    assert row["p95_duration_change_pct"] < 0
    assert row["summary"].startswith("m quant:int8: -3") and "n=3,000 vs 3,000" in row["summary"]


def test_interval_narrows_with_more_requests():
    small = compare(frame(200, 200, -0.1, seed=1), n_boot=400).iloc[0]
    large = compare(frame(5000, 5000, -0.1, seed=1), n_boot=400).iloc[0]
    width = lambda r: r["cost_change_ci_high_pct"] - r["cost_change_ci_low_pct"]  # noqa: E731
    assert width(large) < width(small) / 2


def test_no_baseline_no_row():
    f = frame(100, 100, 0.0)
    assert compare(f[f["technique"] != "baseline"]).empty


@pytest.mark.slow
def test_large_sides_draw_their_sums_from_the_exact_poisson_moments(monkeypatch):
    import numpy as np

    from pipelines.analysis import compare as C

    rng = np.random.default_rng(1)
    cost = rng.lognormal(0, 1, 30_000)
    tokens = rng.integers(10, 500, 30_000).astype(float) + cost * 50
    monkeypatch.setattr(C, "EXACT_BOOTSTRAP_MAX", 10**9)
    exact = np.percentile(C._side_draws(C._values_side(cost, tokens), 2000, np.random.default_rng(2)), [2.5, 97.5])
    monkeypatch.setattr(C, "EXACT_BOOTSTRAP_MAX", 20_000)
    moments = np.percentile(C._side_draws(C._values_side(cost, tokens), 2000, np.random.default_rng(2)), [2.5, 97.5])
    width = exact[1] - exact[0]
    assert np.all(np.abs(moments - exact) < 0.05 * width), (exact, moments)


def with_ids(f: pd.DataFrame) -> pd.DataFrame:
    return f.assign(request_id=[f"r{i:06d}" for i in range(len(f))])


def test_the_same_requests_in_any_order_give_identical_output():
    f = with_ids(frame(800, 900, -0.2, seed=3))
    first = compare(f, n_boot=300)
    again = compare(f, n_boot=300)
    shuffled = compare(f.sample(frac=1.0, random_state=7), n_boot=300)
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(first, shuffled)
    # a second technique does not move the first one's interval (each draws from its own generator)
    other = f[f["technique"] == "quant:int8"].assign(technique="quant:int4", request_id=lambda d: "x" + d["request_id"])
    both = compare(pd.concat([f, other]), n_boot=300)
    pd.testing.assert_series_equal(both[both["technique"] == "quant:int8"].iloc[0], first.iloc[0], check_names=False)


def test_requests_on_a_device_without_inventory_are_left_out_and_counted():
    f = with_ids(frame(1000, 1000, -0.25, seed=4)).assign(inventory_missing=False)
    clean = compare(f, n_boot=200).iloc[0]
    # half the baseline ran on a device with no inventory row: its cost is a fraction of the truth
    hit = f.index[(f["technique"] == "baseline")][:500]
    broken = f.copy()
    broken.loc[hit, "fully_loaded_cost_usd"] *= 0.1
    broken.loc[hit, "inventory_missing"] = True
    row = compare(broken, n_boot=200).iloc[0]
    assert (row["requests_excluded"], row["baseline_requests_excluded"]) == (0, 500)
    assert row["baseline_requests"] == 500 and "left out 0 vs 500 requests" in row["summary"]
    assert abs(row["cost_change_pct"] - clean["cost_change_pct"]) < 5 and row["cost_change_pct"] < 0
    # counting them would have turned the saving into a loss
    naive = compare(broken.drop(columns="inventory_missing"), n_boot=200).iloc[0]
    assert naive["cost_change_pct"] > 0


def test_stored_comparison_is_identical_whatever_the_physical_row_order():
    from pipelines.analysis.compare_store import compare_and_store

    f = with_ids(frame(600, 700, -0.3, seed=5)).assign(
        inventory_missing=False, device_before_in_service=False, served_from_cache=False, request_date=date(2026, 1, 1)
    )
    outputs = []
    for order in (f, f.iloc[::-1], f.sample(frac=1.0, random_state=1)):
        con = _warehouse(order)
        compare_and_store(con, n_boot=200)
        outputs.append(con.execute("SELECT * FROM technique_comparison ORDER BY ALL").fetchall())
        con.close()
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(outputs[0]) == 1


def test_a_comparison_left_without_a_side_says_so():
    f = with_ids(frame(300, 300, -0.25, seed=6))
    f = f.assign(inventory_missing=f["technique"] == "baseline")
    (row,) = compare(f, n_boot=100).to_dict("records")
    assert (row["requests"], row["baseline_requests"], row["baseline_requests_excluded"]) == (300, 0, 300)
    assert "no comparison" in row["summary"] and "left out 0 vs 300 requests" in row["summary"]
    assert "cost_change_pct" not in row or np.isnan(row["cost_change_pct"])


def test_cache_hits_and_out_of_service_requests_are_left_out_and_counted():
    """compare_and_store folds served_from_cache, device_before_in_service and inventory_missing into one
    cost_incomplete flag: such requests are counted, never compared."""
    f = with_ids(frame(300, 300, -0.25, seed=7))
    f = f.assign(cost_incomplete=(f.index % 10) == 0)
    (row,) = compare(f, n_boot=100).to_dict("records")
    flagged_treated = int(f[(f["technique"] != "baseline")]["cost_incomplete"].sum())
    assert row["requests_excluded"] == flagged_treated > 0
    assert row["requests"] == 300 - flagged_treated


def _warehouse(f: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("_f", f.reset_index(drop=True))
    con.execute("CREATE TABLE fct_request_cost AS SELECT * FROM _f")
    con.execute(
        "CREATE TABLE agg_daily_technique_cost AS SELECT DISTINCT request_date, model, technique, "
        "0.5 AS utilization, 1 AS devices FROM _f"
    )
    return con


def test_the_warehouse_comparison_of_a_large_side_agrees_with_the_frame_and_ignores_row_order():
    """Above EXACT_BOOTSTRAP_MAX requests a side's sums and quantiles are DuckDB aggregates (exact decimal sums):
    the stored row equals compare() on the same requests to rounding, and any physical order gives the same row."""
    from pipelines.analysis.compare_store import compare_and_store

    rng = np.random.default_rng(8)
    n = 25_000
    f = pd.DataFrame(
        {
            "request_id": [f"r{i:06d}" for i in range(2 * n)],
            "family": "f",
            "model": "m",
            "technique": ["quant:int8"] * n + ["baseline"] * n,
            "baseline_model": "m",
            "fully_loaded_cost_usd": rng.lognormal(-11, 1, 2 * n) * np.r_[np.full(n, 0.7), np.ones(n)],
            "completion_tokens": rng.integers(20, 400, 2 * n),
            "time_to_first_token_s": rng.exponential(0.2, 2 * n),
            "duration_s": rng.exponential(5, 2 * n),
            "inventory_missing": (np.arange(2 * n) % 97) == 0,
            "device_before_in_service": False,
            "served_from_cache": False,
            "request_date": date(2026, 1, 1),
        }
    )
    stored = []
    for order in (f, f.sample(frac=1.0, random_state=3)):
        con = _warehouse(order)
        compare_and_store(con, n_boot=200)
        stored.append(con.sql("SELECT * EXCLUDE (utilization, baseline_utilization) FROM technique_comparison").df())
        con.close()
    pd.testing.assert_frame_equal(stored[0], stored[1])
    expected = compare(f.rename(columns={"inventory_missing": "cost_incomplete"}), n_boot=200)
    (row,) = stored[0].to_dict("records")
    (want,) = expected.to_dict("records")
    assert row["requests_excluded"] == want["requests_excluded"] > 0 and row["requests"] == want["requests"] > 20_000
    for column, value in want.items():
        if isinstance(value, float):
            assert row[column] == pytest.approx(value, rel=1e-12), column
        else:
            assert row[column] == value, column
