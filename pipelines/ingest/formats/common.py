"""What the parsers of every feed share: the parse context, the contract's validation, typed casting of records.

Each parser maps a file's lines to, for every canonical column ``c``, a typed ``c`` and the raw text ``c__raw`` it
came from; the contract then decides each row's fate in one place (:func:`validation_sql`): missing required
values, unparseable values, values outside the contract's bounds or a required column's allowed set (an optional
tag's unknown value loads), plus the feed's own rules
(ended_at before started_at, a request with neither replica nor device, an implausible date).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.warehouse.connection import sql_str
from pipelines.warehouse.contracts import Contract

_counter = itertools.count()

# a timestamp before this or more than a day after the load is implausible (a clock reset or a unit mix-up)
EARLIEST_PLAUSIBLE = "2000-01-01"
# what a parse returns for a file whose rows it wrote straight into the run's transaction (ParseContext.write_rows)
WRITTEN = "(rows written into the run's transaction)"


@dataclass
class ParseContext:
    con: duckdb.DuckDBPyConnection
    landing: Path
    day: date | None
    options: dict
    registered: list = field(default_factory=list)
    """Arrow tables registered as views for a parse; release() drops them once the parse's rows are copied."""
    name_date: date | None = None
    """The date in the file's name (files.date_in_name): a row dated more than a day from it is quarantined after
    the parse (load_sql.filed_sql), so such a row keeps its line through the parse."""
    write_rows: Callable[..., bool] | None = None
    """Where a parse may write a whole file's rows straight into the run's transaction, when every row loads on
    the run's day (whole_files.write_rows: ``(rows, query, source_file, energy_source) -> bool``); None: it may not."""

    def release(self) -> None:
        for name in self.registered:
            self.con.unregister(name)
        self.registered.clear()


def check_options(reader, options: dict) -> None:
    """A one-line error for an option key the reader does not take (a misspelling is never silently ignored):
    each reader lists its keys in ``option_names``."""
    valid = tuple(getattr(reader, "option_names", ()))
    unknown = sorted(set(options) - set(valid))
    if unknown:
        name = type(reader).__name__
        raise ValueError(
            f"unknown option {', '.join(map(repr, unknown))} for the {name} reader; valid options: "
            f"{', '.join(sorted(valid)) or '(none)'}"
        )


def strip_bom(lines: pa.Table) -> pa.Table:
    """The lines with a UTF-8 byte order mark removed from the first line of the file (Excel and PowerShell write
    one before a CSV header)."""
    if lines.num_rows == 0 or lines["source_line"][0].as_py() != 1:
        return lines
    first = lines["raw_text"][0].as_py()
    if not first.startswith("\ufeff"):
        return lines
    raw = pa.concat_arrays(
        [
            pa.array([first.lstrip("\ufeff")], lines.schema.field("raw_text").type),
            lines["raw_text"].slice(1).combine_chunks(),
        ]
    )
    return lines.set_column(lines.schema.get_field_index("raw_text"), "raw_text", raw)


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
        whens.append(f"WHEN {raw} IS NOT NULL AND {c.name} IS NULL THEN 'unparseable {c.name}: ' || left({raw}, 80)")
        if c.type in ("DOUBLE", "BIGINT"):
            whens.append(f"WHEN isnan({c.name}::DOUBLE) OR isinf({c.name}::DOUBLE) THEN '{c.name} is not finite'")
        if c.min is not None:
            whens.append(f"WHEN {c.name} < {c.min} THEN '{c.name} below {c.min}: ' || {c.name}")
        if c.max is not None:
            whens.append(f"WHEN {c.name} > {c.max} THEN '{c.name} above {c.max}: ' || {c.name}")
        if c.allowed and c.required:  # an optional tag's allowed values only warn (a quality check names others)
            allowed = ", ".join(sql_str(a) for a in c.allowed)
            whens.append(
                f"WHEN {c.name} NOT IN ({allowed}) THEN '{c.name} not one of {'|'.join(c.allowed)}: ' || {c.name}"
            )
        if c.type == "TIMESTAMPTZ":
            whens.append(
                f"WHEN {c.name} < TIMESTAMPTZ '{EARLIEST_PLAUSIBLE}' OR {c.name} > now() + INTERVAL 1 DAY "
                f"THEN 'implausible {c.name}: ' || {c.name}"
            )
    whens += [f"WHEN {cond} THEN {reason}" for cond, reason in list(contract.rules) + list(extra_rules)]
    return "CASE " + " ".join(whens) + " END"


def far_from_file_date_sql(name_date_sql: str, event_date_sql: str) -> str:
    """The date rule: a row dated more than a day from the date in its file's name, which no run that opens the
    file would load (load_sql.filed_sql quarantines it; finish keeps its line for that)."""
    return f"abs(date_diff('day', {name_date_sql}, {event_date_sql})) > 1"


def finish(ctx: ParseContext, contract: Contract, mapped_sql: str, *options, **named_options) -> str:
    """Validate the mapped rows and keep canonical columns + lineage + reason + event_date in a temp table: the
    rows of finish_query, which takes the options (extra_rules, event_date_sql, raw_text_sql)."""
    return finish_table(ctx, finish_query(ctx, contract, mapped_sql, *options, **named_options))


def finish_table(ctx: ParseContext, query: str) -> str:
    """A finish_query's rows kept in a temp table (a parsed part): its name."""
    name = f"_parsed_{next(_counter)}"
    ctx.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {query}")
    return name


def finish_query(
    ctx: ParseContext,
    contract: Contract,
    mapped_sql: str,
    extra_rules=(),
    event_date_sql: str | None = None,
    raw_text_sql: str = "raw_text",
) -> str:
    """The mapped rows validated: canonical columns + lineage + reason + event_date (a query).
    ``raw_text_sql``: SQL over the mapped columns giving a row's line, when they hold no ``raw_text`` (computed
    only for the rows that keep it)."""
    part = contract.partition_by
    event_date = event_date_sql or (f"{part}::DATE" if part else "NULL::DATE")
    cols = ", ".join(f"{c.name}::{c.type} AS {c.name}" for c in contract.columns)
    # a row that loads needs no copy of its line, unless the load may still quarantine it (a duplicate key, its date)
    keep = "reason IS NOT NULL"
    if ctx.name_date is not None:  # and a row the date rule will quarantine (load_sql.filed_sql)
        name_date = f"DATE '{ctx.name_date.isoformat()}'"
        keep += " OR " + far_from_file_date_sql(name_date, "event_date")
    raw_text = (
        f"{raw_text_sql} AS raw_text"
        if contract.on_duplicate_key == "quarantine"
        else f"CASE WHEN {keep} THEN {raw_text_sql} END AS raw_text"
    )
    return f"""
        WITH mapped AS ({mapped_sql}),
        checked AS (
            SELECT *, {validation_sql(contract, list(extra_rules))} AS reason, {event_date} AS event_date
            FROM mapped
        )
        SELECT {cols}, source_file, source_line, {raw_text}, reason, event_date
        FROM checked
    """


def register(ctx: ParseContext, table: pa.Table) -> str:
    name = f"_lines_{next(_counter)}"
    ctx.con.register(name, table)
    ctx.registered.append(name)
    return name


_US_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}


def epoch_sql(raw: str, unit: str) -> str:
    """A TIMESTAMPTZ from a unix epoch number in ``unit`` (s, ms, us or ns), exact to the microsecond."""
    if unit not in _US_PER_UNIT:
        raise ValueError(f"unknown epoch unit {unit!r}; one of s, ms, us, ns")
    if unit == "ns":  # integers past 2^53: divide exactly, fall back to a double for "1.7e18"-style text
        micros = (
            f"coalesce(TRY_CAST({raw} AS HUGEINT) // 1000, TRY_CAST(round(TRY_CAST({raw} AS DOUBLE) / 1e3) AS HUGEINT))"
        )
    else:
        micros = f"round(TRY_CAST({raw} AS DOUBLE) * {_US_PER_UNIT[unit]})"
    return f"(to_timestamp(0) + to_microseconds(TRY_CAST({micros} AS BIGINT)))"


def typed_records(
    ctx: ParseContext,
    contract: Contract,
    lines: pa.Table,
    records: list[dict],
    pre: list,
    extra_rules=(),
    event_date_sql: str | None = None,
    casts: dict[str, str] | None = None,
) -> str:
    """Rows given as dicts of canonical field -> raw value (one per row of ``lines``, which holds their
    source_file, source_line and raw_text), typed by the contract. ``casts`` gives a column's own SQL over its raw
    text (``{raw}`` in the template), e.g. an epoch in nanoseconds, instead of a plain cast."""
    casts = casts or {}
    cols = {c.name: [] for c in contract.columns}
    for rec in records:
        for c in contract.columns:
            v = rec.get(c.name)
            v = "" if v is None else str(v).strip()
            cols[c.name].append(v or None)
    data = {
        "source_file": lines["source_file"],
        "source_line": lines["source_line"],
        "raw_text": lines["raw_text"],
        "pre_reason": pa.array(pre, pa.string()),
    }
    data.update({f"{k}__raw": pa.array(v, pa.string()) for k, v in cols.items()})
    src = register(ctx, pa.table(data))
    typed = ", ".join(
        (casts[c.name].format(raw=f"{c.name}__raw") if c.name in casts else f"TRY_CAST({c.name}__raw AS {c.type})")
        + f" AS {c.name}"
        for c in contract.columns
    )
    return finish(ctx, contract, f"SELECT *, {typed} FROM {src}", extra_rules, event_date_sql)


def columns_sql(contract: Contract, raw: dict[str, str], typed: dict[str, str] | None = None) -> str:
    """The select list of a parse's mapped rows: for every column ``c`` of the contract, its raw text ``c__raw``
    and its typed value ``c``. ``raw`` gives a column's raw-text SQL, ``typed`` its typed SQL (default: the raw
    text cast to the contract's type); a column in neither is missing (NULL, typed from the contract)."""
    typed = typed or {}
    unknown = (set(raw) | set(typed)) - set(contract.names)
    if unknown:
        raise ValueError(f"not columns of the {contract.name} contract: {sorted(unknown)}")
    out = []
    for c in contract.columns:
        r = raw.get(c.name, "NULL::VARCHAR")
        t = typed.get(c.name, f"TRY_CAST({r} AS {c.type})" if c.name in raw else "NULL")
        out.append(f"CAST({r} AS VARCHAR) AS {c.name}__raw, CAST({t} AS {c.type}) AS {c.name}")
    return ",\n                ".join(out)


def labels_sql(values: dict[str, str]) -> str:
    """A request's labels as JSON text, from the SQL of each label key's value: the keys with a value, null when
    none has one."""
    entries = ", ".join(f"{{'k': {sql_str(k)}, 'v': CAST({v} AS VARCHAR)}}" for k, v in values.items())
    return f"nullif(to_json(map_from_entries(list_filter([{entries}], lambda x: x.v IS NOT NULL))), '{{}}')"


def empty_mapped(contract: Contract) -> str:
    return (
        f"SELECT NULL::VARCHAR AS source_file, NULL::BIGINT AS source_line, NULL::VARCHAR AS raw_text, "
        f"NULL::VARCHAR AS pre_reason, {columns_sql(contract, {})} WHERE false"
    )


def auto_time_sql(raw: str, timezone: str) -> str:
    """A time in whatever form a logger wrote it: a unix number in s, ms, us or ns (told apart by size: any date
    from 1973 to 2286 reads right), else ISO text (naive times in ``timezone``)."""
    num = f"TRY_CAST({raw} AS DOUBLE)"
    iso = (
        f"CASE WHEN regexp_matches({raw}, '([+-]\\d{{2}}:?\\d{{2}}|Z)$') THEN TRY_CAST({raw} AS TIMESTAMPTZ) "
        f"ELSE timezone({sql_str(timezone)}, TRY_CAST({raw} AS TIMESTAMP)) END"
    )
    return (
        f"CASE WHEN {num} IS NULL THEN {iso} WHEN abs({num}) >= 1e17 THEN {epoch_sql(raw, 'ns')} "
        f"WHEN abs({num}) >= 1e14 THEN {epoch_sql(raw, 'us')} WHEN abs({num}) >= 1e11 THEN {epoch_sql(raw, 'ms')} "
        f"ELSE {epoch_sql(raw, 's')} END"
    )
