"""The HTML report on a small hand-made warehouse (the marts' columns the report reads): every section keeps to its
period, a one-day period draws bars, many series become small multiples, negative prices stay negative, an empty
period is refused, and in headless Chromium every chart draws marks that a screenshot shows inside its plot area.
The same report on the pipeline's own warehouse is opened in tests/test_pipeline_e2e.py."""

import json
import re
from datetime import date

import duckdb
import pytest

from pipelines.outputs.report import EmptyPeriod, figures, report_data, write_report
from tests.browser import assert_fetches_nothing, coloured_pixels_per_chart, open_report

DAYS = [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)]
MODELS = [f"model-{i}" for i in range(8)]  # more than one panel's worth of series (6)


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"""
        CREATE TABLE fct_request_cost AS
        SELECT 'r' || lpad(range::VARCHAR, 5, '0') AS request_id, DATE '2026-11-01' + (range % 3)::INT AS request_date,
            ['team-a', 'team-b', NULL, 'team-a', 'team-b'][range % 5 + 1] AS tenant,
            {MODELS}[range % 8 + 1] AS model, 'fam' AS family,
            CASE WHEN range % 8 = 0 AND range % 16 = 0 THEN 'quant:int8' ELSE 'baseline' END AS technique,
            {MODELS}[range % 8 + 1] AS baseline_model,
            100 + range % 50 AS completion_tokens, 500.0 + range % 97 AS energy_j, 50.0 AS energy_uncertainty_j,
            0.1 AS emissions_g_co2e,
            CASE WHEN range % 16 = 0 THEN 0.6 ELSE 1.0 END * (0.001 + (range % 8) * 0.0002) AS fully_loaded_cost_usd,
            0.0002 AS energy_cost_usd, 0.0004 AS capex_cost_usd, 0.0001 AS overhead_cost_usd,
            CASE WHEN range % 16 = 0 THEN 0.6 ELSE 1.0 END * (0.001 + (range % 8) * 0.0002) - 0.0007
                AS idle_cost_allocated_usd,
            CASE WHEN range % 50 = 0 THEN 'partly unmetered: energy is a lower bound'
                 WHEN range % 77 = 0 THEN 'device used before in_service_from 2026-12-01: no capex, cost is partial'
            END AS cost_caveat,
            2.0 AS device_share_s, CASE WHEN range % 50 = 0 THEN 0.5 ELSE 0 END AS unmetered_s,
            0.1 AS time_to_first_token_s, 1.5 AS duration_s, false AS inventory_missing,
            false AS device_before_in_service, false AS served_from_cache
        FROM range(4800)""")
    con.execute("""
        CREATE TABLE agg_daily_model_cost AS SELECT request_date, model, count(*) AS requests,
            1e6 * sum(fully_loaded_cost_usd) / sum(completion_tokens) AS cost_per_1m_output_tokens_usd,
            sum(energy_cost_usd) AS energy_cost_usd, sum(capex_cost_usd) AS capex_cost_usd,
            sum(overhead_cost_usd) AS overhead_cost_usd, sum(idle_cost_allocated_usd) AS idle_cost_allocated_usd
        FROM fct_request_cost GROUP BY ALL""")
    con.execute("""
        CREATE TABLE agg_daily_technique_cost AS SELECT request_date, model, technique, count(*) AS requests,
            sum(fully_loaded_cost_usd) AS fully_loaded_cost_usd, sum(energy_j) / 3.6e6 AS energy_kwh,
            sum(completion_tokens) AS completion_tokens
        FROM fct_request_cost GROUP BY ALL""")
    con.execute("""
        CREATE TABLE agg_idle_cost AS SELECT d AS partition_date, t AS device_type, 2.0 AS idle_energy_kwh,
            10.0 AS metered_energy_kwh, 3.0 AS idle_cost_usd
        FROM unnest(range(DATE '2026-11-01', DATE '2026-11-04', INTERVAL 1 DAY)) AS _(d), (VALUES ('H100'), ('A100')) t(t)""")
    con.execute("""
        CREATE TABLE agg_telemetry_coverage AS SELECT partition_date::DATE AS partition_date, device_type,
            CASE WHEN device_type = 'A100' THEN 4752 ELSE 86400 END AS metered_s,
            CASE WHEN device_type = 'A100' THEN 81648 ELSE 0 END AS unmetered_s, 100 AS requests,
            5 AS requests_partly_unmetered FROM agg_idle_cost""")
    con.execute("""
        CREATE TABLE agg_region_bucket_cost AS SELECT b::DATE AS partition_date, region, b AS bucket_start,
            CASE WHEN hour(b) BETWEEN 11 AND 14 THEN -25.0 ELSE 40.0 + hour(b) END AS price_usd_per_mwh,
            0.01 * (1 + hour(b) % 5) AS energy_cost_usd, 3.6e6 AS energy_j
        FROM unnest(range(TIMESTAMP '2026-11-01', TIMESTAMP '2026-11-04', INTERVAL 1 HOUR)) AS _(b),
            (VALUES ('eu-west'), ('us-east')) r(region)""")
    con.execute("""
        CREATE TABLE cost_anomalies AS SELECT DATE '2026-11-02' AS day, 'model' AS dimension, 'model-3' AS series_key,
            'cost_per_1m_output_tokens_usd' AS metric, 10.0 AS expected, 14.0 AS observed, 40.0 AS effect_pct,
            'price spike' AS likely_cause, 5.0 AS score""")
    yield con
    con.close()


def _days_in(rows: list[dict], key: str) -> set[str]:
    return {str(r[key])[:10] for r in rows}


@pytest.mark.parametrize("start, end", [(DAYS[1], DAYS[1]), (DAYS[0], DAYS[1]), (DAYS[0], DAYS[2])])
def test_every_section_keeps_to_its_period(con, start, end):
    data = report_data(con, start, end)
    inside = {d.isoformat() for d in DAYS if start <= d <= end}
    assert _days_in(data["cost_by_model_day"], "day") == inside
    assert _days_in(data["coverage"], "day") == inside
    assert _days_in(data["prices"], "bucket_start") == inside
    assert _days_in(data["anomalies"], "day") <= inside
    (requests,) = con.execute(
        "SELECT count(*) FROM fct_request_cost WHERE request_date BETWEEN ? AND ?", [start, end]
    ).fetchone()
    assert data["totals"]["requests"] == requests == sum(r["requests"] for r in data["tenant_cost"])
    (int8,) = con.execute(
        "SELECT count(*) FROM fct_request_cost WHERE technique = 'quant:int8' AND request_date BETWEEN ? AND ?",
        [start, end],
    ).fetchone()
    [cmp] = data["comparison"]
    assert cmp["requests"] == int8
    assert cmp["cost_change_ci_low_pct"] <= cmp["cost_change_pct"] <= cmp["cost_change_ci_high_pct"] < 0
    assert {r["tenant"] for r in data["tenant_cost"]} == {"team-a", "team-b", "(no tenant)"}
    assert {r["caveat"] for r in data["caveats"]} == {
        "partly unmetered",
        "device used before in_service_from <date>",
    }


def test_an_empty_period_is_refused_naming_the_days_with_data(con):
    with pytest.raises(EmptyPeriod, match="no requests from 2026-12-01 to 2026-12-31; data exists for 2026-11-01"):
        report_data(con, date(2026, 12, 1), date(2026, 12, 31))


def test_one_day_draws_bars_and_many_series_become_small_multiples(con):
    one = figures(report_data(con, DAYS[1], DAYS[1]))
    assert {t["type"] for t in one["cost_by_model_day"]["data"]} == {"bar"}
    assert {t["type"] for t in one["coverage"]["data"]} == {"bar"}
    assert one["prices"]["data"][0]["type"] == "scatter"  # 24 hours are a line
    three = figures(report_data(con, DAYS[0], DAYS[2]))
    models = three["cost_by_model_day"]
    assert len(models["data"]) == 8 and {t["type"] for t in models["data"]} == {"scatter"}
    assert len({t["xaxis"] for t in models["data"]}) == 8  # a panel each
    assert three["cost_by_model_day"]["layout"]["xaxis"]["tickformat"] == "%Y-%m-%d"


def test_negative_prices_stay_negative_and_legends_stay_off_the_data(con):
    figs = figures(report_data(con, DAYS[0], DAYS[2]))
    prices = [y for t in figs["prices"]["data"] for y in t["y"]]
    assert min(prices) == -25.0 and max(prices) == 63.0
    assert "range" not in figs["prices"]["layout"]["yaxis"]  # autorange: below zero is shown
    for name, fig in figs.items():
        if fig is None:
            continue
        layout = fig["layout"]
        if layout.get("showlegend"):
            assert layout["legend"]["y"] >= 1 and layout["legend"]["yanchor"] == "bottom", name
        for axis in [k for k in layout if k.startswith(("xaxis", "yaxis"))]:
            assert layout[axis].get("ticks") == "outside", (name, axis)


@pytest.mark.slow
@pytest.mark.parametrize("start, end", [(DAYS[1], DAYS[1]), (DAYS[0], DAYS[2])])
def test_every_chart_draws_marks_in_a_headless_browser(con, tmp_path, start, end):
    out = write_report(con, start, end, tmp_path / "report.html")
    page = out.read_text()
    assert_fetches_nothing(page)
    expected = [k for k, v in figures(report_data(con, start, end)).items() if v is not None]
    assert len(expected) >= 12
    body, charts = open_report(out, tmp_path)
    assert body["data-errors"] == "0"
    assert body["data-charts-expected"] == body["data-charts"] == str(len(expected))
    assert sorted(charts) == sorted(expected)
    assert all(int(c["data-marks"]) > 0 for c in charts.values()), charts
    pixels = coloured_pixels_per_chart(out, tmp_path, charts)
    assert all(n >= 50 for n in pixels.values()), pixels
    data = json.loads(re.search(r'id="data">(.*?)</script>', page, re.DOTALL).group(1).replace("<\\/", "</"))
    assert data["period"] == [start.isoformat(), end.isoformat()]
