"""Request-log formats: OpenAI-style JSONL, LiteLLM spend logs, OpenTelemetry GenAI spans (arrival-only traces: arrival.py)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa

from pipelines.ingest.formats.common import (
    ParseContext,
    check_options,
    columns_sql,
    epoch_sql,
    finish,
    labels_sql,
    register,
    sql_str,
    strip_bom,
    typed_records,
)
from pipelines.settings import current
from pipelines.warehouse.contracts import load_contract


class OpenAIJsonl:
    """JSONL request logs with an OpenAI-style usage object (gateways, vLLM's OpenAI server), one object a line.

    Field paths: id (or request_id); started_at, first_token_at, ended_at as ISO-8601 (or start_time/end_time);
    model; replica_id, device_id, host; usage.prompt_tokens, usage.completion_tokens,
    usage.prompt_tokens_details.cached_tokens; status (missing means ok); metadata.tenant (or user),
    metadata.quantization, metadata.speculative, metadata.batching; the metadata keys INFERCOST_REQUEST_LABELS
    names, as labels.
    """

    feed = "requests"  # the feed whose contract its rows meet
    option_names = ()

    patterns = ("*.jsonl", "*.jsonl.gz", "*.json", "*.json.gz")
    chunks = "lines"  # a large file is read piece by piece (pipelines/ingest/loader.py)

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        check_options(self, ctx.options)
        return self._parse_src(ctx, register(ctx, strip_bom(lines)))

    def parse_relation(self, ctx: ParseContext, path: Path, lines) -> str:
        """The same rows from a DuckDB relation of the file's lines (pipelines/ingest/duckdb_lines.py)."""
        check_options(self, ctx.options)
        return self._parse_src(ctx, lines.name)

    def _parse_src(self, ctx: ParseContext, src: str) -> str:
        """The parsed rows of the lines in the relation ``src`` (source_file, source_line, raw_text)."""
        contract = load_contract("requests")

        # every path is read in one parse of the line (one ->> per path would parse the line once per path)
        raw = {
            "request_id": "$.id|$.request_id",
            "started_at": "$.started_at|$.start_time",
            "ended_at": "$.ended_at|$.end_time",
            "first_token_at": "$.first_token_at",
            "model": "$.model",
            "replica_id": "$.replica_id",
            "device_id": "$.device_id",
            "host": "$.host",
            "prompt_tokens": "$.usage.prompt_tokens",
            "completion_tokens": "$.usage.completion_tokens",
            "cached_prompt_tokens": "$.usage.prompt_tokens_details.cached_tokens",
            "quantization": "$.metadata.quantization",
            "speculative": "$.metadata.speculative",
            "batching": "$.metadata.batching",
            "tenant": "$.metadata.tenant|$.user",
            "status": "$.status",
        }
        label_paths = {key: f'$.metadata."{key}"' for key in current().request_labels}
        paths = [x for alternatives in raw.values() for x in alternatives.split("|")] + ["$.created"]
        paths += list(label_paths.values())

        def p(path: str) -> str:
            return f"v[{paths.index(path) + 1}]"

        raw = {
            c: f"coalesce({', '.join(p(x) for x in alternatives.split('|'))})"
            if "|" in alternatives
            else p(alternatives)
            for c, alternatives in raw.items()
        }
        raw["status"] = f"CASE WHEN ok THEN coalesce({p('$.status')}, 'ok') END"
        if label_paths:
            raw["labels"] = labels_sql({key: p(path) for key, path in label_paths.items()})
        path_list = ", ".join(sql_str(x) for x in paths)
        # one parse a line: text that is not JSON fails json_extract_string, try() makes it NULL (JSON gives a list);
        # json_valid first parsed each line twice (10 % of the parse; tests/test_ingest.py, one parse of each line)
        mapped = f"""
            WITH l AS (SELECT *, try(json_extract_string(raw_text, [{path_list}])) AS v FROM {src}),
            j AS (SELECT *, if(raw_text IS NULL, NULL, v IS NOT NULL) AS ok,
                         starts_with(ltrim(raw_text), '{{') AS is_object FROM l)
            SELECT source_file, source_line, raw_text,
                CASE WHEN NOT ok THEN 'malformed JSON'
                     WHEN NOT is_object THEN 'not a JSON object' END AS pre_reason,
                {columns_sql(contract, raw)},
                TRY_CAST({p("$.created")} AS DOUBLE) AS created_s
            FROM j
        """
        # `created` (unix seconds) dates a row with no start; a value past year 9999 (microseconds, 1e308) is none
        event_date = (
            "coalesce(started_at, CASE WHEN created_s BETWEEN 0 AND 253402300799 "
            "THEN to_timestamp(created_s) END)::DATE"
        )
        return finish(ctx, contract, mapped, event_date_sql=event_date)


class LiteLlmSpendLogs:
    """LiteLLM spend-log rows, as CSV (a header naming the fields) or JSONL: request_id, startTime, endTime,
    completionStartTime, model, model_group, api_base, prompt_tokens, completion_tokens, team_id, end_user,
    request_tags, cache_hit, status.

    The model is ``model_group`` (the public name; option ``model_field`` to use ``model``), the replica is the
    deployment's ``api_base`` (name it in deployments.csv), the tenant is ``team_id`` else ``end_user``. A row with
    cache_hit true is loaded with status ``cache_hit``: it was answered from LiteLLM's cache, not by a GPU.
    Naive times are read as UTC.
    """

    feed = "requests"  # the feed whose contract its rows meet
    option_names = ("model_field",)

    patterns = ("*.csv", "*.csv.gz", "*.jsonl", "*.jsonl.gz")

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        check_options(self, ctx.options)
        lines = strip_bom(lines)
        contract = load_contract("requests")
        raws = lines["raw_text"].to_pylist()
        is_csv = ".csv" in path.suffixes
        header = next(csv.reader([raws[0]])) if is_csv and raws else []
        body = lines.slice(1) if is_csv and raws else lines
        model_field = ctx.options.get("model_field", "model_group")
        label_keys = current().request_labels
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
            except (ValueError, csv.Error, RecursionError):  # RecursionError: JSON nested ~1,000 levels deep
                reason = "malformed JSON" if not is_csv else "malformed CSV row"
            cache_hit = str(rec.get("cache_hit", "")).strip().lower() in ("true", "1", "yes")
            records.append(
                {
                    "request_id": rec.get("request_id"),
                    "started_at": rec.get("startTime"),
                    "ended_at": rec.get("endTime"),
                    "first_token_at": rec.get("completionStartTime") or None,
                    "model": rec.get(model_field) or rec.get("model"),
                    "replica_id": rec.get("api_base"),
                    "prompt_tokens": rec.get("prompt_tokens"),
                    "completion_tokens": rec.get("completion_tokens"),
                    "tenant": rec.get("team_id") or rec.get("end_user"),
                    "labels": _labels_json(label_keys, rec.get("metadata"), rec),
                    "status": "cache_hit" if cache_hit else (rec.get("status") or "ok") if rec else None,
                }
            )
            pre.append(reason)
        return typed_records(ctx, contract, body, records, pre)


def _labels_json(keys: tuple[str, ...], *sources) -> str | None:
    """The labels ``keys`` names (INFERCOST_REQUEST_LABELS, read once per file), from the first of ``sources``
    (dicts, or JSON text of one) that has each key, as JSON text; None when no key has a value."""
    found = {}
    for key in keys:
        for source in sources:
            if isinstance(source, str):
                try:
                    source = json.loads(source)
                except ValueError:
                    continue
            if isinstance(source, dict) and source.get(key) not in (None, ""):
                found[key] = str(source[key])
                break
    return json.dumps(found, sort_keys=True, separators=(",", ":")) if found else None


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

    feed = "requests"  # the feed whose contract its rows meet
    option_names = ("replica_attribute",)

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
            except RecursionError:
                docs.append((n, raw, None, "JSON nested too deep"))
        if raws and docs[0][3] and len(raws) > 1:  # maybe one pretty-printed document
            try:
                docs = [(nums[0], "\n".join(raws), json.loads("\n".join(raws)), None)]
            except (ValueError, RecursionError):
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
        check_options(self, ctx.options)
        lines = strip_bom(lines)
        contract = load_contract("requests")
        replica_attr = ctx.options.get("replica_attribute", "server.address")
        label_keys = current().request_labels
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
            records.append(
                {
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
                    "labels": _labels_json(label_keys, a, resource),
                    "status": "error" if code in (2, "2", "STATUS_CODE_ERROR") else "ok",
                }
            )
            pre.append(
                None if any(str(k).startswith("gen_ai.") for k in a) else "not a GenAI span (no gen_ai.* attributes)"
            )
        spans = pa.table(
            {
                "source_file": pa.array([str(path)] * len(nums), pa.string()),
                "source_line": pa.array(nums, pa.int64()),
                "raw_text": pa.array(raw_texts, pa.string()),
            }
        )
        ns = epoch_sql("{raw}", "ns")
        first_token = (
            f"{epoch_sql('split_part({raw}, chr(43), 1)', 'ns')} + to_microseconds(TRY_CAST(round("
            "TRY_CAST(split_part({raw}, chr(43), 2) AS DOUBLE) * 1e6) AS BIGINT))"
        )
        return typed_records(
            ctx, contract, spans, records, pre, casts={"started_at": ns, "ended_at": ns, "first_token_at": first_token}
        )
