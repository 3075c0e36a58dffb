"""Arrival-only request traces read in place from ../shared/realdata: Azure LLM inference 2023 and Mooncake."""

from datetime import date

import pytest

from pipelines.ingest.loader import ingest_feed, ingest_files, ingest_fleet_table
from pipelines.warehouse.connection import connect
from pipelines.warehouse.contracts import FLEET_TABLES
from tests.conftest import REPO

MODEL = {
    "model": "llama-3.1-8b-instruct",
    "replicas": "r0,r1,r2",
    "prefill_tokens_per_s": "8000",
    "decode_s_per_token": "0.025",
}


@pytest.fixture
def con(tmp_path):
    c = connect(tmp_path / "w.duckdb")
    for name in FLEET_TABLES:
        ingest_fleet_table(c, name, REPO / "sample_logs")
    yield c
    c.close()


@pytest.mark.parametrize(
    "name,rows", [("AzureLLMInferenceTrace_conv.csv", 19_366), ("AzureLLMInferenceTrace_code.csv", 8_819)]
)
def test_azure_trace(name, rows, realdata, con):
    report = ingest_files(
        con, "requests", [realdata / "azure-llm-2023" / name], date(2023, 11, 16), fmt="azure_trace_csv", options=MODEL
    )
    assert report.rows_read == rows and report.rows_quarantined == 0
    got = con.execute("""
        SELECT count(*), count(DISTINCT replica_id), min(started_at), bool_and(ended_at >= first_token_at),
               bool_and(first_token_at >= started_at), any_value(estimated_fields), sum(prompt_tokens)
        FROM raw_requests""").fetchall()[0]
    assert got[0] == rows and got[1] == 3
    assert str(got[2]).startswith("2023-11-16 ")
    assert got[3] and got[4]
    assert "ended_at" in got[5] and "model" in got[5] and "started_at" not in got[5]
    one = con.execute(
        "SELECT started_at, first_token_at, ended_at, prompt_tokens, completion_tokens FROM raw_requests "
        "ORDER BY source_line LIMIT 1"
    ).fetchall()[0]
    # the latency model: prompt / 8000 tok/s, then 25 ms per output token
    assert (one[1] - one[0]).total_seconds() == pytest.approx(one[3] / 8000, abs=1e-6)
    assert (one[2] - one[1]).total_seconds() == pytest.approx(one[4] * 0.025, abs=1e-6)


def test_mooncake_trace_via_the_formats_file(realdata, con, tmp_path, config_dir):
    landing = tmp_path / "landing"
    (landing / "requests").mkdir(parents=True)
    (landing / "requests" / "conversation_trace.jsonl").symlink_to(
        realdata / "mooncake-fast25" / "conversation_trace.jsonl"
    )
    (config_dir / "formats.yaml").write_text(
        "requests:\n  format: mooncake_jsonl\n  options:\n    model: mixtral-8x7b-instruct\n"
        "    replicas: eu-central-a100-002-r0\n    start: '2026-11-02T08:00:00Z'\n"
    )
    report = ingest_feed(con, "requests", landing, date(2026, 11, 2))
    assert report.rows_read == 12_031 and report.rows_quarantined == 0
    first, last, tokens = con.execute(
        "SELECT min(started_at), max(started_at), sum(prompt_tokens) FROM raw_requests"
    ).fetchall()[0]
    assert (first.hour, first.minute) == (8, 0)
    assert 58 <= (last - first).total_seconds() / 60 <= 59  # the trace spans about 58.9 minutes


def test_arrival_trace_needs_its_options(realdata, con):
    with pytest.raises(ValueError, match="model option"):
        ingest_files(
            con,
            "requests",
            [realdata / "azure-llm-2023" / "AzureLLMInferenceTrace_code.csv"],
            date(2023, 11, 16),
            fmt="azure_trace_csv",
            options={},
        )
