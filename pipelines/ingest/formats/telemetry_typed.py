"""An nvidia-smi CSV read typed by DuckDB's CSV reader, optimistically: the timestamp and the numbers parsed in the
reader (in parallel, no text of the fields stored), kept only when the rows are exactly what the text path gives.

The text path (NvidiaSmiCsv._parse_body over the file's fields as text) keeps a quarantined row's line, which
typed fields cannot give back. So the typed read is kept only when every row loads: any line the reader cannot
read typed (a unit, [N/A], an empty field, a repeated header, a timestamp in another form: DuckDB's strict read
fails), any row with a reason (a missing or implausible value, a bound, the TDP rule) or that the date rule may
still quarantine (its line would be kept), or a row count that is not the file's, and the file is parsed from its
text instead, as before. What a typed value is: DuckDB's CSV reader parses a DOUBLE as a cast of the text does
(leading spaces allowed) and a TIMESTAMP by the first of the text path's formats (TS_FORMAT), so a file read both
ways gives the same rows (tests/test_telemetry_typed.py).
"""

from __future__ import annotations

import duckdb

from pipelines.ingest.duckdb_lines import LineRelation, fields_reader_sql
from pipelines.ingest.files import MAX_LINE_BYTES
from pipelines.ingest.formats.common import ParseContext, finish, sql_str
from pipelines.warehouse.contracts import load_contract

# the header's fields read typed (their keys in telemetry._NVSMI_FIELDS); the others stay text, cleaned as ever
TYPED = {
    "ts": "TIMESTAMP",
    "power_draw": "DOUBLE",
    "power_draw_average": "DOUBLE",
    "power_draw_instant": "DOUBLE",
    "util_pct": "DOUBLE",
    "mem_used_mib": "DOUBLE",
}
# the first of the formats the text path tries (telemetry.TS_FORMATS): a timestamp in another form fails the read
TS_FORMAT = "%Y/%m/%d %H:%M:%S.%f"
# a parsed row's line where the typed read has none: such a row sends the file to the text path
_NO_TEXT = "'(typed read)'"


def parse_typed(ctx: ParseContext, lines: LineRelation, pos: dict[str, int], mapped_sql) -> str | None:
    """The file's parsed rows (a common.finish table) read typed, or None when the text path must parse it (the
    module docstring). ``pos``: where each known field is (1-based); ``mapped_sql(src, log_host, fields, text_sql,
    typed_fields)``: NvidiaSmiCsv._mapped_sql of the file."""
    typed_at = {i: key for key, i in pos.items() if key in TYPED}
    if lines.plain is None or lines.num_rows < 2 or "ts" not in pos or not typed_at:
        return None
    con = ctx.con
    columns = {
        (f"typed_{i}" if i in typed_at else f"field_{i}"): (TYPED[typed_at[i]] if i in typed_at else "VARCHAR")
        for i in range(1, lines.fields + 1)
    }
    reader = fields_reader_sql(lines.plain, columns, MAX_LINE_BYTES, f", skip = 1, timestampformat = '{TS_FORMAT}'")
    table = f"{lines.table}_typed"
    try:
        # the fields the parse reads (another field's text would serve only a quarantined row's line)
        kept = ", ".join(c for c, i in zip(columns, range(1, lines.fields + 1)) if i in pos.values())
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {kept} FROM {reader}")
        n_rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    except duckdb.Error:
        n_rows = None
    if n_rows != lines.num_rows - 1:  # the reader failed, or read other rows than the file's lines after line 1
        con.execute(f"DROP TABLE IF EXISTS {table}")
        return None
    # each row's line: the table holds the lines after the header in file order (a plain read keeps it)
    cols = ", ".join(
        f"NULL::VARCHAR AS field_{i}, typed_{i}"
        if i in typed_at
        else f"field_{i}"
        if i in pos.values()
        else f"NULL::VARCHAR AS field_{i}"
        for i in range(1, lines.fields + 1)
    )
    src = (
        f"(SELECT {sql_str(lines.source_file)} AS source_file, rowid + 2 AS source_line, NULL::VARCHAR AS raw_text, "
        f"{cols} FROM {table})"
    )
    typed_fields = {key: f"typed_{i}" for i, key in typed_at.items()}
    try:
        parsed = finish(
            ctx,
            load_contract("telemetry"),
            mapped_sql(src, False, lines.fields, _NO_TEXT, typed_fields),
            raw_text_sql=_NO_TEXT,
        )
    finally:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    if con.execute(f"SELECT 1 FROM {parsed} WHERE raw_text IS NOT NULL LIMIT 1").fetchall():
        con.execute(f"DROP TABLE {parsed}")  # a row with a reason, or one the date rule may quarantine: its line
        return None
    return parsed
