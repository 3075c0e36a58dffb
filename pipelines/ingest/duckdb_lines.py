"""A landing file's lines read by DuckDB's multithreaded CSV reader into a DuckDB relation of the same rows as
files.iter_line_chunks gives (source_file, source_line, raw_text), whenever DuckDB gives exactly the lines the Python
path would; a reader with ``parse_relation`` parses them in DuckDB, with no copy through Python or Arrow.

DuckDB reads the file as one VARCHAR column a line (no quote, no escape, a separator no log holds), strictly: a
carriage return anywhere (a CRLF file, a stray one), bytes that are not UTF-8, a line longer than the cap, or one
holding the separator stop the read with an error, and the file is read by the Python path instead (``None`` here),
which keeps each such line's own treatment (CRLF normalized, U+FFFD, an over-long line quarantined). Each physical line
is a row of DuckDB's output, in file order (an empty line a NULL), so its row number is its line number.

Compressed files (gzip, a tar archive of one file) are decompressed by plain_files.py, with decompress.py's caps,
into a temporary plain file that DuckDB then reads in parallel: a file that passes a cap or is damaged is read by the
Python path, which ends it with its problem where it happened. DuckDB strips a UTF-8 byte order mark at the start
of a file as strip_bom does; a file that is a mark and then a line end goes to the Python path (its first line is
not blank there), as does one whose first line is not plainly text. Blank lines are dropped by the rule of
files.lines_table (utf8_is_space, on the few short lines whose first character is not printable ASCII). The file is
read whole, in DuckDB's memory (which spills to disk past INFERCOST_DUCKDB_MEMORY); a file whose reader takes it line
by line is read in pieces instead (duckdb_pieces.py, through read_lines_table and line_relation).
"""

from __future__ import annotations

import itertools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.ingest.files import MAX_LINE_BYTES
from pipelines.ingest.plain_files import GLOB_CHARS as _GLOB_CHARS
from pipelines.ingest.plain_files import DecompressAhead, compressed, count_newlines, decompress_to_temp
from pipelines.warehouse.connection import sql_str

# the column separator of the one-column read: a line holding it is read by the Python path
SEPARATOR_SQL = r"E'\x1f\x1e\x1d'"
_counter = itertools.count()
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class LineRelation:
    """A file's non-blank lines held by DuckDB: ``name`` is a view of source_file, source_line, raw_text (the first
    line's byte order marks stripped, as strip_bom does), ``num_rows`` its rows."""

    name: str
    table: str
    num_rows: int
    fields: int = 0
    """When the file was read as comma-separated fields (``csv_fields``): how many; the view then also has
    field_1 .. field_N, each field's text as written (NULL when empty)."""
    text_sql: str = "raw_text"
    """SQL over the view's columns giving a line's text: for a file read as fields, the line rebuilt from them,
    which a parse computes only for the rows that need it (raw_text, of the view, computes it for every row)."""
    header: str | None = None
    """For a file read as fields: line 1's text (the view's raw_text of line 1), so a parse need not look for it."""
    plain: Path | None = None
    """For a file read as fields: the plain file DuckDB reads (the file, or its decompressed temporary copy)."""
    tmp: Path | None = None
    """A temporary directory holding ``plain``, removed by ``drop``."""
    reader_sql: str = ""
    """For a file read as fields: the read_csv of its fields; the view exists once ``materialize`` made it."""
    source_file: str = ""
    """The landing file's name as its rows give it."""
    text_bytes: int = 0
    """For a file read as fields: the plain file's bytes after a leading byte order mark, which its fields,
    commas and line ends must account for (materialize checks)."""

    def materialize(self, con: duckdb.DuckDBPyConnection) -> None:
        """For a file read as fields (read_csv_fields): its fields copied into ``table``, checked, and the view
        made, once; FieldsNotExact when the file is not exactly its fields (the caller reads it a line a row)."""
        if self.reader_sql:
            _materialize_fields(con, self)

    def drop(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"DROP VIEW IF EXISTS {self.name}")
        con.execute(f"DROP TABLE IF EXISTS {self.table}_blank")
        con.execute(f"DROP TABLE IF EXISTS {self.table}")
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


class FieldsNotExact(Exception):
    """A file read as fields (read_csv_fields) turned out not to be exactly its fields once its text was needed (a
    blank line, a line with other fields, bytes that are not UTF-8...): it is read again a line a row."""


def read_line_relation(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    max_line_bytes: int = MAX_LINE_BYTES,
    csv_fields: bool = False,
    ahead: DecompressAhead | None = None,
) -> LineRelation | None:
    """The file's lines as a LineRelation, or None when DuckDB cannot read them exactly (the caller reads the file
    with files.iter_line_chunks). ``csv_fields``: first try reading the fields too (read_csv_fields), for a file
    whose every line has as many commas as its first; else the file is read a line a row. ``ahead``: where a
    compressed file may already be decompressed (DecompressAhead)."""
    path = Path(path)
    if _GLOB_CHARS & set(str(path)):
        return None
    pending = ahead.take(path) if ahead is not None else None
    tmp = None
    try:
        plain = path
        newlines = None
        if compressed(path):
            tmp, plain, newlines = pending.result() if pending is not None else decompress_to_temp(path)
            if plain is None:
                return None
        relation = read_csv_fields(con, plain, path, max_line_bytes, tmp, newlines) if csv_fields else None
        if relation is not None and relation.tmp is not None:
            tmp = None  # the relation reads the plain file: removed when it is dropped
        if relation is None:
            table = read_lines_table(con, plain, max_line_bytes)
            relation = None if table is None else line_relation(con, table, path)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return relation


def read_lines_table(
    con: duckdb.DuckDBPyConnection, plain: Path, max_line_bytes: int, later_piece: bool = False
) -> str | None:
    """A temp table of the file's lines (raw_text, NULL for an empty line) in file order, or None when DuckDB's
    strict read fails (the reasons in the module docstring). ``later_piece``: the text is a piece of a file after its
    first line (duckdb_pieces.py), where a leading byte order mark is text, not a mark DuckDB may strip."""
    if os.path.getsize(plain) == 0 or _GLOB_CHARS & set(str(plain)):
        return None  # nothing to read (the Python path gives the empty table callers expect), or an awkward name
    with open(plain, "rb") as f:
        starts_with_bom = f.read(len(_BOM)) == _BOM
    if starts_with_bom and later_piece:
        return None
    name = f"_duck_lines_{next(_counter)}"
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {name} AS
            SELECT raw_text FROM read_csv('{plain}', columns = {{'raw_text': 'VARCHAR'}}, header = false,
                auto_detect = false, quote = '', escape = '', comment = '', new_line = '\\n',
                delim = {SEPARATOR_SQL}, strict_mode = true, compression = 'none',
                max_line_size = {int(max_line_bytes) + 1})
        """)
    except duckdb.Error:
        con.execute(f"DROP TABLE IF EXISTS {name}")
        return None
    first_plain = _PLAIN_START.replace("raw_text", "ltrim(raw_text, chr(65279))")
    if starts_with_bom and con.execute(f"SELECT {first_plain} FROM {name} WHERE rowid = 0").fetchall() != [(True,)]:
        con.execute(f"DROP TABLE {name}")  # a mark then a blank line: blank in DuckDB, not in the Python path
        return None
    return name


# a line whose first character is printable ASCII (not a space): never blank, and a mark before it is only a mark
_PLAIN_START = "coalesce(ord(raw_text[1]) BETWEEN 33 AND 126, false)"


def line_relation(con: duckdb.DuckDBPyConnection, table: str, path: Path, lines_before: int = 0) -> LineRelation:
    """The view of the table's non-blank lines with their file and line numbers (the table's first row is line
    ``lines_before`` + 1; a piece after the file's first line keeps a mark at its start)."""
    blank = f"{table}_blank"
    candidates = con.sql(
        f"SELECT rowid AS r, raw_text FROM {table} WHERE raw_text IS NOT NULL AND strlen(raw_text) < 64 "
        f"AND NOT {_PLAIN_START}"
    ).to_arrow_table()
    is_blank = pc.utf8_is_space(candidates["raw_text"]).to_numpy(zero_copy_only=False)
    blank_rows = pa.table({"r": candidates["r"].combine_chunks().filter(pa.array(is_blank, pa.bool_()))})
    con.register(f"{blank}_arrow", blank_rows)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {blank} AS SELECT r FROM {blank}_arrow")
    con.unregister(f"{blank}_arrow")
    source = sql_str(path)
    view = f"{table}_view"
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW {view} AS
        SELECT {source} AS source_file, rowid + {1 + int(lines_before)} AS source_line,
            CASE WHEN rowid = 0 AND {int(lines_before)} = 0 THEN ltrim(raw_text, chr(65279)) ELSE raw_text END
                AS raw_text
        FROM {table}
        WHERE raw_text IS NOT NULL AND rowid NOT IN (SELECT r FROM {blank})
    """)
    n_rows = con.execute(f"SELECT count(*) FROM {table} WHERE raw_text IS NOT NULL").fetchall()[0][0]
    n_rows -= blank_rows.num_rows
    return LineRelation(view, table, n_rows)


def read_csv_fields(
    con: duckdb.DuckDBPyConnection,
    plain: Path,
    path: Path,
    max_line_bytes: int,
    tmp: Path | None = None,
    newlines: int | None = None,
) -> LineRelation | None:
    """The file to be read by DuckDB's CSV reader as comma-separated fields (as many as its first line has; no
    quoting: each field as written), each row with its line and its text rebuilt from its fields; or None when the
    first line rules it out (not UTF-8, one field, a carriage return) or the one-column read's reasons hold.
    Splitting in the reader spares a split of every line in SQL.

    Nothing is read here but the first line and the count of line ends (``newlines``, when the decompression
    counted them): the relation's ``num_rows`` is the file's physical lines, which it has if it is exactly its
    fields. A parse that reads the file typed (formats/telemetry_typed.py) keeps its read only when it gives a row
    for every line after the first, in a strict read; else the fields are copied and checked when a parse asks
    (LineRelation.materialize: every line a row of n fields, every byte accounted for), and a file that is not
    exactly its fields (a blank line, which DuckDB skips; another number of fields; bytes that are not UTF-8) raises
    FieldsNotExact there, to be read a line a row. The relation keeps ``plain`` (and ``tmp``, its temporary
    directory, removed by ``drop``)."""
    with open(plain, "rb") as f:
        first = f.readline(max_line_bytes + 1)
    try:
        header = first.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None
    n = header.count(",") + 1
    if n < 2 or not header.endswith("\n") or "\r" in header or _GLOB_CHARS & set(str(plain)):
        return None
    size = os.path.getsize(plain)
    with open(plain, "rb") as f:
        f.seek(size - 1)
        unended = f.read(1) != b"\n"  # the last line lacks a line end
    n_lines = (count_newlines(plain) if newlines is None else newlines) + unended
    fields = [f"field_{i}" for i in range(1, n + 1)]
    reader = fields_reader_sql(plain, {c: "VARCHAR" for c in fields}, max_line_bytes)
    text = " || ',' || ".join(f"coalesce({c}, '')" for c in fields)
    text_sql = f"CASE WHEN source_line = 1 THEN ltrim({text}, chr(65279)) ELSE {text} END"
    table = f"_duck_fields_{next(_counter)}"
    header_text = header.removesuffix("\n").lstrip("\ufeff")  # line 1 as the view gives it
    text_bytes = size - (len(_BOM) if first.startswith(_BOM) else 0)
    return LineRelation(
        f"{table}_view", table, n_lines, n, text_sql, header_text, plain, tmp, reader, str(path), text_bytes
    )


def fields_reader_sql(plain: Path, columns: dict[str, str], max_line_bytes: int, options: str = "") -> str:
    """DuckDB's strict CSV read of ``plain`` as comma-separated fields of the given types, every line a row."""
    cols = ", ".join(f"'{c}': '{t}'" for c, t in columns.items())
    return (
        f"read_csv('{plain}', columns = {{{cols}}}, header = false, auto_detect = false, quote = '', escape = '', "
        f"comment = '', new_line = '\\n', delim = ',', strict_mode = true, compression = 'none', "
        f"max_line_size = {int(max_line_bytes) + 1}{options})"
    )


def _materialize_fields(con: duckdb.DuckDBPyConnection, rel: LineRelation) -> None:
    """The relation's table (its fields in file order) and its view, made once; FieldsNotExact unless the strict
    read gave a row for every line and the fields account for every byte (each line: its fields, n - 1 commas, a
    line end, which the last may lack)."""
    if con.execute("SELECT 1 FROM duckdb_views() WHERE view_name = ?", [rel.name]).fetchall():
        return
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {rel.table} AS SELECT * FROM {rel.reader_sql}")
    except duckdb.Error as exc:
        con.execute(f"DROP TABLE IF EXISTS {rel.table}")
        raise FieldsNotExact(f"{rel.source_file}: {exc}") from exc
    fields = [f"field_{i}" for i in range(1, rel.fields + 1)]
    field_bytes = " + ".join(f"coalesce(strlen({c}), 0)" for c in fields)
    n_rows, n_bytes = con.execute(f"SELECT count(*), coalesce(sum({field_bytes}), 0) FROM {rel.table}").fetchall()[0]
    if n_rows != rel.num_rows or rel.text_bytes - (n_bytes + n_rows * rel.fields) not in (0, -1):
        con.execute(f"DROP TABLE {rel.table}")
        raise FieldsNotExact(f"{rel.source_file}: {n_rows:,} rows of {rel.num_rows:,} lines")
    source = sql_str(rel.source_file)
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW {rel.name} AS
        SELECT source_file, source_line, {rel.text_sql} AS raw_text, {", ".join(fields)}
        FROM (SELECT {source} AS source_file, rowid + 1 AS source_line, * FROM {rel.table})
    """)
