"""The FOCUS export on small hand-made warehouses, one per idle policy: it sums to the fleet's cost under each (idle
capacity no request was charged for is its own rows), keeps the FOCUS column rules, writes timestamps as
YYYY-MM-DDTHH:MM:SSZ, honours .csv, .json and .parquet and refuses any other extension."""

import csv
import json
from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.cli.main import main
from pipelines.outputs.focus import UNALLOCATED, export_focus
from tests.focus_rules import check_focus_rows

# device, region, device type; dev-c has no request on the second day
DEVICES = [("dev-a", "us-west", "H100-SXM"), ("dev-b", "us-west", "H100-SXM"), ("dev-c", "eu-central", "A100-SXM4")]
DAYS = [date(2026, 11, 1), date(2026, 11, 2)]


def warehouse(con: duckdb.DuckDBPyConnection, policy: str) -> None:
    """fct_request_cost and agg_idle_cost as the marts would hold them under ``policy``."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute("""
        CREATE TABLE agg_idle_cost AS
        SELECT d.day AS partition_date, v.device_id, v.region, v.device_type, 40000.0 AS idle_s,
               3.5 + v.n AS idle_energy_kwh, 2.0 + v.n AS idle_cost_usd,
               CASE WHEN v.device_id = 'dev-c' AND d.day = DATE '2026-11-02' THEN 0 ELSE 3 END AS requests
        FROM (VALUES (DATE '2026-11-01'), (DATE '2026-11-02')) d(day),
             (VALUES ('dev-a', 'us-west', 'H100-SXM', 1), ('dev-b', 'us-west', 'H100-SXM', 2),
                     ('dev-c', 'eu-central', 'A100-SXM4', 3)) v(device_id, region, device_type, n)""")
    con.execute("""
        CREATE TABLE fct_request_cost AS
        SELECT i.partition_date AS request_date, i.device_id, i.region, i.device_type, 'r' || r AS request_id,
               ['m-small', 'm-large', 'm-small'][r] AS model, 'fam' AS family, 'baseline' AS technique,
               ['team-a', 'team-b', NULL][r] AS tenant,
               CASE WHEN r = 1 THEN '{"project": "alpha", "model": "spoofed"}'::JSON END AS labels, 100 * r AS prompt_tokens, 50 * r AS completion_tokens,
               1000.0 * r AS energy_j, 1300.0 * r AS facility_energy_j, 0.01 * r AS energy_cost_usd,
               0.02 * r AS capex_cost_usd, 0.005 * r AS overhead_cost_usd, 0.035 * r AS total_cost_usd,
               i.idle_cost_usd AS device_idle_usd
        FROM agg_idle_cost i, range(1, 4) t(r) WHERE i.requests > 0""")
    share = {
        "none": "0",
        "proportional": "device_idle_usd * total_cost_usd / sum(total_cost_usd) OVER w",
        "even": "device_idle_usd / count(*) OVER w",
    }[policy]
    con.execute(f"""
        CREATE OR REPLACE TABLE fct_request_cost AS
        SELECT *, {share} AS idle_cost_allocated_usd, total_cost_usd + {share} AS fully_loaded_cost_usd
        FROM fct_request_cost WINDOW w AS (PARTITION BY request_date, device_id)""")
    con.execute(
        "ALTER TABLE agg_idle_cost ADD COLUMN request_cost_usd DOUBLE DEFAULT 0; "
        "UPDATE agg_idle_cost i SET request_cost_usd = (SELECT coalesce(sum(total_cost_usd), 0) "
        "FROM fct_request_cost f WHERE f.device_id = i.device_id AND f.request_date = i.partition_date)"
    )


@pytest.fixture(params=["none", "proportional", "even"])
def policy_con(request):
    con = duckdb.connect()
    warehouse(con, request.param)
    yield request.param, con
    con.close()


def _read(out):
    if out.suffix == ".csv":
        with open(out, newline="") as f:
            return list(csv.DictReader(f))
    if out.suffix == ".json":
        return json.loads(out.read_text())
    return pq.read_table(out).to_pylist()


def test_the_export_sums_to_the_fleets_cost_under_every_idle_policy(policy_con, tmp_path):
    policy, con = policy_con
    out = tmp_path / "focus.csv"
    n = export_focus(con, out)
    rows = _read(out)
    assert n == len(rows)
    check_focus_rows(rows)
    (fleet,) = con.execute("SELECT sum(request_cost_usd + idle_cost_usd) FROM agg_idle_cost").fetchone()
    assert sum(float(r["BilledCost"]) for r in rows) == pytest.approx(fleet, rel=1e-12)
    idle = {
        (r["ChargePeriodStart"][:10], r["RegionId"]): float(r["BilledCost"])
        for r in rows
        if r["SubAccountId"] == UNALLOCATED
    }
    if policy == "none":  # nothing reached a request: every day, region and device type has its idle row
        assert idle == pytest.approx(
            {(str(d), reg): 3.0 + 4.0 if reg == "us-west" else 5.0 for d in DAYS for reg in ("us-west", "eu-central")}
        )
    else:  # only dev-c's idle day without requests
        assert idle == pytest.approx({("2026-11-02", "eu-central"): 5.0})
    tagged = [json.loads(r["Tags"]) for r in rows if r["SubAccountId"] == "team-a"]
    assert tagged and all(t["project"] == "alpha" and t["model"] == "m-small" for t in tagged)  # labels carried
    (tokens,) = con.execute("SELECT sum(prompt_tokens + completion_tokens) FROM fct_request_cost").fetchone()
    assert sum(float(r["ConsumedQuantity"]) for r in rows if r["ConsumedUnit"] == "Tokens") == tokens


def test_a_period_exports_its_days_only_and_still_adds_up(policy_con, tmp_path):
    _, con = policy_con
    rows = _read(tmp_path / "day.csv") if export_focus(con, tmp_path / "day.csv", DAYS[1], DAYS[1]) else []
    assert {r["ChargePeriodStart"] for r in rows} == {"2026-11-02T00:00:00Z"}
    (fleet,) = con.execute(
        "SELECT sum(request_cost_usd + idle_cost_usd) FROM agg_idle_cost WHERE partition_date = '2026-11-02'"
    ).fetchone()
    assert sum(float(r["BilledCost"]) for r in rows) == pytest.approx(fleet, rel=1e-12)


def test_json_and_parquet_hold_the_same_rows(tmp_path):
    con = duckdb.connect()
    warehouse(con, "proportional")
    csv_rows = _read(tmp_path / "f.csv") if export_focus(con, tmp_path / "f.csv") else []
    export_focus(con, tmp_path / "f.json")
    json_rows = _read(tmp_path / "f.json")
    check_focus_rows(json_rows)
    export_focus(con, tmp_path / "f.parquet")
    table = pq.read_table(tmp_path / "f.parquet")
    assert table.schema.field("ChargePeriodStart").type == pa.timestamp("us", tz="UTC")
    parquet_rows = table.to_pylist()
    assert len(csv_rows) == len(json_rows) == len(parquet_rows)
    for c, j, p in zip(csv_rows, json_rows, parquet_rows):
        assert float(c["BilledCost"]) == j["BilledCost"] == p["BilledCost"]
        assert c["ChargePeriodStart"] == j["ChargePeriodStart"] == p["ChargePeriodStart"].strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("name", ["focus.txt", "focus.jsonl", "focus"])
def test_an_unknown_extension_is_refused_and_writes_nothing(tmp_path, name, monkeypatch, capsys):
    con = duckdb.connect()
    warehouse(con, "none")
    with pytest.raises(ValueError, match="name the file .csv, .json or .parquet"):
        export_focus(con, tmp_path / name)
    monkeypatch.setenv("INFERCOST_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit) as exc:
        main(["export", "focus", "--out", str(tmp_path / name)])
    assert exc.value.code == 1 and "name the file .csv, .json or .parquet" in capsys.readouterr().err
    assert not (tmp_path / name).exists() and not (tmp_path / "home").exists()
