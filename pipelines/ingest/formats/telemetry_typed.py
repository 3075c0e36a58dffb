"""An nvidia-smi CSV read typed by DuckDB's CSV reader, optimistically: the timestamp and the numbers parsed in the
reader (in parallel, no text of the fields stored), kept only when the rows are exactly what the text path gives.

The text path (NvidiaSmiCsv._parse_body over the file's fields as text) keeps a quarantined row's line, which
typed fields cannot give back. So the typed read is kept only when every row loads: any line the reader cannot
read typed (a unit, [N/A], an empty field, a repeated header, a timestamp in another form: DuckDB's strict read
fails), any row with a reason (a missing or implausible value, a bound, the TDP rule) or that the date rule may
still quarantine (its line would be kept), or a row count that is not the file's, and the file is parsed from its
text instead, as before. What a typed value is: DuckDB's CSV reader parses a DOUBLE as a cast of the text does
(leading spaces allowed) and a TIMESTAMP by the first of the text path's formats (TS_FORMAT), so a file read both
ways gives the same rows (tests/test_telemetry_typed.py). The typed read is handed over as Arrow (with each row's
line number): in a run that writes as it goes, a file whose every row loads on the run's day is validated and
inserted by the run's writer in one statement (pipelines/ingest/whole_files.py); else it is validated here into a
parsed part, as before.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from pipelines.ingest.duckdb_lines import LineRelation, fields_reader_sql
from pipelines.ingest.files import MAX_LINE_BYTES
from pipelines.ingest.formats.common import WRITTEN, ParseContext, finish_query, finish_table, sql_str
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


def parse_typed(
    ctx: ParseContext, lines: LineRelation, pos: dict[str, int], mapped_sql, energy_source: str
) -> str | None:
    """The file's parsed rows (a common.finish table) read typed, WRITTEN when they went straight into the run's
    transaction instead (ctx.write_rows: every row loads on the run's day), or None when the text path must parse
    it (the module docstring). ``pos``: where each known field is (1-based); ``mapped_sql(src, log_host, fields,
    text_sql, typed_fields)``: NvidiaSmiCsv._mapped_sql of the file; ``energy_source``: the column its power comes
    from (the same for every row)."""
    typed_at = {i: key for key, i in pos.items() if key in TYPED}
    if lines.plain is None or lines.num_rows < 2 or "ts" not in pos or not typed_at:
        return None
    con = ctx.con
    columns = {
        (f"typed_{i}" if i in typed_at else f"field_{i}"): (TYPED[typed_at[i]] if i in typed_at else "VARCHAR")
        for i in range(1, lines.fields + 1)
    }
    reader = fields_reader_sql(lines.plain, columns, MAX_LINE_BYTES, f", skip = 1, timestampformat = '{TS_FORMAT}'")
    # the fields the parse reads (another field's text would serve only a quarantined row's line)
    kept = ", ".join(c for c, i in zip(columns, range(1, lines.fields + 1)) if i in pos.values())
    try:
        rows = con.sql(f"SELECT {kept} FROM {reader}").to_arrow_table()
    except duckdb.Error:
        return None
    if rows.num_rows != lines.num_rows - 1:  # read other rows than the file's lines after line 1
        return None
    # each row's line: the reader gives the lines after the header in file order
    rows = rows.append_column("source_line", pa.array(np.arange(2, rows.num_rows + 2, dtype=np.int64)))
    cols = ", ".join(
        f"NULL::VARCHAR AS field_{i}, typed_{i}"
        if i in typed_at
        else f"field_{i}"
        if i in pos.values()
        else f"NULL::VARCHAR AS field_{i}"
        for i in range(1, lines.fields + 1)
    )
    typed_fields = {key: f"typed_{i}" for i, key in typed_at.items()}

    def parsed_query(name: str) -> str:
        src = f"(SELECT {sql_str(lines.source_file)} AS source_file, source_line, NULL::VARCHAR AS raw_text, {cols} FROM {name})"
        mapped = mapped_sql(src, False, lines.fields, _NO_TEXT, typed_fields)
        return finish_query(ctx, load_contract("telemetry"), mapped, raw_text_sql=_NO_TEXT)

    if ctx.write_rows is not None and ctx.write_rows(rows, parsed_query, lines.source_file, energy_source):
        return WRITTEN
    name = f"{lines.table}_typed"
    con.register(name, rows)
    try:
        parsed = finish_table(ctx, parsed_query(name))
    finally:
        con.unregister(name)
    if con.execute(f"SELECT 1 FROM {parsed} WHERE raw_text IS NOT NULL LIMIT 1").fetchall():
        con.execute(f"DROP TABLE {parsed}")  # a row with a reason, or one the date rule may quarantine: its line
        return None
    return parsed
