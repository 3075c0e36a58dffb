"""One bad value never stops a day (issue #17): each absurd value is a quarantined row (or a refused fleet row)
naming its file and line, and the rest of the day loads."""

import json
from datetime import date

from pipelines.ingest.loader import ingest_feed, ingest_fleet_table
from tests.conftest import assert_row_identity
from tests.test_formats_requests import GENAI, T0_NS, span
from tests.test_formats_telemetry import H100

DAY = date(2026, 11, 2)
GOOD = {
    "id": "ok-1",
    "model": "llama-3.1-8b-instruct",
    "replica_id": "us-west-h100-large-000-r0",
    "started_at": "2026-11-02T10:00:00Z",
    "ended_at": "2026-11-02T10:00:01Z",
    "usage": {"prompt_tokens": 10, "completion_tokens": 5},
}
DEEP = "[" * 1500 + "]" * 1500


def reasons(con, feed):
    """{(file name, line): reason} of a feed's quarantine."""
    return {
        (f.rsplit("/", 1)[-1], n): r
        for f, n, r in con.execute(
            "SELECT source_file, source_line, reason FROM ingest_quarantine WHERE feed = ?", [feed]
        ).fetchall()
    }


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")


def test_token_counts_past_the_bound_and_odd_created_times_are_rows_not_failures(con, landing):
    lines = [
        json.dumps(GOOD),
        json.dumps({**GOOD, "id": "big", "usage": {"prompt_tokens": 2**53 + 1, "completion_tokens": 1}}),
        json.dumps({**GOOD, "id": "huge", "usage": {"prompt_tokens": 1, "completion_tokens": 10**11}}),
        json.dumps({"id": "us", "created": 1_793_613_600_000_000}),  # created in microseconds, no start
        json.dumps({"id": "max", "created": 1e308}),
        '{"id": "nan", "created": NaN}',
        json.dumps({**GOOD, "id": "deep"})[:-1] + ', "tenant": ' + DEEP + "}",
        DEEP,
    ]
    write_lines(landing / "requests" / "r_2026-11-02.jsonl", lines)
    report = ingest_feed(con, "requests", landing, DAY)
    # DuckDB's JSON reader takes the deep line in its stride: the line loads (its deep field is not read)
    assert (report.rows_loaded, report.rows_quarantined) == (2, 6)
    assert sorted(r[0] for r in con.execute("SELECT request_id FROM raw_requests").fetchall()) == ["deep", "ok-1"]
    q = reasons(con, "requests")
    f = "r_2026-11-02.jsonl"
    assert q[(f, 2)] == f"prompt_tokens above 10000000000: {2**53 + 1}"
    assert q[(f, 3)] == "completion_tokens above 10000000000: 100000000000"
    # created (unix s) dates a row without a start: in microseconds, 1e308 or NaN it dates nothing, aborts nothing
    assert q[(f, 4)] == q[(f, 5)] == q[(f, 6)] == "missing started_at"
    assert q[(f, 8)] == "not a JSON object"
    assert_row_identity(con, "requests")


def test_json_nested_a_thousand_levels_is_quarantined_in_every_python_reader(con, landing):
    litellm = {
        "request_id": "l1",
        "startTime": "2026-11-02T10:00:00",
        "endTime": "2026-11-02T10:00:01",
        "model_group": "llama-3.1-8b-instruct",
        "api_base": "us-west-h100-large-000-r0",
        "prompt_tokens": 3,
        "completion_tokens": 4,
    }
    write_lines(landing / "requests" / "spend_2026-11-02.jsonl", [json.dumps(litellm), DEEP])
    report = ingest_feed(con, "requests", landing, DAY, fmt="litellm")
    assert (report.rows_loaded, report.rows_quarantined) == (1, 1)
    assert reasons(con, "requests") == {("spend_2026-11-02.jsonl", 2): "malformed JSON"}
    (landing / "requests" / "spend_2026-11-02.jsonl").unlink()
    flat = {**span("s1", T0_NS, T0_NS + 10**9, {}), "attributes": {**GENAI, "gen_ai.response.id": "o1"}}
    write_lines(landing / "requests" / "otel_2026-11-02.jsonl", [json.dumps(flat), DEEP])
    report = ingest_feed(con, "requests", landing, DAY, fmt="otel_genai_json")
    assert (report.rows_loaded, report.rows_quarantined) == (1, 1)
    assert reasons(con, "requests") == {("otel_2026-11-02.jsonl", 2): "JSON nested too deep"}
    write_lines(landing / "telemetry" / "prom_2026-11-02.json", [DEEP])
    report = ingest_feed(con, "telemetry", landing, DAY, fmt="prometheus_range_json")
    assert (report.rows_loaded, report.rows_quarantined) == (0, 1)
    assert reasons(con, "telemetry") == {("prom_2026-11-02.json", 1): "not a JSON document (nested too deep)"}


def test_azure_token_counts_of_2_to_the_63_are_quarantined(con, landing):
    write_lines(
        landing / "requests" / "azure_2026-11-02.csv",
        [
            "TIMESTAMP,ContextTokens,GeneratedTokens",
            "2026-11-02 10:00:00.0000000,100,20",
            f"2026-11-02 10:00:01.0000000,{2**63 - 1},20",
            f"2026-11-02 10:00:02.0000000,{2**63},20",
        ],
    )
    report = ingest_feed(
        con,
        "requests",
        landing,
        DAY,
        fmt="azure_trace_csv",
        options={"model": "llama-3.1-8b-instruct", "replicas": "us-west-h100-large-000-r0"},
    )
    assert (report.rows_loaded, report.rows_quarantined) == (1, 2)
    q = reasons(con, "requests")
    assert q[("azure_2026-11-02.csv", 4)] == f"unparseable prompt_tokens: {2**63}"
    assert q[("azure_2026-11-02.csv", 3)] == f"prompt_tokens above 10000000000: {2**63 - 1}"


def test_fleet_values_past_the_bounds_are_refused_rows(con, landing):
    fleet = landing / "fleet"
    write_lines(fleet / "clock_offsets.csv", ["host,offset_s", "h1,0.25", "h2,1e13"])
    assert ingest_fleet_table(con, "clock_offsets", landing).rows_quarantined == 1
    assert reasons(con, "clock_offsets") == {("clock_offsets.csv", 3): "offset_s above 604800: 10000000000000.0"}
    inv = (fleet / "inventory.csv").read_text().splitlines()
    last = inv[-1].split(",")
    years = [*last[:7], "1e7", *last[8:]]
    years[0] += "-years"
    cur = [*last[:5], "XYZ", *last[6:]]
    cur[0] += "-cur"
    write_lines(fleet / "inventory.csv", inv + [",".join(years), ",".join(cur)])
    report = ingest_fleet_table(con, "inventory", landing)
    assert (report.rows_loaded, report.rows_quarantined) == (len(inv) - 1, 2)
    assert reasons(con, "inventory") == {
        ("inventory.csv", len(inv) + 1): "amortization_years above 100: 10000000.0",
        ("inventory.csv", len(inv) + 2): f"currency XYZ has no rate in fleet/fx_rates.csv on or before {last[6]}",
    }


def test_bad_regions_refuse_their_row_and_quarantine_their_prices_only(con, landing):
    regions = (landing / "fleet" / "regions.csv").read_text().splitlines()
    write_lines(
        landing / "fleet" / "regions.csv",
        regions + ["mars,OLYMPUS-DA,Mars/Olympus,60", "slow,SLOW-DA,UTC,1000000000000"],
    )
    report = ingest_fleet_table(con, "regions", landing)
    assert (report.rows_loaded, report.rows_quarantined) == (len(regions) - 1, 2)
    n = len(regions)
    assert reasons(con, "regions") == {
        ("regions.csv", n + 1): "unknown time zone Mars/Olympus (an IANA name such as Europe/Berlin, or UTC)",
        ("regions.csv", n + 2): "interval_minutes above 1440: 1000000000000",
    }
    prices = landing / "prices"
    write_lines(prices / "mars_2026-11-02.csv", ["Datetime,Price (USD/MWh)", "2026-11-02 00:00:00,1"])
    write_lines(
        prices / "us-west_2026-11-02.csv",
        ["Datetime,Price (USD/MWh)", "2026-11-02 00:00:00,30", "2026-11-02 01:00:00,1e308", "2026-11-02 02:00:00,-2e8"],
    )
    write_lines(prices / "eu-central_2026-11-02.csv", ["Datetime,Price (GBP/MWh)", "2026-11-02 00:00:00,30"])
    report = ingest_feed(con, "prices", landing, DAY)
    assert (report.rows_loaded, report.rows_quarantined) == (1, 4)
    q = reasons(con, "prices")
    assert q[("mars_2026-11-02.csv", 2)].startswith("region 'mars' (from the file name) is not in fleet/regions.csv")
    assert q[("us-west_2026-11-02.csv", 3)] == "price_per_mwh above 100000000: 1e+308"
    assert q[("us-west_2026-11-02.csv", 4)] == "price_per_mwh below -100000000: -200000000.0"
    assert (
        q[("eu-central_2026-11-02.csv", 2)] == "currency GBP has no rate in fleet/fx_rates.csv on or before 2026-11-01"
    )


def test_a_byte_order_mark_before_a_header_is_not_part_of_it(con, landing):
    inv = (landing / "fleet" / "inventory.csv").read_text()
    (landing / "fleet" / "inventory.csv").write_text("\ufeff" + inv)
    report = ingest_fleet_table(con, "inventory", landing)
    assert report.rows_quarantined == 0 and report.rows_loaded == len(inv.splitlines()) - 1
    (landing / "telemetry" / "us-west-h100-large-000_2026-11-02.csv").write_bytes(
        f"\ufefftimestamp, uuid, power.draw [W]\n2026/11/02 10:00:00.000, {H100}, 300.0 W\n".encode()
    )
    report = ingest_feed(con, "telemetry", landing, DAY)
    assert (report.rows_loaded, report.rows_quarantined) == (1, 0)


def test_a_device_listed_twice_refuses_both_lines(con, landing):
    inv = (landing / "fleet" / "inventory.csv").read_text().splitlines()
    stale = inv[1].replace(",35000,", ",30800,")  # the same device again, 12 % cheaper
    write_lines(landing / "fleet" / "inventory.csv", inv + [stale])
    report = ingest_fleet_table(con, "inventory", landing)
    assert (report.rows_loaded, report.rows_quarantined) == (len(inv) - 2, 2)
    device = inv[1].split(",")[0]
    assert reasons(con, "inventory") == {
        ("inventory.csv", 2): f"duplicate device_id {device}: also on line {len(inv) + 1} of inventory.csv; "
        "none of these rows is loaded until one is left",
        ("inventory.csv", len(inv) + 1): f"duplicate device_id {device}: also on line 2 of inventory.csv; "
        "none of these rows is loaded until one is left",
    }


def test_a_deployment_on_an_unknown_device_loads_for_the_marts_to_flag(con, landing):
    """Quarantining it would let its replica's requests draw from the other devices unflagged; loaded, they carry
    inventory_missing and a caveat (tests/test_inventory_missing.py) and a quality check names the device."""
    deps = (landing / "fleet" / "deployments.csv").read_text().splitlines()
    write_lines(landing / "fleet" / "deployments.csv", deps + ["r-ghost,GPU-no-such-device,2026-10-03T00:00:00Z,"])
    report = ingest_fleet_table(con, "deployments", landing)
    assert (report.rows_loaded, report.rows_quarantined) == (len(deps), 0)
    assert (
        con.execute("SELECT count(*) FROM raw_deployments WHERE device_id = 'GPU-no-such-device'").fetchall()[0][0] == 1
    )
