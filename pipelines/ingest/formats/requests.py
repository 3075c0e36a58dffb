"""Request-log formats: OpenAI-style JSONL, LiteLLM spend logs, OpenTelemetry GenAI spans, arrival-only traces."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa

from pipelines.warehouse.contracts import load_contract
from pipelines.ingest.formats.common import ParseContext, _finish, _records, _register, _sql_str, epoch_sql

class OpenAIJsonl:
    """JSONL request logs with an OpenAI-style usage object (gateways, vLLM's OpenAI server), one object a line.

    Field paths: id (or request_id); started_at, first_token_at, ended_at as ISO-8601 (or start_time/end_time);
    model; replica_id, device_id, host; usage.prompt_tokens, usage.completion_tokens,
    usage.prompt_tokens_details.cached_tokens; status (missing means ok); metadata.tenant (or user),
    metadata.quantization, metadata.speculative, metadata.batching.
    """

    patterns = ("*.jsonl", "*.jsonl.gz", "*.json", "*.json.gz")
    chunks = "lines"  # a large file is read piece by piece (pipelines/ingest/loader.py)

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        src = _register(ctx, lines)
        contract = load_contract("requests")

        # every path is read in one parse of the line (one ->> per path would parse the line once per path)
        paths = ["$.id", "$.request_id", "$.started_at", "$.start_time", "$.ended_at", "$.end_time",
                 "$.first_token_at", "$.model", "$.replica_id", "$.device_id", "$.host", "$.usage.prompt_tokens",
                 "$.usage.completion_tokens", "$.usage.prompt_tokens_details.cached_tokens",
                 "$.metadata.quantization", "$.metadata.speculative", "$.metadata.batching", "$.metadata.tenant",
                 "$.user", "$.status", "$.created"]

        def p(path: str) -> str:
            return f"v[{paths.index(path) + 1}]"

        def field(expr: str, typ: str, name: str) -> str:
            return f"{expr} AS {name}__raw, TRY_CAST({expr} AS {typ}) AS {name}"

        path_list = ", ".join(_sql_str(x) for x in paths)
        mapped = f"""
            WITH l AS (SELECT *, json_valid(raw_text) AS ok FROM {src}),
            j AS (SELECT *, starts_with(ltrim(raw_text), '{{') AS is_object,
                         CASE WHEN ok THEN json_extract_string(raw_text, [{path_list}]) END AS v FROM l)
            SELECT source_file, source_line, raw_text,
                CASE WHEN NOT ok THEN 'malformed JSON'
                     WHEN NOT is_object THEN 'not a JSON object' END AS pre_reason,
                {field(f"coalesce({p('$.id')}, {p('$.request_id')})", "VARCHAR", "request_id")},
                {field(f"coalesce({p('$.started_at')}, {p('$.start_time')})", "TIMESTAMPTZ", "started_at")},
                {field(f"coalesce({p('$.ended_at')}, {p('$.end_time')})", "TIMESTAMPTZ", "ended_at")},
                {field(p('$.first_token_at'), "TIMESTAMPTZ", "first_token_at")},
                {field(p('$.model'), "VARCHAR", "model")},
                {field(p('$.replica_id'), "VARCHAR", "replica_id")},
                {field(p('$.device_id'), "VARCHAR", "device_id")},
                {field(p('$.host'), "VARCHAR", "host")},
                {field(p('$.usage.prompt_tokens'), "BIGINT", "prompt_tokens")},
                {field(p('$.usage.completion_tokens'), "BIGINT", "completion_tokens")},
                {field(p('$.usage.prompt_tokens_details.cached_tokens'), "BIGINT", "cached_prompt_tokens")},
                {field(p('$.metadata.quantization'), "VARCHAR", "quantization")},
                {field(p('$.metadata.speculative'), "VARCHAR", "speculative")},
                {field(p('$.metadata.batching'), "VARCHAR", "batching")},
                {field(f"coalesce({p('$.metadata.tenant')}, {p('$.user')})", "VARCHAR", "tenant")},
                {field(f"CASE WHEN ok THEN coalesce({p('$.status')}, 'ok') END", "VARCHAR", "status")},
                NULL AS estimated_fields__raw, NULL::VARCHAR AS estimated_fields,
                TRY_CAST({p('$.created')} AS DOUBLE) AS created_s
            FROM j
        """
        event_date = "coalesce(started_at, to_timestamp(created_s))::DATE"
        return _finish(ctx, contract, mapped, event_date_sql=event_date)


class ArrivalTrace:
    """Arrival-only request traces (Azure LLM inference trace CSV; Mooncake JSONL): arrival time and token counts,
    no end time, device or model. The user supplies the rest as options, and every filled-in field is named in
    ``estimated_fields``:

    - ``model`` (required) and ``replicas`` (comma-separated; requests are spread over them round-robin);
    - a latency model: ``prefill_tokens_per_s`` (default 10000) and ``decode_s_per_token`` (default 0.03), so that
      first_token_at = arrival + prompt / prefill rate and ended_at = first_token_at + output x decode time;
    - ``start`` (ISO time) for traces whose times are relative (Mooncake), ``timezone`` for naive ones (Azure,
      default UTC).
    """

    patterns = ("*.csv", "*.csv.gz", "*.jsonl", "*.jsonl.gz")
    kind = ""

    def arrival_sql(self, ctx: ParseContext, path: Path, header: str) -> tuple[str, str, str, str]:
        """(arrival timestamp expression, prompt tokens raw, output tokens raw, pre_reason) over the lines."""
        raise NotImplementedError

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        contract = load_contract("requests")
        opts = ctx.options
        if not opts.get("model"):
            raise ValueError(f"{path}: an arrival-only trace needs the model option (--option model=NAME)")
        replicas = [r.strip() for r in str(opts.get("replicas", "")).split(",") if r.strip()]
        if not replicas:
            raise ValueError(f"{path}: an arrival-only trace needs the replicas option (--option replicas=a,b)")
        prefill = float(opts.get("prefill_tokens_per_s", 10_000))
        decode = float(opts.get("decode_s_per_token", 0.03))
        header = lines["raw_text"][0].as_py() if lines.num_rows else ""
        arrival, prompt_raw, output_raw, pre = self.arrival_sql(ctx, path, header)
        body = lines.slice(1) if self.kind == "csv" else lines
        src = _register(ctx, body)
        replica_list = "[" + ", ".join(_sql_str(r) for r in replicas) + "]"
        stem = path.name.split(".")[0]
        filled = "request_id,ended_at,first_token_at,model,replica_id,status"
        mapped = f"""
            WITH base AS (
                SELECT *, {arrival} AS arrival, {prompt_raw} AS prompt_raw, {output_raw} AS output_raw, {pre} AS pre
                FROM {src}
            ),
            typed AS (
                SELECT *, TRY_CAST(prompt_raw AS BIGINT) AS prompt, TRY_CAST(output_raw AS BIGINT) AS output,
                       row_number() OVER (ORDER BY source_line) - 1 AS n
                FROM base
            )
            SELECT source_file, source_line, raw_text, pre AS pre_reason,
                {_sql_str(stem)} || ':' || source_line AS request_id__raw,
                {_sql_str(stem)} || ':' || source_line AS request_id,
                CAST(arrival AS VARCHAR) AS started_at__raw, arrival AS started_at,
                CAST(arrival AS VARCHAR) AS first_token_at__raw,
                arrival + to_microseconds(CAST(round(prompt / {prefill} * 1e6) AS BIGINT)) AS first_token_at,
                CAST(arrival AS VARCHAR) AS ended_at__raw,
                arrival + to_microseconds(CAST(round((prompt / {prefill} + output * {decode}) * 1e6) AS BIGINT))
                    AS ended_at,
                {_sql_str(opts["model"])} AS model__raw, {_sql_str(opts["model"])} AS model,
                {replica_list}[n % {len(replicas)} + 1] AS replica_id__raw,
                {replica_list}[n % {len(replicas)} + 1] AS replica_id,
                NULL AS device_id__raw, NULL::VARCHAR AS device_id, NULL AS host__raw, NULL::VARCHAR AS host,
                prompt_raw AS prompt_tokens__raw, prompt AS prompt_tokens,
                output_raw AS completion_tokens__raw, output AS completion_tokens,
                NULL AS cached_prompt_tokens__raw, NULL::BIGINT AS cached_prompt_tokens,
                NULL AS quantization__raw, NULL::VARCHAR AS quantization,
                NULL AS speculative__raw, NULL::VARCHAR AS speculative,
                NULL AS batching__raw, NULL::VARCHAR AS batching,
                NULL AS tenant__raw, NULL::VARCHAR AS tenant,
                'ok' AS status__raw, 'ok' AS status,
                {_sql_str(filled)} AS estimated_fields__raw, {_sql_str(filled)} AS estimated_fields
            FROM typed
        """
        return _finish(ctx, contract, mapped)


class AzureTraceCsv(ArrivalTrace):
    """Azure LLM inference trace: TIMESTAMP (naive, 7 fractional digits), ContextTokens, GeneratedTokens."""

    kind = "csv"

    def arrival_sql(self, ctx, path, header):
        cols = [c.strip() for c in header.split(",")]
        if cols[:3] != ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]:
            raise ValueError(f"{path}: not an Azure LLM trace (header {header!r})")
        tz = ctx.options.get("timezone", "UTC")
        parts = "string_split(raw_text, ',')"
        arrival = (f"timezone({_sql_str(tz)}, try_strptime(left(trim({parts}[1]), 26), "
                   "['%Y-%m-%d %H:%M:%S.%f', '%Y-%m-%d %H:%M:%S']))")
        pre = f"CASE WHEN len({parts}) <> 3 THEN 'expected 3 fields, got ' || len({parts}) END"
        return arrival, f"trim({parts}[2])", f"trim({parts}[3])", pre


class MooncakeJsonl(ArrivalTrace):
    """Mooncake trace: one JSON object a line with timestamp (ms from the trace start), input_length,
    output_length and hash_ids; needs the ``start`` option (an ISO time for timestamp 0)."""

    kind = "jsonl"

    def arrival_sql(self, ctx, path, header):
        start = ctx.options.get("start")
        if not start:
            raise ValueError(f"{path}: a Mooncake trace has relative times; give --option start=2026-11-02T00:00:00Z")
        arrival = (f"CASE WHEN json_valid(raw_text) THEN TIMESTAMPTZ {_sql_str(start)} + to_microseconds("
                   "CAST(round(TRY_CAST(raw_text::JSON->>'$.timestamp' AS DOUBLE) * 1000) AS BIGINT)) END")
        pre = "CASE WHEN NOT json_valid(raw_text) THEN 'malformed JSON' END"
        return (arrival, "CASE WHEN json_valid(raw_text) THEN raw_text::JSON->>'$.input_length' END",
                "CASE WHEN json_valid(raw_text) THEN raw_text::JSON->>'$.output_length' END", pre)


class LiteLlmSpendLogs:
    """LiteLLM spend-log rows, as CSV (a header naming the fields) or JSONL: request_id, startTime, endTime,
    completionStartTime, model, model_group, api_base, prompt_tokens, completion_tokens, team_id, end_user,
    request_tags, cache_hit, status.

    The model is ``model_group`` (the public name; option ``model_field`` to use ``model``), the replica is the
    deployment's ``api_base`` (name it in deployments.csv), the tenant is ``team_id`` else ``end_user``. A row with
    cache_hit true is loaded with status ``cache_hit``: it was answered from LiteLLM's cache, not by a GPU.
    Naive times are read as UTC.
    """

    patterns = ("*.csv", "*.csv.gz", "*.jsonl", "*.jsonl.gz")

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        contract = load_contract("requests")
        raws = lines["raw_text"].to_pylist()
        is_csv = ".csv" in path.suffixes
        header = next(csv.reader([raws[0]])) if is_csv and raws else []
        body = lines.slice(1) if is_csv and raws else lines
        model_field = ctx.options.get("model_field", "model_group")
        records, pre = [], []
        for raw in raws[1:] if is_csv else raws:
            reason, rec = None, {}
            try:
                if is_csv:
                    row = next(csv.reader(io.StringIO(raw)), [])
                    if len(row) != len(header):
                        reason = f"expected {len(header)} fields, got {len(row)}"
                    rec = dict(zip(header, row))
                else:
                    rec = json.loads(raw)
                    if not isinstance(rec, dict):
                        reason, rec = "not a JSON object", {}
            except (ValueError, csv.Error):
                reason = "malformed JSON" if not is_csv else "malformed CSV row"
            cache_hit = str(rec.get("cache_hit", "")).strip().lower() in ("true", "1", "yes")
            records.append({
                "request_id": rec.get("request_id"), "started_at": rec.get("startTime"),
                "ended_at": rec.get("endTime"), "first_token_at": rec.get("completionStartTime") or None,
                "model": rec.get(model_field) or rec.get("model"), "replica_id": rec.get("api_base"),
                "prompt_tokens": rec.get("prompt_tokens"), "completion_tokens": rec.get("completion_tokens"),
                "tenant": rec.get("team_id") or rec.get("end_user"),
                "status": "cache_hit" if cache_hit else (rec.get("status") or "ok") if rec else None,
            })
            pre.append(reason)
        return _records(ctx, contract, body, records, pre)




def _otlp_value(v):
    """The Python value of an OTLP AnyValue ({"stringValue": ...}, {"intValue": "12"}, ...)."""
    if not isinstance(v, dict):
        return v
    for k in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if k in v:
            return v[k]
    if "arrayValue" in v:
        return ",".join(str(_otlp_value(x)) for x in v["arrayValue"].get("values", []))
    return None


def _otlp_attributes(attrs) -> dict:
    """OTLP's [{key, value}] list, or an already flat {key: value} dict, as a flat dict."""
    if isinstance(attrs, dict):
        return attrs
    return {a.get("key"): _otlp_value(a.get("value")) for a in attrs or [] if isinstance(a, dict)}


class OtelGenAiSpans:
    """OpenTelemetry GenAI spans exported as JSON: OTLP/JSON export requests (``{"resourceSpans": [...]}``, one a
    line as the collector's file exporter writes them, or one pretty-printed document a file), or flat span
    objects one a line (``attributes`` as a dict, ``start_time_unix_nano``/``end_time_unix_nano``).

    Each span is one row: request_id is gen_ai.response.id, else the span id; started_at and ended_at are the
    span's start and end (unix nanoseconds); model is gen_ai.response.model, else gen_ai.request.model; tokens are
    gen_ai.usage.input_tokens and gen_ai.usage.output_tokens (cached: gen_ai.usage.cache_read.input_tokens);
    first_token_at is start + gen_ai.server.time_to_first_token (seconds) when given. The replica is the attribute
    named by the ``replica_attribute`` option (default server.address), looked up on the span then its resource;
    the host is the resource's host.name; the tenant is user.id or enduser.id; a span with status code 2 (ERROR)
    has status ``error``. A span with no gen_ai.* attribute is not an inference request and is quarantined as such.
    """

    patterns = ("*.json", "*.json.gz", "*.jsonl", "*.jsonl.gz")

    def spans(self, lines: pa.Table) -> tuple[list[tuple[int, str, dict | None, dict, str | None]], str]:
        """(source_line, raw text, span, resource attributes, problem) for every span, and the file's shape."""
        raws = lines["raw_text"].to_pylist()
        nums = lines["source_line"].to_pylist()
        docs: list[tuple[int, str, object, str | None]] = []
        for n, raw in zip(nums, raws):
            try:
                docs.append((n, raw, json.loads(raw), None))
            except ValueError:
                docs.append((n, raw, None, "malformed JSON"))
        if raws and docs[0][3] and len(raws) > 1:  # maybe one pretty-printed document
            try:
                docs = [(nums[0], "\n".join(raws), json.loads("\n".join(raws)), None)]
            except ValueError:
                pass
        out = []
        for n, raw, doc, problem in docs:
            if problem or not isinstance(doc, dict):
                out.append((n, raw, None, {}, problem or "not a JSON object"))
                continue
            if "resourceSpans" not in doc:
                out.append((n, raw, doc, {}, None))
                continue
            found = False
            for rs in doc.get("resourceSpans") or []:
                resource = _otlp_attributes((rs.get("resource") or {}).get("attributes"))
                for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
                    for span in ss.get("spans") or []:
                        found = True
                        out.append((n, json.dumps(span, separators=(",", ":")), span, resource, None))
            if not found:
                out.append((n, raw, None, {}, "export request holds no spans"))
        return out

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        contract = load_contract("requests")
        replica_attr = ctx.options.get("replica_attribute", "server.address")
        nums, raw_texts, records, pre = [], [], [], []
        for n, raw, span, resource, problem in self.spans(lines):
            nums.append(n)
            raw_texts.append(raw)
            if span is None:
                records.append({})
                pre.append(problem)
                continue
            a = _otlp_attributes(span.get("attributes"))
            status = span.get("status") or {}
            code = status.get("code") if isinstance(status, dict) else None
            start = span.get("startTimeUnixNano", span.get("start_time_unix_nano"))
            ttft = a.get("gen_ai.server.time_to_first_token")
            records.append({
                "request_id": a.get("gen_ai.response.id") or span.get("spanId") or span.get("span_id"),
                "started_at": start,
                "ended_at": span.get("endTimeUnixNano", span.get("end_time_unix_nano")),
                "first_token_at": None if ttft is None or start is None else f"{start}+{ttft}",
                "model": a.get("gen_ai.response.model") or a.get("gen_ai.request.model"),
                "replica_id": a.get(replica_attr) or resource.get(replica_attr),
                "device_id": a.get("infercost.device_id") or resource.get("infercost.device_id"),
                "host": resource.get("host.name") or a.get("host.name"),
                "prompt_tokens": a.get("gen_ai.usage.input_tokens"),
                "completion_tokens": a.get("gen_ai.usage.output_tokens"),
                "cached_prompt_tokens": a.get("gen_ai.usage.cache_read.input_tokens"),
                "tenant": a.get("user.id") or a.get("enduser.id"),
                "status": "error" if code in (2, "2", "STATUS_CODE_ERROR") else "ok",
            })
            pre.append(None if any(str(k).startswith("gen_ai.") for k in a)
                       else "not a GenAI span (no gen_ai.* attributes)")
        spans = pa.table({"source_file": pa.array([str(path)] * len(nums), pa.string()),
                          "source_line": pa.array(nums, pa.int64()), "raw_text": pa.array(raw_texts, pa.string())})
        ns = epoch_sql("{raw}", "ns")
        first_token = (f"{epoch_sql('split_part({raw}, chr(43), 1)', 'ns')} + to_microseconds(CAST(round("
                       "TRY_CAST(split_part({raw}, chr(43), 2) AS DOUBLE) * 1e6) AS BIGINT))")
        return _records(ctx, contract, spans, records, pre,
                        casts={"started_at": ns, "ended_at": ns, "first_token_at": first_token})
