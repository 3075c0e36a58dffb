"""A file read line by line is read by DuckDB piece by piece (pipelines/ingest/duckdb_pieces.py): each piece gives the
Python reader's lines, numbered from its place in the file, whichever path reads it; and an ingest in pieces of a
few lines loads and quarantines what the Python reader does, with the same per-file counts."""

import gzip
from datetime import date

import duckdb
import pyarrow as pa
import pytest

from pipelines.ingest import loader
from pipelines.ingest.duckdb_lines import LineRelation
from pipelines.ingest.duckdb_pieces import iter_piece_lines
from pipelines.ingest.files import iter_line_chunks
from pipelines.ingest.loader import ingest_files
from tests.conftest import REPO, assert_row_identity
from tests.test_duckdb_lines import digest

REQUESTS = REPO / "sample_logs" / "requests" / "2026-11-02.jsonl.gz"


def hostile_text() -> bytes:
    """Sample request lines with, here and there: marks (first, and at a piece's start), blank and space lines, a
    carriage return, bytes that are not UTF-8, a line over the cap, malformed and repeated lines."""
    lines = [x.encode() for x in gzip.decompress(REQUESTS.read_bytes()).decode().splitlines()[:400]]
    lines[0] = b"\xef\xbb\xbf" + lines[0]
    lines[40] = b"\xef\xbb\xbf" + lines[40]
    lines[60:60] = [b"", b"   ", b"\t", "\u3000".encode()]
    lines[90] = lines[90] + b"\r"
    lines[130] = lines[130].replace(b"{", b"{\xff", 1)
    lines[170] = b'{"id":"long","pad":"' + b"x" * (2**20 + 5) + b'"}'
    lines[200] = lines[200][:50]
    lines[210] = lines[12]
    lines[220] = b"\t" + lines[220]
    lines[230] = lines[231] + lines[232]
    return b"\n".join(lines)  # no final newline


def python_pieces(path, chunk_bytes):
    return [(t.to_pylist(), p) for t, p in iter_line_chunks(path, chunk_bytes)]


def duckdb_pieces(con, path, chunk_bytes):
    out, by_duckdb = [], 0
    for lines, problems in iter_piece_lines(con, path, chunk_bytes, 2**20):
        if isinstance(lines, LineRelation):
            by_duckdb += 1
            table = con.sql(f"SELECT * FROM {lines.name} ORDER BY source_line").to_arrow_table()
            lines.drop(con)
            lines = table.cast(
                pa.schema([("source_file", pa.string()), ("source_line", pa.int64()), ("raw_text", pa.string())])
            )
        out.append((lines.to_pylist(), problems))
    return out, by_duckdb


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("chunk_bytes", [700, 2**20])
def test_pieces_give_the_python_readers_lines(compress, chunk_bytes, tmp_path):
    path = tmp_path / ("2026-11-02.jsonl" + (".gz" if compress else ""))
    text = hostile_text()
    path.write_bytes(gzip.compress(text) if compress else text)
    con = duckdb.connect()
    got, by_duckdb = duckdb_pieces(con, path, chunk_bytes)
    expected = python_pieces(path, chunk_bytes)
    for pieces in (got, expected):  # the readers strip the first line's marks (DuckDB's read, or strip_bom)
        pieces[0][0][0]["raw_text"] = pieces[0][0][0]["raw_text"].lstrip("\ufeff")
    assert got == expected
    assert by_duckdb > 0 or chunk_bytes > 5_000  # small pieces: most are DuckDB's (larger ones hold a bad line)
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall() == [(0,)]


def test_an_ingest_in_small_pieces_loads_what_the_python_reader_loads(tmp_path, con, monkeypatch):
    files = [tmp_path / "2026-11-02.jsonl.gz", tmp_path / "extra.jsonl"]
    files[0].write_bytes(gzip.compress(hostile_text()))
    files[1].write_bytes(hostile_text()[:200_000] + b"\n" + hostile_text()[-200_000:])
    monkeypatch.setattr(loader, "CHUNK_BYTES", 3_000)
    monkeypatch.setattr(loader, "BATCH_LINES", 40)
    results = {}
    for reader in ("python", "duckdb"):
        monkeypatch.setenv("INFERCOST_LINE_READER", reader)
        report = ingest_files(con, "requests", files, date(2026, 11, 2), replace_anyway=True)
        assert report.rows_quarantined > 0 and report.rows_loaded > 0
        assert_row_identity(con, "requests")
        results[reader] = digest(con, "requests")
    assert results["python"] == results["duckdb"]
