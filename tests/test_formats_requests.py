"""Request-log formats with no real file in ../shared/realdata: hand-written samples in their published shapes."""

import json
from datetime import UTC, date, datetime

from pipelines.ingest.loader import ingest_feed
from tests.conftest import assert_row_identity

DAY = date(2026, 11, 2)
T0_NS = 1_793_613_600_000_000_123  # 2026-11-02T10:00:00.000000123Z


def attr(key, value):
    kind = {str: "stringValue", int: "intValue", float: "doubleValue", bool: "boolValue"}[type(value)]
    return {"key": key, "value": {kind: str(value) if kind == "intValue" else value}}


def span(span_id, start_ns, end_ns, attrs, status_code=None):
    s = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": span_id,
        "name": "chat llama",
        "kind": 3,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(end_ns),
        "attributes": [attr(k, v) for k, v in attrs.items()],
    }
    if status_code is not None:
        s["status"] = {"code": status_code}
    return s


GENAI = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "llama-3.1-8b-instruct",
    "gen_ai.response.model": "llama-3.1-8b-instruct",
    "gen_ai.usage.input_tokens": 120,
    "gen_ai.usage.output_tokens": 40,
    "server.address": "us-west-h100-large-000-r0",
}


def test_otel_genai_spans_otlp_json_and_flat(con, landing):
    export = {
        "resourceSpans": [
            {
                "resource": {"attributes": [attr("host.name", "gpu-host-7"), attr("service.name", "vllm")]},
                "scopeSpans": [
                    {
                        "scope": {"name": "openllmetry"},
                        "spans": [
                            span(
                                "a1",
                                T0_NS,
                                T0_NS + 3_500_000_000,
                                {
                                    **GENAI,
                                    "gen_ai.response.id": "chatcmpl-1",
                                    "gen_ai.server.time_to_first_token": 0.25,
                                    "gen_ai.usage.cache_read.input_tokens": 64,
                                    "user.id": "team-search",
                                },
                            ),
                            span("a2", T0_NS, T0_NS + 1_000_000_000, GENAI, status_code=2),
                            span("a3", T0_NS + 5_000_000_000, T0_NS + 4_000_000_000, GENAI),  # ends before it starts
                            span("a4", T0_NS, T0_NS + 1_000, {"http.route": "/healthz"}),  # not an inference span
                            span("a5", T0_NS, T0_NS + 1_000, {**GENAI, "gen_ai.usage.output_tokens": -3}),
                        ],
                    }
                ],
            }
        ]
    }
    lines = [json.dumps(export), "{not json", json.dumps({"resourceSpans": []})]
    (landing / "requests" / "otel-2026-11-02.jsonl").write_text("\n".join(lines) + "\n")
    flat = {
        "span_id": "f1",
        "start_time_unix_nano": T0_NS + 10**10,
        "end_time_unix_nano": T0_NS + 2 * 10**10,
        "attributes": {**GENAI, "gen_ai.response.model": None, "server.address": None, "infercost.device_id": "GPU-x"},
    }
    # one pretty-printed document a file, as `curl .../v1/traces` dumps tend to be
    (landing / "requests" / "flat.json").write_text(json.dumps(flat, indent=2))

    report = ingest_feed(con, "requests", landing, DAY, fmt="otel_genai_json")

    assert (report.rows_read, report.rows_loaded) == (8, 3)
    got = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT request_id, started_at, first_token_at, ended_at, model, replica_id, device_id, host, prompt_tokens, "
            "completion_tokens, cached_prompt_tokens, tenant, status FROM raw_requests"
        ).fetchall()
    }
    start = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    assert got["chatcmpl-1"][0] == start  # nanoseconds truncate to the microsecond, exactly
    assert (got["chatcmpl-1"][1] - start).total_seconds() == 0.25
    assert (got["chatcmpl-1"][2] - start).total_seconds() == 3.5
    assert got["chatcmpl-1"][3:] == (
        "llama-3.1-8b-instruct",
        "us-west-h100-large-000-r0",
        None,
        "gpu-host-7",
        120,
        40,
        64,
        "team-search",
        "ok",
    )
    assert got["a2"][-1] == "error"
    assert got["f1"][3:6] == ("llama-3.1-8b-instruct", None, "GPU-x")  # falls back to gen_ai.request.model
    reasons = sorted(r for (r,) in con.execute("SELECT reason FROM ingest_quarantine").fetchall())
    assert reasons == [
        "completion_tokens below 0: -3",
        "ended_at before started_at",
        "export request holds no spans",
        "malformed JSON",
        "not a GenAI span (no gen_ai.* attributes)",
    ]
    # a span's quarantine row holds the span itself, on the line of the export it came in
    raw = con.execute("SELECT source_line, raw_text FROM ingest_quarantine WHERE reason LIKE 'not a GenAI%'").fetchall()
    assert raw[0][0] == 1 and json.loads(raw[0][1])["spanId"] == "a4"
    assert_row_identity(con, "requests")


def test_request_labels_from_metadata_in_openai_and_litellm_rows(con, landing, config_dir, monkeypatch):
    monkeypatch.setenv("INFERCOST_REQUEST_LABELS", "project, api_key,feature")
    (config_dir / "formats.yaml").write_text(
        "requests:\n  - {pattern: 'litellm*', format: litellm}\n  - {pattern: '*.jsonl', format: openai_jsonl}\n"
    )
    base = {"model": "llama-3.1-8b-instruct", "replica_id": "us-west-h100-large-000-r0"}
    openai = [
        {
            **base,
            "id": "o1",
            "started_at": "2026-11-02T10:00:00Z",
            "ended_at": "2026-11-02T10:00:02Z",
            "usage": {"prompt_tokens": 10, "completion_tokens": 5},
            "metadata": {"project": "search", "api_key": 'k"1', "other": "x"},
        },
        {
            **base,
            "id": "o2",
            "started_at": "2026-11-02T10:00:00Z",
            "ended_at": "2026-11-02T10:00:02Z",
            "usage": {"prompt_tokens": 10, "completion_tokens": 5},
            "metadata": {"project": None},
        },
    ]
    litellm = {
        "request_id": "l1",
        "startTime": "2026-11-02T10:00:00Z",
        "endTime": "2026-11-02T10:00:01Z",
        "model_group": base["model"],
        "api_base": base["replica_id"],
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "metadata": json.dumps({"feature": "autocomplete"}),
        "project": "agents",
    }
    (landing / "requests" / "gateway.jsonl").write_text("".join(json.dumps(r) + "\n" for r in openai))
    (landing / "requests" / "litellm.jsonl").write_text(json.dumps(litellm) + "\n")
    ingest_feed(con, "requests", landing, DAY)
    got = dict(con.execute("SELECT request_id, labels FROM raw_requests ORDER BY 1").fetchall())
    assert json.loads(got["o1"]) == {"project": "search", "api_key": 'k"1'}  # `other` is not named
    assert got["o2"] is None  # no named key has a value
    assert json.loads(got["l1"]) == {"feature": "autocomplete", "project": "agents"}
