"""A file whose reader takes it line by line (``chunks = "lines"``: request JSONL) read by DuckDB piece by piece, so
that a file of any size is never held whole, on disk or in memory.

Its text is cut at line ends into pieces of about CHUNK_BYTES by the Python reader's own splitter (files.split_text:
the same line numbers, over-long lines and end-of-stream problems), in a thread one piece ahead of the parse (zlib
and file writes release the GIL), each piece written to a temporary file that DuckDB's multithreaded reader reads
strictly (duckdb_lines.read_lines_table) and that is removed once read. A piece DuckDB cannot read exactly (a carriage
return, bytes that are not UTF-8, an over-long line, a byte order mark at the start of a later piece...) is read by the
Python path (files.lines_table on the same text): each piece gives exactly the lines the Python reader gives.
"""

from __future__ import annotations

import itertools
import queue
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.ingest.duckdb_lines import line_relation, read_lines_table
from pipelines.ingest.files import count_lines, lines_table, split_text
from pipelines.warehouse import temp_files


@dataclass(frozen=True)
class TextPiece:
    """A piece of a file's text, in a temporary file of its own."""

    file: Path
    lines_before: int
    """The file's physical lines before the piece (its first line is line lines_before + 1)."""
    n_lines: int
    """The piece's physical lines, blank ones included."""


def iter_piece_lines(con: duckdb.DuckDBPyConnection, path: Path, chunk_bytes: int, max_line_bytes: int):
    """The file's non-blank lines piece by piece: (lines, problems) for each piece, the lines a LineRelation read by
    DuckDB (the caller drops it) or, where DuckDB declines the piece, an Arrow table of the Python path (files.
    lines_table); the problems are the LineProblems of the piece, as files.iter_line_chunks gives them."""
    pieces = iter_text_pieces(path, chunk_bytes, max_line_bytes)
    try:
        for piece, problems in pieces:
            try:
                relation = _piece_relation(con, path, piece, max_line_bytes)
                if relation is not None:
                    yield relation, problems
                    continue
                table, _, long = lines_table(path, piece.file.read_bytes(), piece.lines_before, max_line_bytes)
            finally:
                piece.file.unlink(missing_ok=True)
            yield table, problems + long
    finally:
        pieces.close()


def _piece_relation(con: duckdb.DuckDBPyConnection, path: Path, piece: TextPiece, max_line_bytes: int):
    """The piece's lines read by DuckDB, numbered from its place in the file, or None when DuckDB declines it."""
    table = read_lines_table(con, piece.file, max_line_bytes, later_piece=piece.lines_before > 0)
    if table is None:
        return None
    if con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] != piece.n_lines:  # a row a physical line
        con.execute(f"DROP TABLE {table}")
        return None
    return line_relation(con, table, path, piece.lines_before)


def iter_text_pieces(path: Path, chunk_bytes: int, max_line_bytes: int):
    """(TextPiece, LineProblems) for each piece of the file, cut by files.split_text in a thread that stays one
    piece ahead (so a file's decompression overlaps its parse); the pieces' files are removed at the end."""
    tmp = temp_files.make_dir("pieces")
    numbers = itertools.count()

    def write_piece(_path: Path, text: bytes, lines_before: int, _max: int):
        file = tmp / f"piece-{next(numbers)}.txt"
        with open(file, "wb") as f:
            f.write(text)
        n_lines = count_lines(text)
        return TextPiece(file, lines_before, n_lines), lines_before + n_lines, []

    handed: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand(item) -> bool:
        while not stop.is_set():
            try:
                handed.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in split_text(path, chunk_bytes, max_line_bytes, write_piece):
                if not hand(("piece", item)):
                    return
            hand(("end", None))
        except BaseException as exc:  # raised where the pieces are taken, as the Python path would raise it
            hand(("error", exc))

    producer = threading.Thread(target=produce, name="infercost-pieces", daemon=True)
    producer.start()
    try:
        while True:
            kind, item = handed.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        producer.join()
        shutil.rmtree(tmp, ignore_errors=True)
