"""Arrival-only request traces (Azure LLM inference trace, Mooncake): arrival times and token counts, the rest
filled in from the user's options."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyarrow as pa

from pipelines.ingest.formats.common import (
    ParseContext,
    check_options,
    columns_sql,
    finish,
    register,
    strip_bom,
    validation_sql,
)
from pipelines.warehouse.connection import sql_str
from pipelines.warehouse.contracts import load_contract


def _trace_options(path: Path, opts: dict) -> tuple[list[str], float, float]:
    """The replicas to spread requests over and the latency model (prefill tokens/s, decode s/token)."""
    if not opts.get("model"):
        raise ValueError(f"{path}: an arrival-only trace needs the model option (--option model=NAME)")
    replicas = [r.strip() for r in str(opts.get("replicas", "")).split(",") if r.strip()]
    if not replicas:
        raise ValueError(f"{path}: an arrival-only trace needs the replicas option (--option replicas=a,b)")
    return replicas, float(opts.get("prefill_tokens_per_s", 10_000)), float(opts.get("decode_s_per_token", 0.03))


def _token_columns(contract):
    """The requests contract narrowed to its token counts, to judge them before the times made from them."""
    names = ("prompt_tokens", "completion_tokens")
    return replace(contract, rules=(), columns=tuple(c for c in contract.columns if c.name in names))


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

    feed = "requests"  # the feed whose contract its rows meet
    patterns = ("*.csv", "*.csv.gz", "*.jsonl", "*.jsonl.gz")
    kind = ""

    def arrival_sql(self, ctx: ParseContext, path: Path, header: str) -> tuple[str, str, str, str]:
        """(arrival timestamp expression, prompt tokens raw, output tokens raw, pre_reason) over the lines."""
        raise NotImplementedError

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        check_options(self, ctx.options)
        lines = strip_bom(lines)
        contract = load_contract("requests")
        opts = ctx.options
        replicas, prefill, decode = _trace_options(path, opts)
        header = lines["raw_text"][0].as_py() if lines.num_rows else ""
        arrival, prompt_raw, output_raw, pre = self.arrival_sql(ctx, path, header)
        body = lines.slice(1) if self.kind == "csv" else lines
        src = register(ctx, body)
        replica_list = "[" + ", ".join(sql_str(r) for r in replicas) + "]"
        stem = path.name.split(".")[0]
        filled = "request_id,ended_at,first_token_at,model,replica_id,status"
        request_id, replica = f"{sql_str(stem)} || ':' || source_line", f"{replica_list}[n % {len(replicas)} + 1]"
        # a duration past BIGINT microseconds (tokens of 2^63) is no time: the row is quarantined, not the day
        first_token = f"arrival + to_microseconds(TRY_CAST(round(prompt / {prefill} * 1e6) AS BIGINT))"
        end = f"arrival + to_microseconds(TRY_CAST(round((prompt / {prefill} + output * {decode}) * 1e6) AS BIGINT))"
        raw = {
            "request_id": request_id,
            "started_at": "CAST(arrival AS VARCHAR)",
            "first_token_at": "CAST(arrival AS VARCHAR)",
            "ended_at": "CAST(arrival AS VARCHAR)",
            "model": sql_str(opts["model"]),
            "replica_id": replica,
            "prompt_tokens": "prompt_raw",
            "completion_tokens": "output_raw",
            "status": "'ok'",
            "estimated_fields": sql_str(filled),
        }
        typed = {
            "started_at": "arrival",
            "first_token_at": first_token,
            "ended_at": end,
            "prompt_tokens": "prompt",
            "completion_tokens": "output",
        }
        tokens = _token_columns(contract)
        mapped = f"""
            WITH base AS (
                SELECT *, {arrival} AS arrival, {prompt_raw} AS prompt_raw, {output_raw} AS output_raw, {pre} AS pre
                FROM {src}
            ),
            typed AS (
                SELECT *, TRY_CAST(prompt_raw AS BIGINT) AS prompt, TRY_CAST(output_raw AS BIGINT) AS output,
                       row_number() OVER (ORDER BY source_line) - 1 AS n
                FROM base
            ),
            -- the token counts are judged before the times made from them, so that a bad count is named as such
            checked AS (
                SELECT *, {validation_sql(tokens)} AS problem
                FROM (SELECT *, pre AS pre_reason, prompt_raw AS prompt_tokens__raw, prompt AS prompt_tokens,
                             output_raw AS completion_tokens__raw, output AS completion_tokens FROM typed)
            )
            SELECT source_file, source_line, raw_text, problem AS pre_reason, {columns_sql(contract, raw, typed)}
            FROM checked
        """
        return finish(ctx, contract, mapped)


class AzureTraceCsv(ArrivalTrace):
    """Azure LLM inference trace: TIMESTAMP (naive, 7 fractional digits), ContextTokens, GeneratedTokens."""

    option_names = ("model", "replicas", "prefill_tokens_per_s", "decode_s_per_token", "timezone")

    kind = "csv"

    def arrival_sql(self, ctx, path, header):
        cols = [c.strip() for c in header.split(",")]
        if cols[:3] != ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]:
            raise ValueError(f"{path}: not an Azure LLM trace (header {header!r})")
        tz = ctx.options.get("timezone", "UTC")
        parts = "string_split(raw_text, ',')"
        arrival = (
            f"timezone({sql_str(tz)}, try_strptime(left(trim({parts}[1]), 26), "
            "['%Y-%m-%d %H:%M:%S.%f', '%Y-%m-%d %H:%M:%S']))"
        )
        pre = f"CASE WHEN len({parts}) <> 3 THEN 'expected 3 fields, got ' || len({parts}) END"
        return arrival, f"trim({parts}[2])", f"trim({parts}[3])", pre


class MooncakeJsonl(ArrivalTrace):
    """Mooncake trace: one JSON object a line with timestamp (ms from the trace start), input_length,
    output_length and hash_ids; needs the ``start`` option (an ISO time for timestamp 0)."""

    option_names = ("model", "replicas", "prefill_tokens_per_s", "decode_s_per_token", "start")

    kind = "jsonl"

    def arrival_sql(self, ctx, path, header):
        start = ctx.options.get("start")
        if not start:
            raise ValueError(f"{path}: a Mooncake trace has relative times; give --option start=2026-11-02T00:00:00Z")
        arrival = (
            f"CASE WHEN json_valid(raw_text) THEN TIMESTAMPTZ {sql_str(start)} + to_microseconds("
            "TRY_CAST(round(TRY_CAST(raw_text::JSON->>'$.timestamp' AS DOUBLE) * 1000) AS BIGINT)) END"
        )
        pre = "CASE WHEN NOT json_valid(raw_text) THEN 'malformed JSON' END"
        return (
            arrival,
            "CASE WHEN json_valid(raw_text) THEN raw_text::JSON->>'$.input_length' END",
            "CASE WHEN json_valid(raw_text) THEN raw_text::JSON->>'$.output_length' END",
            pre,
        )
