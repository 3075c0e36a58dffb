"""An optional tag value the contract does not know (a new precision, a batching mode) loads as logged, costs the
request nothing, and the quality check requests_known_tags names it with its request count; a required column's
allowed values still quarantine."""

import json
import re
from datetime import date

import yaml

from pipelines.analysis.quality import load_suite, run_suite
from pipelines.ingest.loader import ingest_feed
from pipelines.warehouse.contracts import load_contract
from tests.conftest import assert_row_identity, quarantine

DAY = date(2026, 11, 2)


def request(i, **tags):
    return json.dumps(
        {
            "id": f"r{i}",
            "model": "llama-3.1-8b-instruct",
            "replica_id": "us-west-h100-small-001-r0",
            "usage": {"prompt_tokens": 100, "completion_tokens": 20},
            "started_at": f"2026-11-02T10:00:0{i}Z",
            "ended_at": f"2026-11-02T10:00:0{i + 1}Z",
            "status": "ok",
            "metadata": {"quantization": None, "batching": "continuous", **tags},
        }
    )


def test_unknown_tag_values_load_as_logged_and_are_named(con, landing):
    lines = [
        request(0),
        request(1, quantization="fp8"),
        request(2, batching="dynamic_batching"),
        request(3, batching="dynamic_batching", quantization="nf4"),
        request(4, quantization="nf4"),
    ]
    (landing / "requests" / "2026-11-02.jsonl").write_text("\n".join(lines) + "\n")
    report = ingest_feed(con, "requests", landing, DAY)
    assert (report.rows_loaded, report.rows_quarantined) == (5, 0), quarantine(con, "requests")
    got = dict(con.execute("SELECT request_id, quantization || '/' || batching FROM raw_requests").fetchall())
    assert got["r3"] == "nf4/dynamic_batching" and got["r1"] == "fp8/continuous"  # kept as logged
    assert_row_identity(con, "requests")

    outcome = {o.name: o for o in run_suite(con, "requests", DAY)}["requests_known_tags"]
    assert not outcome.success
    (failure,) = outcome.failures()
    assert failure.unexpected_count == 2 and failure.element_count == 4  # 4 distinct (tag, value), 2 unknown
    text = outcome.summary()
    print(text)
    assert "tag=batching, value=dynamic_batching, requests=2" in text
    assert "tag=quantization, value=nf4, requests=2" in text
    assert "fp8" not in text and "continuous" not in text


def test_known_tags_pass(con, landing):
    lines = [request(0), request(1, quantization="int4", batching="static")]
    (landing / "requests" / "2026-11-02.jsonl").write_text("\n".join(lines) + "\n")
    ingest_feed(con, "requests", landing, DAY)
    assert {o.name: o for o in run_suite(con, "requests", DAY)}["requests_known_tags"].success


def test_the_check_knows_the_contracts_values():
    """The check's value sets are the contract's allowed lists of its optional tags (and only optional columns
    have them: a required one would quarantine)."""
    contract = load_contract("requests")
    tagged = {c.name: set(c.allowed) for c in contract.columns if c.allowed}
    assert tagged and not any(contract.column(n).required for n in tagged)
    frame = next(c for c in load_suite("requests")["checks"] if c["name"] == "requests_known_tags")["frame"]
    in_check = {
        tag: set(yaml.safe_load("[" + values.replace("'", "") + "]"))
        for tag, values in re.findall(r"WHEN '(\w+)' THEN value IN \(([^)]*)\)", frame)
    }
    assert in_check == tagged
