"""DuckDB's line reader (pipelines/ingest/duckdb_lines.py) gives exactly the Python reader's lines, or declines the
file (None) so that the Python reader reads it; and an ingest by either reader loads and quarantines the same rows
with the same per-file counts."""

import gzip
import shutil
from datetime import date

import duckdb
import pyarrow as pa
import pytest

from pipelines.ingest.duckdb_lines import read_line_relation
from pipelines.ingest.files import iter_line_chunks
from pipelines.ingest.loader import ingest_files
from tests.conftest import REPO, assert_row_identity

TELEMETRY = REPO / "sample_logs" / "telemetry" / "us-west-h100-large-000_2026-11-02.csv.gz"
REQUESTS = REPO / "sample_logs" / "requests" / "2026-11-02.jsonl.gz"

# files DuckDB reads exactly: blank and whitespace lines (ASCII and Unicode spaces), byte order marks, NUL, tabs,
# quotes, backslashes, separators-to-be, no final newline, trailing blank lines
EXACT = {
    "blank_lines": b'{"a":1}\n\n   \n\t\n\xc2\xa0\n\xe3\x80\x80 \n{"b":2}\n',
    "no_final_newline": b"h,x\n1,2\n3,4",
    "trailing_blank": b"h,x\n1,2\n\n\n",
    "bom": b"\xef\xbb\xbfh,x\n1,2\n",
    "double_bom": b"\xef\xbb\xbf\xef\xbb\xbfh,x\n1,2\n\xef\xbb\xbfnot first\n",
    "odd_bytes": b'a\x00b\n"quoted, with comma"\nx\\y\n,,,\n\x1fsep\n' + "\u00e9\u4e2d\U0001f600\n".encode(),
    "short_weird": "\x0b\n\x0c\n\x1c\n \u0085x\n\u0085\n\u2028\n-\n".encode(),
}
# files DuckDB declines, each for its own reason: the Python reader reads them
DECLINED = {
    "crlf": b"h,x\r\n1,2\r\n",
    "stray_cr": b"h,x\n1,\r2\n",
    "not_utf8": b"h,x\n1,\xff2\n",
    "too_long": b"h,x\n" + b"x" * (2**20 + 1) + b"\n",
    "separator": b"h,x\n1\x1f\x1e\x1d2\n",
    "bom_then_blank": b"\xef\xbb\xbf\nh,x\n",
    "bom_then_space": b"\xef\xbb\xbf \nh,x\n",
    "empty": b"",
}


def python_lines(path) -> pa.Table:
    tables, problems = zip(*iter_line_chunks(path, chunk_bytes=None))
    assert not any(problems)
    table = pa.concat_tables(tables)
    first = table["raw_text"][0].as_py() if table.num_rows else ""
    if table.num_rows and table["source_line"][0].as_py() == 1 and first.startswith("\ufeff"):
        table = table.set_column(  # the readers strip a first line's marks (formats.common.strip_bom)
            2, "raw_text", pa.array([first.lstrip("\ufeff")] + table["raw_text"].to_pylist()[1:], pa.string())
        )
    return table


def duckdb_lines(con, path) -> pa.Table | None:
    relation = read_line_relation(con, path)
    if relation is None:
        return None
    try:
        table = con.sql(f"SELECT * FROM {relation.name} ORDER BY source_line").to_arrow_table()
        assert table.num_rows == relation.num_rows
        return table
    finally:
        relation.drop(con)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("name", sorted(EXACT))
def test_duckdb_gives_the_python_readers_lines(name, compress, tmp_path):
    data = EXACT[name]
    path = tmp_path / (f"{name}.csv" + (".gz" if compress else ""))
    path.write_bytes(gzip.compress(data) if compress else data)
    con = duckdb.connect()
    got = duckdb_lines(con, path)
    assert got is not None, f"{name}: declined"
    expected = python_lines(path)
    assert got["source_line"].to_pylist() == expected["source_line"].to_pylist()
    assert got["raw_text"].to_pylist() == expected["raw_text"].to_pylist()
    assert set(got["source_file"].to_pylist()) <= {str(path)}
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall() == [(0,)]  # dropped


@pytest.mark.parametrize("name", sorted(DECLINED))
def test_duckdb_declines_what_it_cannot_read_exactly(name, tmp_path):
    path = tmp_path / f"{name}.csv"
    path.write_bytes(DECLINED[name])
    assert duckdb_lines(duckdb.connect(), path) is None


def test_duckdb_declines_damaged_gzip_and_awkward_names(tmp_path):
    packed = gzip.compress(b"h,x\n" + b"1,2\n" * 10_000)
    (tmp_path / "cut.csv.gz").write_bytes(packed[: len(packed) // 2])
    assert duckdb_lines(duckdb.connect(), tmp_path / "cut.csv.gz") is None  # the Python reader ends it with a problem
    (tmp_path / "a[1]*.csv").write_bytes(b"h,x\n1,2\n")
    assert duckdb_lines(duckdb.connect(), tmp_path / "a[1]*.csv") is None  # DuckDB would read the name as a glob


def digest(con, feed):
    raw = con.execute(f"SELECT * EXCLUDE (loaded_at) FROM raw_{feed} ORDER BY source_file, source_line").fetchall()
    quarantined = con.execute(
        "SELECT partition_date, source_file, source_line, raw_text, reason FROM ingest_quarantine ORDER BY ALL"
    ).fetchall()
    stats = con.execute(
        "SELECT source_file, rows_read, rows_loaded, rows_quarantined, rows_skipped FROM ingest_file_stats ORDER BY ALL"
    ).fetchall()
    return raw, quarantined, stats


def hostile_copy(source, target, header: bool):
    """The sample file with lines gone wrong appended: malformed, a duplicate, an out-of-range value, a blank line;
    a second copy with a CRLF line goes to the Python reader."""
    lines = gzip.decompress(source.read_bytes()).decode().splitlines()[:3000]
    body = lines[1:] if header else lines
    bad = [body[5], body[6][: len(body[6]) // 2], body[7].replace("0", "-9", 1), "", "not a row", body[8] + body[8]]
    text = "\n".join(lines + bad) + "\n"
    target.write_bytes(gzip.compress(text.encode()))
    crlf = target.with_name(target.name.replace("2026", "x2026", 1))
    crlf.write_bytes(text.replace("\n", "\r\n", 40).encode())
    return [target, crlf]


@pytest.mark.parametrize(
    "feed, source, name, header",
    [
        ("requests", REQUESTS, "2026-11-02.jsonl.gz", False),
        ("telemetry", TELEMETRY, "us-west-h100-large-000_2026-11-02.csv.gz", True),
    ],
)
def test_either_reader_loads_and_quarantines_the_same_rows(feed, source, name, header, tmp_path, con, monkeypatch):
    files = hostile_copy(source, tmp_path / name, header)
    files[1] = files[1].rename(files[1].with_name(files[1].name.removesuffix(".gz")))
    results = {}
    for reader in ("python", "duckdb"):
        monkeypatch.setenv("INFERCOST_LINE_READER", reader)
        con.execute(f"DELETE FROM raw_{feed}")
        con.execute("DELETE FROM ingest_quarantine")
        con.execute("DELETE FROM ingest_file_stats")
        report = ingest_files(con, feed, files, date(2026, 11, 2), replace_anyway=True)
        assert report.rows_quarantined > 0
        assert_row_identity(con, feed)
        results[reader] = digest(con, feed)
    assert results["python"] == results["duckdb"]


def test_a_telemetry_file_header_only_or_after_blank_lines(tmp_path, con, monkeypatch):
    header = gzip.decompress(TELEMETRY.read_bytes()).decode().splitlines()[:4]
    (tmp_path / "h-a_2026-11-02.csv").write_text(header[0] + "\n")
    (tmp_path / "h-b_2026-11-02.csv").write_text("\n \n" + "\n".join(header) + "\n")
    shutil.copy(tmp_path / "h-b_2026-11-02.csv", tmp_path / "h-c_2026-11-02.csv")
    files = sorted(tmp_path.glob("h-*.csv"))
    results = {}
    for reader in ("python", "duckdb"):
        monkeypatch.setenv("INFERCOST_LINE_READER", reader)
        ingest_files(con, "telemetry", files, date(2026, 11, 2), replace_anyway=True)
        results[reader] = digest(con, "telemetry")
    assert results["python"] == results["duckdb"]
    assert results["duckdb"][0]  # rows loaded from the files whose header follows blank lines


def test_nvidia_smi_fields_split_by_duckdb_load_as_split_in_sql(tmp_path, con, monkeypatch):
    """A file whose every line has the header's number of fields is split by DuckDB's reader (no split in SQL):
    bad values, a repeated header, units and [N/A] load or quarantine as the Python reader has them."""
    lines = gzip.decompress(TELEMETRY.read_bytes()).decode().splitlines()[:2000]
    header, body = lines[0], lines[1:]
    n = header.count(",")
    bad = [
        header,
        " " + header + " ",
        body[3].replace("2026/", "2O26/", 1),
        ",".join(["[N/A]"] * (n + 1)),
        ",".join([""] * (n + 1)),
        body[4].replace(".", ",", 1).rsplit(",", 1)[0],  # still n + 1 fields
        body[5].replace(", ", ", -", 3),
        body[6],  # a repeated sample
    ]
    path = tmp_path / "us-west-h100-large-000_2026-11-02.csv"
    path.write_text("\ufeff\ufeff" + "\n".join([header] + body[:500] + bad + body[500:]))  # no final newline
    relation = read_line_relation(duckdb.connect(), path, csv_fields=True)
    assert relation is not None and relation.fields == n + 1
    results = {}
    for reader in ("python", "duckdb"):
        monkeypatch.setenv("INFERCOST_LINE_READER", reader)
        report = ingest_files(con, "telemetry", [path], date(2026, 11, 2), replace_anyway=True)
        assert report.rows_quarantined >= 5 and report.rows_read == len(body) + len(bad)
        results[reader] = digest(con, "telemetry")
    assert results["python"] == results["duckdb"]
    reasons = {r[4].split(":")[0] for r in results["duckdb"][1]}
    assert "repeated header line" in reasons and "unparseable ts" in reasons, reasons
