"""Request labels, budgets and shadow prices on an hour of the sample fleet: labels from request metadata reach
fct_request_cost, agg_daily_label_cost and FOCUS Tags; budgets add up to what the marts say, forecast by the burn
rate and alert once; shadow prices price the same tokens at API list prices and give the break-even utilization."""

import gzip
import json
import shutil

import duckdb
import pytest

from pipelines.analysis.budgets import BudgetError, load_budgets
from pipelines.analysis.shadow_price import PriceFileError, break_even_utilization, load_api_prices
from tests.conftest import REPO, cli_env, run_cli, sample_landing, sample_telemetry_hour

DAY = "2026-11-02"
HOST = "us-west-h100-small-001"
PROJECTS = ("search", "chat", "agents")

BUDGETS = """
budgets:
  - {name: team-search, tenant: team-search, limit: 1000000, unit: usd}
  - {name: search-project-tiny, label: {project: search}, limit: 0.0001, unit: usd}
  - {name: fleet-usd, limit: 1000000, unit: usd}
  - {name: fleet-kwh, limit: 1000000, unit: kwh}
  - {name: chat-carbon, label: {project: chat}, limit: 1000000, unit: kg_co2e}
"""
API_PRICES = "model,input_usd_per_1m_tokens,output_usd_per_1m_tokens,cached_input_usd_per_1m_tokens\n"


def _requests() -> list[str]:
    """The host's requests of the day's first hour, with metadata.project (three values, one request in four
    without), metadata.feature, and metadata.secret that no setting names (so it must not be kept)."""
    out = []
    with gzip.open(REPO / "sample_logs" / "requests" / f"{DAY}.jsonl.gz", "rt") as f:
        for line in f:
            r = json.loads(line)
            if r.get("host") != HOST or not r["started_at"].startswith(f"{DAY}T00:"):
                continue
            i = len(out)
            if i % 4:
                r["metadata"]["project"] = PROJECTS[i % 3]
            r["metadata"]["feature"] = "autocomplete" if i % 2 else "answer"
            r["metadata"]["secret"] = "sk-do-not-keep"
            out.append(json.dumps(r) + "\n")
    return out


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("finops")
    config, home = root / "config", root / "home"
    landing = sample_landing(root, linked=("prices", "carbon"))
    (landing / "requests" / f"{DAY}.jsonl").write_text("".join(_requests()))
    sample_telemetry_hour(landing, HOST, DAY)
    config.mkdir()
    (config / "budgets.yaml").write_text(BUDGETS)
    env = cli_env(
        home=home, landing=landing, INFERCOST_CONFIG_DIR=str(config), INFERCOST_REQUEST_LABELS="project,feature"
    )
    run_cli(["materialize", "--partition", DAY], env=env, timeout=900)
    live = home / "warehouse.duckdb"
    copy = root / "read.duckdb"  # the tests read a copy: the CLI opens the published one
    shutil.copy(live, copy)
    con = duckdb.connect(str(copy), read_only=True)
    yield con, env, config
    con.close()


@pytest.mark.e2e
def test_labels_reach_the_requests_and_the_label_rollup(fleet):
    con, _, _ = fleet
    labels = [json.loads(x) if x else None for (x,) in con.execute("SELECT labels FROM fct_request_cost").fetchall()]
    assert all(x is not None for x in labels)  # every request has a feature
    assert {x.get("project") for x in labels} == {*PROJECTS, None}
    assert not any("secret" in x for x in labels), "a metadata key no setting names was kept"
    got = con.execute(
        "SELECT label_value, requests, fully_loaded_cost_usd FROM agg_daily_label_cost "
        "WHERE label_key = 'project' ORDER BY 1"
    ).fetchall()
    want = con.execute(
        "SELECT json_extract_string(labels, '$.project') AS p, count(*), sum(fully_loaded_cost_usd) "
        "FROM fct_request_cost WHERE p IS NOT NULL GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert [g[:2] for g in got] == [w[:2] for w in want] and len(got) == 3
    for g, w in zip(got, want):
        assert g[2] == pytest.approx(w[2], rel=1e-12)
    # every request carries a feature: that key's rollup is the whole hour's cost
    total = con.execute("SELECT sum(fully_loaded_cost_usd) FROM fct_request_cost").fetchall()[0][0]
    feature = con.execute(
        "SELECT sum(fully_loaded_cost_usd) FROM agg_daily_label_cost WHERE label_key = 'feature'"
    ).fetchall()[0][0]
    assert feature == pytest.approx(total, rel=1e-12)


@pytest.mark.e2e
def test_focus_tags_carry_the_labels(fleet, tmp_path):
    con, _, _ = fleet
    from pipelines.outputs.focus import focus_sql

    # the request rows (idle capacity no request was charged for has rows of its own, tagged idle: unallocated)
    rows = con.execute(f"SELECT Tags, BilledCost FROM ({focus_sql()}) WHERE SubAccountId <> 'unallocated'").fetchall()
    tags = [json.loads(t) for t, _ in rows]
    assert {t.get("project") for t in tags} == {*PROJECTS, None}
    assert all(t["model"] and t["feature"] in ("answer", "autocomplete") for t in tags)


def _spend(con, where: str, measure: str = "fully_loaded_cost_usd") -> float:
    return con.execute(f"SELECT coalesce(sum({measure}), 0) FROM fct_request_cost WHERE {where}").fetchall()[0][0]


@pytest.mark.e2e
def test_budget_status_adds_up_and_forecasts_by_the_burn_rate(fleet):
    con, _, _ = fleet
    status = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT budget, spent_to_date, daily_burn_rate, forecast_month_end, status, caveat FROM budget_status"
        ).fetchall()
    }
    assert set(status) == {"team-search", "search-project-tiny", "fleet-usd", "fleet-kwh", "chat-carbon"}
    tenant = _spend(con, "tenant = 'team-search'")
    label = _spend(con, "json_extract_string(labels, '$.project') = 'search'")
    idle_usd, idle_kwh = con.execute("SELECT sum(idle_cost_usd), sum(idle_energy_kwh) FROM agg_idle_cost").fetchall()[0]
    fleet_usd = _spend(con, "true", "total_cost_usd") + idle_usd  # the fleet's whole cost, whatever the policy
    fleet_kwh = _spend(con, "true", "energy_j / 3.6e6") + idle_kwh
    carbon = _spend(con, "json_extract_string(labels, '$.project') = 'chat'", "emissions_g_co2e / 1000")
    for name, want in (
        ("team-search", tenant),
        ("search-project-tiny", label),
        ("fleet-usd", fleet_usd),
        ("fleet-kwh", fleet_kwh),
        ("chat-carbon", carbon),
    ):
        spent, burn, forecast, _, _ = status[name]
        assert want > 0 and spent == pytest.approx(want, rel=1e-9), name
        # November 2nd: the burn is the mean of Nov 1 (nothing) and Nov 2; 28 days are left
        assert burn == pytest.approx(spent / 2, rel=1e-12) and forecast == pytest.approx(spent * 15, rel=1e-12)
    assert status["search-project-tiny"][3] == "over" and status["team-search"][3] == "ok"
    assert status["fleet-usd"][4] is None


@pytest.mark.e2e
def test_budget_alert_and_the_budgets_command(fleet):
    _, env, config = fleet
    listed = run_cli(["alerts", "list"], env=env).stdout
    assert "Budget search-project-tiny (label project=search) is over its limit for 2026-11" in listed
    assert "Budget team-search" not in listed
    shown = run_cli(["budgets", "--fail-over"], env=env, ok=False)
    assert shown.returncode == 3 and "search-project-tiny" in shown.stdout and "over" in shown.stdout
    (config / "bad.yaml").write_text("budgets:\n  - {name: x, tenant: a, limit: -5, unit: usd}\n")
    bad = run_cli(["budgets", "--file", config / "bad.yaml"], env=env, ok=False)
    assert bad.returncode == 1 and "budget 'x': limit -5 is not a positive number" in bad.stderr


@pytest.mark.e2e
def test_shadow_price_prices_the_same_tokens_at_list_prices(fleet, tmp_path):
    con, env, _ = fleet
    model = con.execute("SELECT any_value(model) FROM fct_request_cost").fetchall()[0][0]
    prices = tmp_path / "api_prices.csv"
    prices.write_text(API_PRICES + f"{model},0.50,1.50,0.25\n")
    out = run_cli(["shadow-price", "--file", prices], env=env).stdout
    assert model in out and "break_even_utilization" in out

    from pipelines.analysis.shadow_price import shadow_prices

    table = shadow_prices(
        con,
        load_api_prices(prices),
        *con.execute("SELECT min(request_date), max(request_date) FROM fct_request_cost").fetchall()[0],
    )
    row = table.set_index("model").loc[model]
    p, c, k = con.execute(
        "SELECT sum(prompt_tokens), sum(completion_tokens), sum(coalesce(cached_prompt_tokens, 0)) "
        "FROM fct_request_cost WHERE model = ?",
        [model],
    ).fetchall()[0]
    assert row["api_cost_usd"] == pytest.approx(((p - k) * 0.5 + k * 0.25 + c * 1.5) / 1e6, rel=1e-12)
    assert row["cost_change_pct"] == pytest.approx(
        100 * (row["self_hosted_cost_usd"] - row["api_cost_usd"]) / row["api_cost_usd"], rel=1e-12
    )
    assert 0 < row["utilization"] <= 1


def test_break_even_utilization():
    # capacity 1, busy energy 0.2, idle 0.1 per device-second; the API bills 2.1 per busy second: u* = 1.1 / 2.0
    assert break_even_utilization(1.0, 0.2, 0.1, 2.1) == pytest.approx(0.55)
    assert break_even_utilization(1.0, 0.2, 0.1, 0.1) is None  # the API is cheaper than the energy alone
    assert break_even_utilization(1.0, 0.2, 0.1, 1.0) is None  # it would need a utilization above 1
    # at u* the two costs are equal
    u = break_even_utilization(0.3, 0.05, 0.02, 0.9)
    assert 0.3 + u * 0.05 + (1 - u) * 0.02 == pytest.approx(u * 0.9)


@pytest.mark.parametrize(
    "text, message",
    [
        ("budgets: []\n", "expected a top-level 'budgets:' list"),
        ("budgets:\n  - {name: a, limit: 5, unit: euro}\n", "unit 'euro' is not one of usd, kwh, kg_co2e"),
        ("budgets:\n  - {name: a, limit: 5, unit: usd, tenant: x, model: y}\n", "give one scope, not tenant and model"),
        ("budgets:\n  - {name: a, limit: 5, unit: usd, team: x}\n", "unknown key(s) team"),
        ("budgets:\n  - {name: a, limit: 5, unit: usd}\n  - {name: a, limit: 6, unit: kwh}\n", "used twice: a"),
        ("budgets:\n  - {name: a, limit: 5, unit: usd, label: {a: 1, b: 2}}\n", "label must be one key: value pair"),
        ("budgets:\n  - {name: a, limit: true, unit: usd}\n", "limit True is not a positive number"),
        ("budgets: [\n", "not valid YAML"),
    ],
)
def test_a_budget_file_that_cannot_be_used_is_refused_in_words(tmp_path, text, message):
    path = tmp_path / "budgets.yaml"
    path.write_text(text)
    with pytest.raises(BudgetError, match=None) as err:
        load_budgets(path)
    assert message in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("model,input_usd_per_1m_tokens\nm,1\n", "the header lacks output_usd_per_1m_tokens"),
        (API_PRICES + "m,1,2,\nm,1,3,\n", "rows 2 and 3 both price 'm'"),
        (API_PRICES + "m,one,2,\n", "row 2: input_usd_per_1m_tokens 'one' is not a number"),
        (API_PRICES + "m,-1,2,\n", "row 2: input_usd_per_1m_tokens '-1' is not a price"),
        (API_PRICES + "m,nan,2,\n", "is not a price"),
        (API_PRICES, "no prices"),
        (API_PRICES.replace("\n", ",currency\n") + "m,1,2,,USD\n", "unknown column(s) currency"),
    ],
)
def test_an_api_price_file_that_cannot_be_used_is_refused_in_words(tmp_path, text, message):
    path = tmp_path / "api_prices.csv"
    path.write_text(text)
    with pytest.raises(PriceFileError) as err:
        load_api_prices(path)
    assert message in str(err.value)
