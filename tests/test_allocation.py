"""The allocation query (outputs/allocation.py) and the metrics text, on a small warehouse whose idle split is
worked out by hand: two days, two devices, three requests.

Day 2026-11-02: device A (r1, H100) idle 10 USD, requests q1 (m1, t1, direct 3) and q2 (m2, t2, direct 1) on it;
device B (r2, L4) idle 4 USD, no request. Day 2026-11-03: device A idle 2 USD, request q3 (m1, t2, direct 2).
"""

import json
from datetime import date

import duckdb
import pytest

from pipelines.outputs.allocation import (
    DIMENSIONS,
    IDLE_GROUP,
    BadParameter,
    allocate,
    parse_aggregate,
    parse_window,
)
from pipelines.outputs.metrics import metrics_text

REQUESTS = [  # request_id, day, model, tenant, device, region, type, direct_usd, prompt, completion, energy_j
    ("q1", "2026-11-02", "m1", "t1", "A", "r1", "H100", 3.0, 100, 1000, 7200.0),
    ("q2", "2026-11-02", "m2", "t2", "A", "r1", "H100", 1.0, 50, 500, 3600.0),
    ("q3", "2026-11-03", "m1", "t2", "A", "r1", "H100", 2.0, 10, 2000, 1800.0),
]
IDLE = [
    ("2026-11-02", "A", "r1", "H100", 10.0),
    ("2026-11-02", "B", "r2", "L4", 4.0),
    ("2026-11-03", "A", "r1", "H100", 2.0),
]


def build_warehouse(path, labels: str | None = None) -> None:
    """The hand-worked warehouse; ``labels``: the SQL type of a labels column (each request's project), or none."""
    con = duckdb.connect(str(path))
    label_col = f", labels {labels}" if labels else ""
    con.execute(
        "CREATE TABLE fct_request_cost (request_id VARCHAR, request_date DATE, model VARCHAR, family VARCHAR, "
        "technique VARCHAR, tenant VARCHAR, device_type VARCHAR, region VARCHAR, cost_caveat VARCHAR, "
        "prompt_tokens BIGINT, completion_tokens BIGINT, energy_j DOUBLE, facility_energy_j DOUBLE, "
        "emissions_g_co2e DOUBLE, energy_cost_usd DOUBLE, capex_cost_usd DOUBLE, overhead_cost_usd DOUBLE, "
        f"total_cost_usd DOUBLE, idle_cost_allocated_usd DOUBLE{label_col})"
    )
    con.execute(
        "CREATE TABLE int_request_cost_pieces (partition_date DATE, device_id VARCHAR, request_id VARCHAR, "
        "energy_cost_usd DOUBLE, capex_cost_usd DOUBLE, overhead_cost_usd DOUBLE)"
    )
    con.execute(
        "CREATE TABLE agg_idle_cost (partition_date DATE, device_id VARCHAR, region VARCHAR, device_type VARCHAR, "
        "idle_sharing_policy VARCHAR, idle_cost_usd DOUBLE)"
    )
    for rid, day, model, tenant, device, region, dtype, direct, prompt, completion, energy in REQUESTS:
        extra = [json.dumps({"project": f"p-{tenant}"}) if labels == "VARCHAR" else {"project": f"p-{tenant}"}]
        extra = extra if labels else []
        con.execute(
            f"INSERT INTO fct_request_cost VALUES (?, ?, ?, 'fam', 'baseline', ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, "
            f"?, 0{', ?' if labels else ''})",
            [rid, day, model, tenant, dtype, region, prompt, completion, energy, 1.5 * energy, energy / 10]
            + [direct / 2, direct / 4, direct / 4, direct, *extra],
        )
        con.execute(
            "INSERT INTO int_request_cost_pieces VALUES (?, ?, ?, ?, ?, ?)",
            [day, device, rid, direct / 2, direct / 4, direct / 4],
        )
    for day, device, region, dtype, idle in IDLE:
        con.execute(
            "INSERT INTO agg_idle_cost VALUES (?, ?, ?, ?, 'proportional', ?)", [day, device, region, dtype, idle]
        )
    con.execute(
        "CREATE TABLE agg_daily_model_cost AS SELECT request_date, model, count(*) AS requests, "
        "1e6 * sum(total_cost_usd) / sum(completion_tokens) AS cost_per_1m_output_tokens_usd, "
        "1e6 * sum(total_cost_usd) / sum(prompt_tokens + completion_tokens) AS cost_per_1m_tokens_usd, "
        "sum(energy_j) / sum(completion_tokens) AS j_per_output_token, 0.25 AS idle_share "
        "FROM fct_request_cost GROUP BY ALL"
    )
    con.close()


@pytest.fixture
def wh(tmp_path):
    path = tmp_path / "published.duckdb"
    build_warehouse(path)
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


def by(result, key):
    return {row[key]: row for row in result["data"]}


def test_proportional_split_by_model_matches_the_hand_worked_figures(wh):
    result = allocate(wh, "2026-11-02,2026-11-03", "model", "proportional")
    rows = by(result, "model")
    assert rows["m1"]["direct_cost_usd"] == pytest.approx(3.0)
    assert rows["m1"]["idle_cost_usd"] == pytest.approx(7.5)  # 3/4 of device A's 10
    assert rows["m2"]["total_cost_usd"] == pytest.approx(1.0 + 2.5)
    assert rows[IDLE_GROUP]["idle_unallocated"] and rows[IDLE_GROUP]["idle_cost_usd"] == pytest.approx(4.0)
    assert result["totals"]["total_cost_usd"] == pytest.approx(4.0 + 14.0)
    assert rows["m1"]["energy_kwh"] == pytest.approx(7200 / 3.6e6)
    assert rows["m1"]["cost_per_1m_output_tokens_usd"] == pytest.approx(1e6 * 10.5 / 1000)
    assert result["window"] == {"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z", "days": 1}


def test_even_and_none_policies(wh):
    even = by(allocate(wh, "2026-11-02,2026-11-03", "model", "even"), "model")
    assert even["m1"]["idle_cost_usd"] == pytest.approx(5.0) and even["m2"]["idle_cost_usd"] == pytest.approx(5.0)
    none = allocate(wh, "2026-11-02,2026-11-04", "model,day", "none")
    idle_rows = [r for r in none["data"] if r["idle_unallocated"]]
    assert all(r["model"] == IDLE_GROUP for r in idle_rows)
    assert {r["day"]: r["idle_cost_usd"] for r in idle_rows} == pytest.approx({"2026-11-02": 14.0, "2026-11-03": 2.0})
    assert all(r["idle_cost_usd"] == 0 for r in none["data"] if not r["idle_unallocated"])


@pytest.mark.parametrize("policy", ["none", "proportional", "even"])
@pytest.mark.parametrize("aggregate", ["", "model", "tenant,region", "device_type,day", "technique,family"])
def test_rows_always_sum_to_the_fleet_cost(wh, policy, aggregate):
    result = allocate(wh, "2026-11-02,2026-11-04", aggregate, policy)
    fleet = sum(r[7] for r in REQUESTS) + sum(i[4] for i in IDLE)
    assert sum(r["total_cost_usd"] for r in result["data"]) == pytest.approx(fleet)
    assert result["totals"]["requests"] == len(REQUESTS)


def test_idle_rows_keep_the_device_dimensions(wh):
    rows = allocate(wh, "2026-11-02,2026-11-03", "region,device_type", "proportional")["data"]
    idle = [r for r in rows if r["idle_unallocated"]]
    assert [(r["region"], r["device_type"], r["idle_cost_usd"]) for r in idle] == [("r2", "L4", pytest.approx(4.0))]


def test_default_policy_is_the_warehouse_one_and_windows_are_relative_to_the_latest_day(wh):
    result = allocate(wh, "1d", "tenant")
    assert result["idle_policy"] == result["warehouse_idle_policy"] == "proportional"
    assert result["window"]["start"] == "2026-11-03T00:00:00Z" and result["latest_day"] == "2026-11-03"
    assert set(by(result, "tenant")) == {"t2"}  # q3 only; device A's idle that day all went to it
    assert allocate(wh, "7d")["window"]["days"] == 7


def test_window_forms():
    latest = date(2026, 11, 3)
    assert parse_window("2024-05-01T00:00:00Z,2024-05-02T00:00:00Z", latest).start == date(2024, 5, 1)
    assert parse_window("2024-05-01,2024-05-03", latest).end == date(2024, 5, 3)
    assert parse_window("2024-05-01T02:00:00+02:00,2024-05-02", latest).start == date(2024, 5, 1)
    assert parse_window("yesterday", latest, today=date(2026, 12, 2)).start == date(2026, 12, 1)
    assert parse_window("latest", None, today=date(2026, 12, 2)).start == date(2026, 12, 2)


@pytest.mark.parametrize(
    "window, message",
    [
        ("2024-05-01T06:00:00Z,2024-05-02T00:00:00Z", "not midnight UTC"),
        ("2024-05-02,2024-05-01", "not after its start"),
        ("2024-05-01T00:00:00,2024-05-02", "no time zone"),
        ("0d", "empty"),
        ("a week", "not understood"),
        ("2024-13-01,2024-12-02", "not a date"),
        ("99999d", "longer than"),
        ("", "not understood"),
    ],
)
def test_bad_windows_say_why(window, message):
    with pytest.raises(BadParameter, match=message):
        parse_window(window, date(2026, 11, 3))


@pytest.mark.parametrize(
    "aggregate, message",
    [
        ("model; DROP TABLE fct_request_cost", "not a dimension"),
        ("r.model", "not a dimension"),
        ("model,model", "twice"),
        ("label:project", "no request labels"),
    ],
)
def test_aggregate_is_whitelisted(aggregate, message):
    with pytest.raises(BadParameter, match=message):
        parse_aggregate(aggregate, None)


@pytest.mark.parametrize("labels_type", ["VARCHAR", "MAP(VARCHAR, VARCHAR)"])  # JSON text, as the warehouse has it
def test_label_dimension_reads_a_labels_column_when_there_is_one(tmp_path, labels_type):
    path = tmp_path / "labelled.duckdb"
    build_warehouse(path, labels=labels_type)
    with pytest.raises(BadParameter, match="label key"):
        parse_aggregate("label:x' OR 1=1 --", "MAP(VARCHAR, VARCHAR)")
    with duckdb.connect(str(path), read_only=True) as con:
        rows = by(allocate(con, "2026-11-02,2026-11-04", "label:project", "none"), "label:project")
    assert rows["p-t2"]["requests"] == 2 and rows["p-t1"]["direct_cost_usd"] == pytest.approx(3.0)
    assert rows[IDLE_GROUP]["idle_cost_usd"] == pytest.approx(16.0)


@pytest.mark.parametrize("policy", ["fair", ""])
def test_bad_policy(wh, policy):
    with pytest.raises(BadParameter, match="use one of none, proportional, even"):
        allocate(wh, "1d", "model", policy)


def test_every_dimension_runs(wh):
    result = allocate(wh, "2d", ",".join(DIMENSIONS))
    assert {r["region"] for r in result["data"]} == {"r1", "r2"}


def test_metrics_text_parses_and_holds_the_latest_day():
    from prometheus_client.parser import text_string_to_metric_families

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE agg_daily_model_cost AS SELECT * FROM (VALUES "
        "(DATE '2026-11-02', 'old', 5, 9.0, 8.0, 7.0, 0.5), "
        "(DATE '2026-11-03', 'llama \"8b\"', 10, 1.5, 1.2, 0.9, 0.25), "
        "(DATE '2026-11-03', 'mute', 0, NULL, NULL, NULL, 0.75)) "
        "t(request_date, model, requests, cost_per_1m_output_tokens_usd, cost_per_1m_tokens_usd, "
        "j_per_output_token, idle_share)"
    )
    families = {f.name: f for f in text_string_to_metric_families(metrics_text(con))}
    cost = {s.labels["model"]: s.value for s in families["infercost_cost_per_1m_output_tokens_usd"].samples}
    assert cost == {'llama "8b"': 1.5}  # the old day is not there; no sample for an undefined value
    idle = {s.labels["model"]: s.value for s in families["infercost_idle_share_ratio"].samples}
    assert idle == {'llama "8b"': 0.25, "mute": 0.75}
    (day,) = families["infercost_latest_day_timestamp_seconds"].samples
    assert day.value == 1793664000.0  # 2026-11-03T00:00:00Z
