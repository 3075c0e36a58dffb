"""Any other file shape, read through a user mapping file (YAML): which source column or JSON path fills each
canonical column of a feed's contract, and how to convert it.

A mapping file::

    feed: requests                 # the contract the rows must meet (requests, telemetry, prices, carbon)
    source:
      type: csv                    # csv (default) or jsonl
      header: false                # a headerless CSV: name its columns with `columns`
      columns: [started_s, tag, duration_s, cpu0_uj, cpu1_uj, gpu_uj, max_tokens, input_tokens]
      delimiter: ","
      skip_when: "tag NOT LIKE 'start-inference-%'"   # rows that are not data (counted as skipped, not dropped)
    fields:
      request_id: {sql: "'wilkins:' || started_s"}     # any DuckDB expression over the source columns
      started_at: {column: started_s, epoch: s}        # unix time in s, ms, us or ns
      ended_at: {sql: "to_timestamp(started_s::DOUBLE + duration_s::DOUBLE)"}
      model: {const: llama-2-7b}                       # a constant
      device_id: {const: v100-0}
      prompt_tokens: input_tokens                      # a bare name: the column as is
      completion_tokens: {column: output_tokens, scale: 1}
      quantization: {column: tags, regex: "quant=(\\w+)", map: {FP8: fp8}}  # technique tags from fields
    power_model: {idle_w: 60, tdp_w: 300}  # telemetry only: power_w from util_pct (see below)

Field forms: a bare column name (or ``$.a.b`` JSON path for jsonl); ``{column|path: ..., ...}`` with any of
``epoch`` (s|ms|us|ns), ``format`` (strptime, e.g. ``%Y/%m/%d %H:%M:%S.%f``) and ``timezone`` (an IANA zone for
naive times; times with an offset keep it; ``epoch: auto`` reads unix s/ms/us/ns by size, else ISO text), ``scale`` (a factor into the contract's unit: 0.001 for mJ to J or ms
to s), ``optional: true`` (the column may be absent from a file), ``regex`` (the first group), ``map`` (value
renames); ``{first_of: [form, form, ...]}`` (the first alternative whose column the file has, each with its own
unit: one mapping for several loggers' spellings; none there is a one-line error naming them); ``{const: value}``; ``{sql: expression}`` over the source columns (all text). Unmapped columns are
missing; ``status`` defaults to ``ok`` and ``power_window_s`` to 0 (instantaneous).

A mapping is code: it is read from the config directory, not the landing (config.py), and every ``sql:`` and
``skip_when`` must be one scalar expression, run where it sees only the file's rows (sandbox.py).

Power model (telemetry with utilization only, e.g. Alibaba's GPU duty-cycle traces): power_w = idle_w + (tdp_w -
idle_w) x util_pct / 100, with idle_w and tdp_w from the mapping or else the device's inventory row. It is a
linear utilization model (as used by Cloud Carbon Footprint and Kepler's fallback): it ignores the clock and the
memory-bound share of the work, so such rows name ``power_w`` in ``estimated_fields``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow as pa
import yaml

from pipelines.ingest.formats.common import (
    ParseContext,
    auto_time_sql,
    check_options,
    columns_sql,
    epoch_sql,
    finish,
    register,
    sql_str,
    strip_bom,
)
from pipelines.ingest.formats.config import resolve_mapping
from pipelines.ingest.formats.sandbox import evaluate, scalar_expression
from pipelines.warehouse.contracts import load_contract

_DEFAULTS = {"requests": {"status": {"const": "ok"}}, "telemetry": {"power_window_s": {"const": 0}}}


def load_mapping(path: Path) -> dict:
    try:
        mapping = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the mapping file ({exc})") from exc
    if not isinstance(mapping, dict) or "feed" not in mapping or not isinstance(mapping.get("fields"), dict):
        raise ValueError(f"{path}: a mapping file needs `feed` and a `fields` mapping")
    contract = load_contract(mapping["feed"])
    unknown = set(mapping["fields"]) - set(contract.names)
    if unknown:
        raise ValueError(
            f"{path}: fields {sorted(unknown)} are not columns of the {mapping['feed']} contract "
            f"({', '.join(contract.names)})"
        )
    return mapping


MAX_LINES_PER_RECORD = 20


def _csv_records(lines: pa.Table, delimiter: str) -> tuple[list[int], list[str], list[list[str]], list]:
    """CSV records with their first line number and raw text. A quoted field may span lines (up to
    MAX_LINES_PER_RECORD); a quote that no later line closes makes its own line a malformed record, so that one
    stray quote never swallows the lines after it."""
    nums_in = lines["source_line"].to_pylist()
    raws_in = lines["raw_text"].to_pylist()
    nums, raws, rows, problems = [], [], [], []
    i = 0
    while i < len(raws_in):
        j, quotes = i, raws_in[i].count('"')
        while quotes % 2 == 1 and j + 1 < len(raws_in) and j - i + 1 < MAX_LINES_PER_RECORD:
            j += 1
            quotes += raws_in[j].count('"')
        if quotes % 2 == 1:  # never closed: this line alone is the bad record
            j = i
        text = "\n".join(raws_in[i : j + 1])
        problem = "unbalanced quote (a quoted field no later line closes)" if quotes % 2 == 1 else None
        try:
            row = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
        except csv.Error as exc:
            row, problem = [], f"malformed CSV row ({exc})"
        nums.append(nums_in[i])
        raws.append(text)
        rows.append(row)
        problems.append(problem)
        i = j + 1
    return nums, raws, rows, problems


class MappedFile:
    """A CSV or JSONL file read through a user mapping file (option ``mapping``: a path, relative to the config
    directory (pipelines/ingest/formats/config.py) or absolute). See the module documentation for the mapping language."""

    feed = None  # the feed its mapping file names (pipelines/ingest/feeds.py reader_feed)
    patterns = ("*.csv", "*.csv.gz", "*.jsonl", "*.jsonl.gz", "*.tsv", "*.txt", "*.tar.gz")

    def __init__(self, mapping_path: Path | None = None):
        self.mapping_path = mapping_path

    @property
    def option_names(self) -> tuple[str, ...]:
        """``mapping`` for the mapped format; none for a shipped mapping (its mapping is fixed)."""
        return () if self.mapping_path else ("mapping",)

    def mapping(self, ctx: ParseContext) -> tuple[Path, dict]:
        path = self.mapping_path or ctx.options.get("mapping")
        if not path:
            raise ValueError("the mapped format needs the mapping option (--option mapping=my_logs.yaml)")
        path = resolve_mapping(path, ctx.landing)
        return path, load_mapping(path)

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        check_options(self, ctx.options)
        lines = strip_bom(lines)
        mpath, mapping = self.mapping(ctx)
        contract = load_contract(mapping["feed"])
        source = mapping.get("source") or {}
        kind = source.get("type", "csv")
        fields = {**_DEFAULTS.get(contract.name, {}), **mapping["fields"]}
        if kind == "csv":
            table, column_sql = self._csv_source(path, lines, source)
        elif kind == "jsonl":
            table, column_sql = lines, None
        else:
            raise ValueError(f"{mpath}: source.type must be csv or jsonl, not {kind!r}")

        def ref(name: str, optional: bool = False) -> str | None:
            if kind == "jsonl" or str(name).startswith("$"):
                p = name if str(name).startswith("$") else f"$.{name}"
                return f"CASE WHEN json_valid(raw_text) THEN raw_text::JSON->>{sql_str(p)} END"
            return column_sql(name, optional)

        ref.path = path
        ref.file_columns = getattr(column_sql, "file_columns", ())

        raw, typed = {}, {}
        for name, spec in fields.items():
            raw[name], typed[name] = self._field_sql(mpath, contract.column(name), spec, ref)
        pre = "NULL"
        if kind == "jsonl":
            pre = "CASE WHEN NOT json_valid(raw_text) THEN 'malformed JSON' END"
        elif "pre_reason" in column_sql.names:
            pre = "pre_reason"
        skip = source.get("skip_when")
        if skip:  # rows the mapping says are not data (a log's setup rows): quarantined as skipped, saying why
            cond = f"try({scalar_expression(skip, 'source.skip_when', mpath)})"
            pre = f"coalesce({pre}, CASE WHEN {cond} THEN {sql_str('skipped by the mapping: ' + str(skip))} END)"
        # the mapping's expressions run in a sandbox that sees only this file's rows (sandbox.py)
        mapped = (
            f"SELECT source_file, source_line, raw_text, CAST({pre} AS VARCHAR) AS pre_reason, "
            f"{columns_sql(contract, raw, typed)} FROM src"
        )
        mapped = f"SELECT * FROM {register(ctx, evaluate(table, mapped))}"
        if contract.name == "telemetry" and "power_model" in mapping:
            mapped = self._power_model(mapping["power_model"] or {}, mapped)
        return finish(ctx, contract, mapped)

    def _csv_source(self, path, lines, source):
        delimiter = source.get("delimiter", ",")
        nums, raws, rows, problems = _csv_records(lines, delimiter)
        header = source.get("header", True)
        if header:
            if not rows:
                names = []
            else:
                names = [h.strip() for h in rows[0]]
                nums, raws, rows, problems = nums[1:], raws[1:], rows[1:], problems[1:]
        else:
            names = [str(n) for n in source.get("columns") or []]
        named = len(names)
        width = max([named] + [len(r) for r in rows])
        names = names + [f"column{i + 1}" for i in range(named, width)]
        # a header fixes the width; named columns of a headerless file must all be there (more may follow)
        problems = [
            p or (f"expected {named} fields, got {len(r)}" if (len(r) != named if header else len(r) < named) else None)
            for p, r in zip(problems, rows)
        ]
        data = {
            "source_file": pa.array([str(path)] * len(rows), pa.string()),
            "source_line": pa.array(nums, pa.int64()),
            "raw_text": pa.array(raws, pa.string()),
            "pre_reason": pa.array(problems, pa.string()),
        }
        for i, n in enumerate(names):
            data[n] = pa.array([(r[i].strip() or None) if i < len(r) else None for r in rows], pa.string())
        table = pa.table(data)

        def column_sql(name, optional=False):
            if name not in names and optional:
                return None
            if name not in names:
                raise ValueError(f"{path}: the mapping names column {name!r}, not in {names}")
            return '"' + name.replace('"', '""') + '"'

        column_sql.names = set(data)
        column_sql.file_columns = names
        return table, column_sql

    def _field_sql(self, mpath: Path, c, spec, ref) -> tuple[str, str]:
        """(raw text SQL, typed SQL) of one canonical column."""
        if not isinstance(spec, dict):
            spec = {"column": spec}
        if "const" in spec:
            lit = sql_str(str(spec["const"]))
            return lit, f"TRY_CAST({lit} AS {c.type})"
        if "sql" in spec:
            # try(): a row the expression fails on (an overflow, a cast) is that row's problem, not the file's
            expr = f"try({scalar_expression(spec['sql'], f'fields.{c.name}.sql', mpath)})"
            return f"CAST({expr} AS VARCHAR)", f"TRY_CAST({expr} AS {c.type})"
        if "first_of" in spec:  # the first alternative whose column the file has (each with its own unit)
            return self._first_of(mpath, c, spec, ref)
        name = spec.get("column", spec.get("path"))
        if name is None:
            raise ValueError(f"{mpath}: field {c.name} needs column, path, const or sql")
        raw = ref(str(name), bool(spec.get("optional")))
        if raw is None:  # an optional column this file does not have
            return "NULL::VARCHAR", f"NULL::{c.type}"
        if spec.get("regex"):
            raw = f"nullif(regexp_extract({raw}, {sql_str(spec['regex'])}, 1), '')"
        if spec.get("map"):
            whens = " ".join(f"WHEN {sql_str(str(k))} THEN {sql_str(str(v))}" for k, v in spec["map"].items())
            raw = f"CASE {raw} {whens} ELSE {raw} END"
        if spec.get("epoch") == "auto":
            typed = auto_time_sql(raw, spec.get("timezone", "UTC"))
        elif spec.get("epoch"):
            typed = epoch_sql(raw, spec["epoch"])
        elif spec.get("format") or spec.get("timezone"):
            tz = sql_str(spec.get("timezone", "UTC"))
            naive = (
                f"try_strptime({raw}, {sql_str(spec['format'])})"
                if spec.get("format")
                else f"TRY_CAST({raw} AS TIMESTAMP)"
            )
            typed = (
                f"CASE WHEN regexp_matches({raw}, '([+-]\\d{{2}}:?\\d{{2}}|Z)$') THEN TRY_CAST({raw} AS "
                f"TIMESTAMPTZ) ELSE timezone({tz}, {naive}) END"
            )
        else:
            typed = f"TRY_CAST({raw} AS {c.type})"
        if spec.get("scale") is not None:
            typed = f"TRY_CAST({raw} AS DOUBLE) * {float(spec['scale'])}"
            if c.type == "BIGINT":
                typed = f"TRY_CAST(round({typed}) AS BIGINT)"
        return raw, typed

    def _first_of(self, mpath: Path, c, spec: dict, ref) -> tuple[str, str]:
        alternatives = spec["first_of"]
        if not isinstance(alternatives, list) or not alternatives:
            raise ValueError(f"{mpath}: field {c.name}: first_of needs a list of field forms")
        names = []
        for alt in alternatives:
            alt = alt if isinstance(alt, dict) else {"column": alt}
            name = alt.get("column", alt.get("path"))
            if name is not None:
                names.append(str(name))
                if ref(str(name), True) is None:  # not in this file: try the next
                    continue
            return self._field_sql(mpath, c, alt, ref)
        # optional, or a file with no header at all (empty, cut short): its rows are quarantined, not the run
        if spec.get("optional") or not getattr(ref, "file_columns", ()):
            return "NULL::VARCHAR", f"NULL::{c.type}"
        columns = ", ".join(ref.file_columns)
        raise ValueError(
            f"{ref.path}: no column for {c.name}: none of {', '.join(names)} is in the file (its "
            f"columns: {columns}); name yours in a mapping file (--format mapped --option mapping=FILE, "
            f"see {mpath.name})"
        )

    def _power_model(self, model: dict, mapped: str) -> str:
        idle = f"{float(model['idle_w'])}" if model.get("idle_w") is not None else "inv.idle_w"
        tdp = f"{float(model['tdp_w'])}" if model.get("tdp_w") is not None else "inv.tdp_w"
        modelled = "m.power_w__raw IS NULL AND m.util_pct IS NOT NULL"
        return f"""
            SELECT m.* REPLACE (
                coalesce(m.pre_reason, CASE WHEN {modelled} AND ({idle} IS NULL OR {tdp} IS NULL)
                    THEN 'power model: device not in the inventory (give idle_w and tdp_w in the mapping)' END)
                    AS pre_reason,
                CASE WHEN {modelled} THEN 'util_pct=' || m.util_pct__raw ELSE m.power_w__raw END AS power_w__raw,
                CASE WHEN {modelled} THEN {idle} + ({tdp} - {idle}) * m.util_pct / 100 ELSE m.power_w END AS power_w,
                CASE WHEN {modelled} THEN 'power_w' ELSE m.estimated_fields__raw END AS estimated_fields__raw,
                CASE WHEN {modelled} THEN 'power_w' ELSE m.estimated_fields END AS estimated_fields)
            FROM ({mapped}) m LEFT JOIN raw_inventory inv ON inv.device_id = m.device_id
        """
