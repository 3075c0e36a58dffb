"""Non-default formats through both front doors: `infercost ingest --format/--option` and the Dagster ingest assets
reading formats.yaml from the config directory."""

import json
import re
from datetime import UTC, datetime

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from tests.conftest import REPO, run_cli
from tests.test_formats_requests import GENAI, T0_NS, span
from tests.test_formats_telemetry import H100, scrape


def write_landing(landing):
    export = {
        "resourceSpans": [
            {
                "resource": {"attributes": []},
                "scopeSpans": [
                    {
                        "spans": [
                            span("s1", T0_NS, T0_NS + 2_000_000_000, {**GENAI, "gen_ai.response.id": "otel-1"}),
                            span("s2", T0_NS, T0_NS + 1_000, {"http.route": "/healthz"}),
                        ]
                    }
                ],
            }
        ]
    }
    (landing / "requests" / "otel_2026-11-02.jsonl").write_text(json.dumps(export) + "\n")
    t0 = int(datetime(2026, 11, 2, 10, tzinfo=UTC).timestamp() * 1000)
    lines = scrape(300, 1_000_000, 50, 10, t0) + scrape(310, 1_310_000, 60, 10, t0 + 1000)
    (landing / "telemetry" / "dcgm_2026-11-02.prom").write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_dagster_ingest_assets_follow_the_formats_file(landing, config_dir, tmp_path, monkeypatch):
    write_landing(landing)
    (config_dir / "formats.yaml").write_text(
        "requests: {format: otel_genai_json}\ntelemetry: {format: dcgm_prometheus}\n"
    )
    monkeypatch.setenv("INFERCOST_LANDING", str(landing))
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "false")
    from pipelines.defs.ingest import fleet_files, raw_requests, raw_telemetry
    from pipelines.defs.resources import EngineResource

    resources = {"duckdb": DuckDBResource(database=str(tmp_path / "w.duckdb")), "engine": EngineResource()}
    assert dg.materialize([fleet_files], resources=resources).success
    result = dg.materialize(
        [raw_requests, raw_telemetry],
        partition_key="2026-11-02",
        resources=resources,
        selection=[raw_requests.key, raw_telemetry.key],
    )
    assert result.success
    meta = {
        m.asset_key.path[-1]: m.metadata
        for m in result.asset_materializations_for_node("raw_requests")
        + result.asset_materializations_for_node("raw_telemetry")
    }
    assert (meta["raw_requests"]["rows_loaded"].value, meta["raw_requests"]["rows_quarantined"].value) == (1, 1)
    assert (meta["raw_telemetry"]["rows_loaded"].value, meta["raw_telemetry"]["rows_quarantined"].value) == (2, 0)
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    assert con.execute("SELECT request_id FROM raw_requests").fetchall() == [("otel-1",)]
    assert con.execute("SELECT device_id, energy_counter_j FROM raw_telemetry ORDER BY ts").fetchall() == [
        (H100, 1000.0),
        (H100, 1310.0),
    ]
    con.close()


@pytest.mark.slow
def test_cli_ingest_takes_a_format_and_options(landing, tmp_path):
    write_landing(landing)
    (tmp_path / "home" / "config").mkdir(parents=True)  # the default config directory: $INFERCOST_HOME/config
    (tmp_path / "home" / "config" / "gw.yaml").write_text(
        "feed: requests\nsource: {type: jsonl}\nfields: {request_id: $.id, started_at: $.s, ended_at: $.e, "
        "model: {const: llama-3.1-8b-instruct}, replica_id: {const: r0}, prompt_tokens: $.i, completion_tokens: $.o}\n"
    )
    (landing / "requests" / "otel_2026-11-02.jsonl").write_text(
        json.dumps({"id": "gw-1", "s": "2026-11-02T10:00:00Z", "e": "2026-11-02T10:00:01Z", "i": 5, "o": 7}) + "\n"
    )
    home = tmp_path / "home"
    run = run_cli(
        [
            "ingest",
            "--landing",
            landing,
            "--partition",
            "2026-11-02",
            "--feed",
            "requests",
            "--format",
            "mapped",
            "--option",
            "mapping=gw.yaml",
        ],
        home=home,
    )
    assert "requests 2026-11-02: 1 file, 1 row read, 1 loaded, 0 quarantined" in run.stdout
    assert "  requests 2026-11-02: file 1/1, 1 rows read (" in run.stdout  # progress per file
    bad = run_cli(["ingest", "--landing", landing, "--feed", "requests", "--format", "nope"], home=home, ok=False)
    assert bad.returncode != 0 and "invalid choice: 'nope'" in bad.stderr


def test_the_readme_lists_every_format_with_a_command_that_names_a_real_one():
    from pipelines.ingest.formats import FORMATS

    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("### Input formats") : readme.index("Reader details")]
    listed = set(re.findall(r"^\| \w+ \| `(\w+)`", table, re.M))
    assert listed == set(FORMATS)
    for fmt in re.findall(r"--format (\w+)", table):
        assert fmt in FORMATS
