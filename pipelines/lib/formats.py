"""Parsers from the file formats fleets write to the canonical columns of schemas/.

Each parser maps a file's lines to, for every canonical column ``c``, a typed ``c`` and the raw text ``c__raw`` it
came from; the contract then decides each row's fate in one place (:func:`validation_sql`): missing required
values, unparseable values, values outside the contract's bounds or allowed set, plus the feed's own rules
(ended_at before started_at, a request with neither replica nor device, an implausible date).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.lib.contracts import Contract, load_contract
from pipelines.lib.device_power import power_draw_window_sql

_counter = itertools.count()

# a timestamp before this or more than a day after the load is implausible (a clock reset or a unit mix-up)
EARLIEST_PLAUSIBLE = "2000-01-01"


@dataclass
class ParseContext:
    con: duckdb.DuckDBPyConnection
    landing: Path
    day: date | None
    options: dict


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def validation_sql(contract: Contract, extra_rules: list[tuple[str, str]] = ()) -> str:
    """A CASE expression giving the first reason a row breaks the contract, or NULL when it is valid.

    Rows carry ``pre_reason`` (a reason found while parsing, e.g. malformed JSON), then each column's typed value
    and its raw text ``<name>__raw``. extra_rules: (condition, reason expression) checked after the columns.
    """
    whens = ["WHEN pre_reason IS NOT NULL THEN pre_reason"]
    for c in contract.columns:
        raw = f"{c.name}__raw"
        if c.required:
            whens.append(f"WHEN {raw} IS NULL THEN 'missing {c.name}'")
        whens.append(
            f"WHEN {raw} IS NOT NULL AND {c.name} IS NULL THEN 'unparseable {c.name}: ' || left({raw}, 80)"
        )
        if c.type in ("DOUBLE", "BIGINT"):
            whens.append(f"WHEN isnan({c.name}::DOUBLE) OR isinf({c.name}::DOUBLE) THEN '{c.name} is not finite'")
        if c.min is not None:
            whens.append(f"WHEN {c.name} < {c.min} THEN '{c.name} below {c.min}: ' || {c.name}")
        if c.max is not None:
            whens.append(f"WHEN {c.name} > {c.max} THEN '{c.name} above {c.max}: ' || {c.name}")
        if c.allowed:
            allowed = ", ".join(_sql_str(a) for a in c.allowed)
            whens.append(f"WHEN {c.name} NOT IN ({allowed}) THEN '{c.name} not one of {'|'.join(c.allowed)}: ' "
                         f"|| {c.name}")
        if c.type == "TIMESTAMPTZ":
            whens.append(
                f"WHEN {c.name} < TIMESTAMPTZ '{EARLIEST_PLAUSIBLE}' OR {c.name} > now() + INTERVAL 1 DAY "
                f"THEN 'implausible {c.name}: ' || {c.name}"
            )
    whens += [f"WHEN {cond} THEN {reason}" for cond, reason in extra_rules]
    return "CASE " + " ".join(whens) + " END"


def _finish(ctx: ParseContext, contract: Contract, mapped_sql: str, extra_rules=(), event_date_sql: str = None) -> str:
    """Validate the mapped rows and keep canonical columns + lineage + reason + event_date in a temp table."""
    name = f"_parsed_{next(_counter)}"
    part = contract.partition_by
    event_date = event_date_sql or (f"{part}::DATE" if part else "NULL::DATE")
    cols = ", ".join(f"{c.name}::{c.type} AS {c.name}" for c in contract.columns)
    ctx.con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {name} AS
        WITH mapped AS ({mapped_sql})
        SELECT {cols}, source_file, source_line, raw_text,
               {validation_sql(contract, list(extra_rules))} AS reason,
               {event_date} AS event_date
        FROM mapped
    """)
    return name


def _register(ctx: ParseContext, table: pa.Table) -> str:
    name = f"_lines_{next(_counter)}"
    ctx.con.register(name, table)
    return name


class OpenAIJsonl:
    """JSONL request logs with an OpenAI-style usage object (gateways, vLLM's OpenAI server), one object a line.

    Field paths: id (or request_id); started_at, first_token_at, ended_at as ISO-8601 (or start_time/end_time);
    model; replica_id, device_id, host; usage.prompt_tokens, usage.completion_tokens,
    usage.prompt_tokens_details.cached_tokens; status (missing means ok); metadata.tenant (or user),
    metadata.quantization, metadata.speculative, metadata.batching.
    """

    patterns = ("*.jsonl", "*.jsonl.gz", "*.json", "*.json.gz")

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        src = _register(ctx, lines)
        contract = load_contract("requests")

        def field(expr: str, typ: str, name: str) -> str:
            return f"{expr} AS {name}__raw, TRY_CAST({expr} AS {typ}) AS {name}"

        mapped = f"""
            WITH l AS (SELECT *, json_valid(raw_text) AS ok FROM {src}),
            j AS (SELECT *, CASE WHEN ok THEN raw_text::JSON END AS j FROM l)
            SELECT source_file, source_line, raw_text,
                CASE WHEN NOT ok THEN 'malformed JSON'
                     WHEN json_type(j) <> 'OBJECT' THEN 'not a JSON object' END AS pre_reason,
                {field("coalesce(j->>'$.id', j->>'$.request_id')", "VARCHAR", "request_id")},
                {field("coalesce(j->>'$.started_at', j->>'$.start_time')", "TIMESTAMPTZ", "started_at")},
                {field("coalesce(j->>'$.ended_at', j->>'$.end_time')", "TIMESTAMPTZ", "ended_at")},
                {field("j->>'$.first_token_at'", "TIMESTAMPTZ", "first_token_at")},
                {field("j->>'$.model'", "VARCHAR", "model")},
                {field("j->>'$.replica_id'", "VARCHAR", "replica_id")},
                {field("j->>'$.device_id'", "VARCHAR", "device_id")},
                {field("j->>'$.host'", "VARCHAR", "host")},
                {field("j->>'$.usage.prompt_tokens'", "BIGINT", "prompt_tokens")},
                {field("j->>'$.usage.completion_tokens'", "BIGINT", "completion_tokens")},
                {field("j->>'$.usage.prompt_tokens_details.cached_tokens'", "BIGINT", "cached_prompt_tokens")},
                {field("j->>'$.metadata.quantization'", "VARCHAR", "quantization")},
                {field("j->>'$.metadata.speculative'", "VARCHAR", "speculative")},
                {field("j->>'$.metadata.batching'", "VARCHAR", "batching")},
                {field("coalesce(j->>'$.metadata.tenant', j->>'$.user')", "VARCHAR", "tenant")},
                {field("coalesce(j->>'$.status', 'ok')", "VARCHAR", "status")},
                NULL AS estimated_fields__raw, NULL::VARCHAR AS estimated_fields,
                TRY_CAST(j->>'$.created' AS DOUBLE) AS created_s
            FROM j
        """
        rules = [
            ("ended_at < started_at", "'ended_at before started_at'"),
            ("first_token_at < started_at OR first_token_at > ended_at",
             "'first_token_at outside [started_at, ended_at]'"),
            ("replica_id IS NULL AND device_id IS NULL", "'missing replica_id and device_id'"),
            ("cached_prompt_tokens > prompt_tokens", "'cached_prompt_tokens above prompt_tokens'"),
        ]
        event_date = "coalesce(started_at, to_timestamp(created_s))::DATE"
        return _finish(ctx, contract, mapped, rules, event_date)


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
        return _finish(ctx, contract, mapped, [("ended_at < started_at", "'ended_at before started_at'")])


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


_NVSMI_FIELDS = {
    "timestamp": "ts",
    "uuid": "uuid",
    "index": "index",
    "pci.bus_id": "pci_bus_id",
    "power.draw": "power_draw",
    "power.draw.average": "power_draw_average",
    "power.draw.instant": "power_draw_instant",
    "utilization.gpu": "util_pct",
    "memory.used": "mem_used_mib",
}


class NvidiaSmiCsv:
    """``nvidia-smi --query-gpu=... --format=csv[,nounits]`` output, fields in any subset and order.

    Device id: uuid, else pci.bus_id, else <host>:<index>. Host: the file name up to its first ``_`` (or the
    ``host`` option). Power: power.draw.instant (an instantaneous reading, window 0) when present, else
    power.draw.average (a 1 s average), else power.draw, whose meaning depends on the device type in the inventory
    (pipelines/lib/device_power.py: a 1 s average on Ampere and newer except GA100, instantaneous on GA100 and
    Volta and older) unless the ``power_draw_window_s`` option says. A file with no uuid, pci.bus_id or index is one device named by its
    host. Timestamps are ``YYYY/MM/DD HH:MM:SS.fff`` in the ``timezone``
    option (default UTC). Values may carry units ("160.5 W"); "[N/A]" and "[Not Supported]" read as missing.
    """

    patterns = ("*.csv", "*.csv.gz")

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        if lines.num_rows == 0:
            return _finish(ctx, load_contract("telemetry"), _empty_mapped(load_contract("telemetry")))
        header = lines["raw_text"][0].as_py()
        names = [re.sub(r"\s*\[.*\]$", "", h.strip()) for h in header.split(",")]
        pos = {}
        for i, n in enumerate(names, start=1):
            if n in _NVSMI_FIELDS:
                pos[_NVSMI_FIELDS[n]] = i
        if "ts" not in pos or not ({"power_draw", "power_draw_average", "power_draw_instant"} & set(pos)):
            raise ValueError(f"{path}: not an nvidia-smi CSV with timestamp and power.draw (header: {header!r})")
        tz = ctx.options.get("timezone", "UTC")
        window = ctx.options.get("power_draw_window_s")
        host = ctx.options.get("host") or path.name.split("_")[0].removesuffix(".csv").removesuffix(".gz")
        src = _register(ctx, lines.slice(1))

        def val(key):
            if key not in pos:
                return "NULL::VARCHAR"
            return (f"nullif(nullif(regexp_replace(trim(parts[{pos[key]}]), '\\s*(W|%|MiB|MHz|J)$', ''), '[N/A]'),"
                    f" '[Not Supported]')")

        if "power_draw_instant" in pos:
            power_key, window_sql = "power_draw_instant", "0.0"
        elif "power_draw_average" in pos:
            power_key, window_sql = "power_draw_average", "1.0"
        else:  # power.draw: its meaning depends on the device type (pipelines/lib/device_power.py)
            power_key = "power_draw"
            window_sql = (str(float(window)) if window is not None else
                          f"coalesce(power_draw_window_s, {power_draw_window_sql('device_type')})")
        if "uuid" in pos:
            device = val("uuid")
        elif "pci_bus_id" in pos:
            device = val("pci_bus_id")
        elif "index" in pos:
            device = f"{_sql_str(host)} || ':' || {val('index')}"
        else:  # a file of one device: the host names it
            device = _sql_str(host)
        ts_fmt = "['%Y/%m/%d %H:%M:%S.%f', '%Y/%m/%d %H:%M:%S', '%Y-%m-%d %H:%M:%S.%f', '%Y-%m-%d %H:%M:%S']"
        mapped = f"""
            WITH s0 AS (SELECT *, string_split(raw_text, ',') AS parts FROM {src}),
            s AS (SELECT s0.*, inv.device_type, inv.power_draw_window_s FROM s0
                  LEFT JOIN raw_inventory inv ON inv.device_id = {device.replace("parts[", "s0.parts[")})
            SELECT source_file, source_line, raw_text,
                CASE WHEN trim(raw_text) = {_sql_str(header.strip())} THEN 'repeated header line'
                     WHEN len(parts) <> {len(names)} THEN 'expected {len(names)} fields, got ' || len(parts)
                END AS pre_reason,
                {device} AS device_id__raw, {device} AS device_id,
                {val('ts')} AS ts__raw,
                timezone({_sql_str(tz)}, try_strptime({val('ts')}, {ts_fmt})) AS ts,
                {val(power_key)} AS power_w__raw, TRY_CAST({val(power_key)} AS DOUBLE) AS power_w,
                {window_sql}::VARCHAR AS power_window_s__raw, ({window_sql})::DOUBLE AS power_window_s,
                NULL AS energy_counter_j__raw, NULL::DOUBLE AS energy_counter_j,
                {val('util_pct')} AS util_pct__raw, TRY_CAST({val('util_pct')} AS DOUBLE) AS util_pct,
                {val('mem_used_mib')} AS mem_used_mib__raw,
                TRY_CAST({val('mem_used_mib')} AS DOUBLE) AS mem_used_mib,
                {_sql_str(host)} AS host__raw, {_sql_str(host)} AS host
            FROM s
        """
        return _finish(ctx, load_contract("telemetry"), mapped)


class RegionSeriesCsv:
    """An hourly or sub-hourly series per region, one file per region named <region>_*.csv, as
    ``Datetime,<Label> (<unit>)``. The region's row in fleet/regions.csv gives the zone of naive timestamps (UTC
    or local) and the interval length; each timestamp is the start of its interval. Timestamps with a UTC offset
    are read as such. Options: ``value_column`` (a header name, for files with several value columns) and
    ``currency`` (when the header does not say)."""

    patterns = ("*.csv", "*.csv.gz")
    feed = ""

    def header_columns(self, path: Path, header: str, market: str) -> dict:
        """Constant canonical columns read from the header (name -> value)."""
        return {}

    value_column = ""

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        contract = load_contract(self.feed)
        region = path.name.split("_")[0].removesuffix(".csv").removesuffix(".gz")
        found = ctx.con.execute(
            "SELECT market, price_timezone, interval_minutes FROM raw_regions WHERE region = ?", [region]
        ).fetchall()
        if not found:
            raise ValueError(f"{path}: region {region!r} (from the file name) is not in fleet/regions.csv")
        market, tz, minutes = found[0]
        if lines.num_rows == 0:
            return _finish(ctx, contract, _empty_mapped(contract))
        header = lines["raw_text"][0].as_py()
        names = [h.strip() for h in header.split(",")]
        constants = self.header_columns(path, header, market)
        if ctx.options.get("currency"):
            constants["currency"] = ctx.options["currency"]
        if "currency" in constants and not constants["currency"]:
            raise ValueError(f"{path}: header {header!r} names no currency as 'Price (CUR/MWh)'; "
                             "give the currency option")
        # the value column: the option's name, else the second column (e.g. "Real price" in epftoolbox files)
        wanted = ctx.options.get("value_column")
        if wanted and wanted not in names:
            raise ValueError(f"{path}: no column {wanted!r} in header {header!r}")
        pos = names.index(wanted) + 1 if wanted else 2
        src = _register(ctx, lines.slice(1))
        const_sql = "".join(f", {_sql_str(v)} AS {k}__raw, {_sql_str(v)} AS {k}" for k, v in constants.items())
        v = self.value_column
        mapped = f"""
            WITH s0 AS (SELECT *, string_split(raw_text, ',') AS parts FROM {src}),
            s AS (SELECT s0.* REPLACE (list_transform(parts, lambda x: trim(x)) AS parts) FROM s0),
            t AS (SELECT *, CASE
                        -- an explicit UTC offset (ERCOT's -06:00/-05:00) says which instant is meant
                        WHEN regexp_matches(parts[1], '[+-]\\d{{2}}:?\\d{{2}}$') THEN TRY_CAST(parts[1] AS TIMESTAMPTZ)
                        -- naive: local time in the region's zone (a time the spring DST gap skips maps forward)
                        ELSE timezone({_sql_str(tz)}, try_strptime(parts[1],
                            ['%Y-%m-%d %H:%M:%S', '%Y-%m-%d %H:%M', '%Y-%m-%dT%H:%M:%S'])) END AS start_ts FROM s)
            SELECT source_file, source_line, raw_text,
                CASE WHEN len(parts) <> {len(names)} THEN 'expected {len(names)} fields, got ' || len(parts)
                END AS pre_reason,
                {_sql_str(region)} AS region__raw, {_sql_str(region)} AS region,
                parts[1] AS interval_start__raw, start_ts AS interval_start,
                parts[1] AS interval_end__raw, start_ts + INTERVAL {int(minutes)} MINUTE AS interval_end,
                parts[{pos}] AS {v}__raw, TRY_CAST(parts[{pos}] AS DOUBLE) AS {v}{const_sql}
            FROM t
        """
        return _finish(ctx, contract, mapped)


class MarketPriceCsv(RegionSeriesCsv):
    """Hourly or sub-hourly prices as ``Datetime,Price (<CUR>/MWh)`` (the market and its time zone come from
    fleet/regions.csv)."""

    feed = "prices"
    value_column = "price_per_mwh"

    def header_columns(self, path, header, market):
        m = re.search(r"\(([A-Z]{3})/MWh\)", header)
        return {"currency": m.group(1) if m else "", "market": market}


class CarbonIntensityCsv(RegionSeriesCsv):
    """Grid carbon intensity as ``Datetime,Carbon Intensity (gCO2eq/kWh)``, one file per region under carbon/."""

    feed = "carbon"
    value_column = "g_co2e_per_kwh"

    def header_columns(self, path, header, market):
        if not re.search(r"gCO2(eq|e)?/kWh", header):
            raise ValueError(f"{path}: header {header!r} does not give gCO2eq/kWh")
        return {}


class FleetCsv:
    """A version-controlled fleet file (inventory, deployments, models, fx_rates, regions): a CSV whose header
    names the contract's columns; empty cells are missing values."""

    patterns = ("*.csv",)

    def __init__(self, name: str):
        self.name = name

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        contract = load_contract(self.name)
        raws = lines["raw_text"].to_pylist()
        if not raws:
            raise ValueError(f"{path}: empty fleet file")
        header = next(csv.reader([raws[0]]))
        missing = [c for c in contract.required if c not in header]
        if missing:
            raise ValueError(f"{path}: header lacks required columns {missing}")
        records, pre = [], []
        for raw in raws[1:]:
            row = next(csv.reader(io.StringIO(raw)), [])
            pre.append(None if len(row) == len(header) else f"expected {len(header)} fields, got {len(row)}")
            records.append(dict(zip(header, row)))
        return _records(ctx, contract, lines.slice(1), records, pre)


def _records(ctx: ParseContext, contract: Contract, lines: pa.Table, records: list[dict], pre: list,
             extra_rules=(), event_date_sql: str | None = None) -> str:
    """Rows given as dicts of canonical field -> raw value (one per line of ``lines``), cast by the contract."""
    cols = {c.name: [] for c in contract.columns}
    for rec in records:
        for c in contract.columns:
            v = rec.get(c.name)
            v = "" if v is None else str(v).strip()
            cols[c.name].append(v or None)
    data = {"source_file": lines["source_file"], "source_line": lines["source_line"], "raw_text": lines["raw_text"],
            "pre_reason": pa.array(pre, pa.string())}
    data.update({f"{k}__raw": pa.array(v, pa.string()) for k, v in cols.items()})
    src = _register(ctx, pa.table(data))
    casts = ", ".join(f"TRY_CAST({c.name}__raw AS {c.type}) AS {c.name}" for c in contract.columns)
    return _finish(ctx, contract, f"SELECT *, {casts} FROM {src}", extra_rules, event_date_sql)


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
        rules = [("ended_at < started_at", "'ended_at before started_at'"),
                 ("replica_id IS NULL AND device_id IS NULL", "'missing replica_id and device_id'")]
        return _records(ctx, contract, body, records, pre, rules)


def _empty_mapped(contract: Contract) -> str:
    cols = ", ".join(f"NULL::{c.type} AS {c.name}, NULL::VARCHAR AS {c.name}__raw" for c in contract.columns)
    return (f"SELECT NULL::VARCHAR AS source_file, NULL::BIGINT AS source_line, NULL::VARCHAR AS raw_text, "
            f"NULL::VARCHAR AS pre_reason, {cols} WHERE false")


FORMATS = {
    "openai_jsonl": OpenAIJsonl(),
    "nvidia_smi_csv": NvidiaSmiCsv(),
    "market_csv": MarketPriceCsv(),
    "carbon_csv": CarbonIntensityCsv(),
    "azure_trace_csv": AzureTraceCsv(),
    "mooncake_jsonl": MooncakeJsonl(),
    "litellm": LiteLlmSpendLogs(),
}
