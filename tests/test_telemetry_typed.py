"""The typed read of nvidia-smi CSV (pipelines/ingest/formats/telemetry_typed.py) is kept only where it gives the
text path's rows: a clean file is read typed; a file with any line the typed read cannot take, or any row to
quarantine, is parsed from its text; either way the load is the Python reader's, row for row, quarantined lines
and per-file counts included."""

import functools
import gzip
from datetime import date

import pytest

from pipelines.ingest.duckdb_lines import read_line_relation
from pipelines.ingest.formats.common import ParseContext
from pipelines.ingest.formats.telemetry import NvidiaSmiCsv, _nvsmi_header
from pipelines.ingest.formats.telemetry_typed import parse_typed
from pipelines.ingest.loader import ingest_files
from tests.test_duckdb_lines import TELEMETRY, digest

LINES = gzip.decompress(TELEMETRY.read_bytes()).decode().splitlines()[:1500]
HEADER, BODY = LINES[0], LINES[1:]


def _field(line: str, i: int, value: str) -> str:
    parts = line.split(", ")
    return ", ".join(parts[:i] + [value] + parts[i + 1 :])


# one line changed: (the change, whether the typed read is kept)
CHANGES = {
    "clean": (lambda line: line, True),
    "plus_sign": (lambda line: _field(line, 4, "+5"), True),
    "trailing_space": (lambda line: _field(line, 4, "71.00 "), True),
    "leading_space_ts": (lambda line: " " + line, True),
    "unit": (lambda line: _field(line, 4, "71.00 W"), False),
    "na_power": (lambda line: _field(line, 4, "[N/A]"), False),
    "na_index": (lambda line: _field(line, 1, "[N/A]"), True),  # a text field, not the device id here
    "empty_util": (lambda line: _field(line, 5, ""), False),
    "nan": (lambda line: _field(line, 4, "nan"), False),
    "hex": (lambda line: _field(line, 4, "0x10"), False),
    "above_tdp": (lambda line: _field(line, 4, "5000"), False),
    "util_above_100": (lambda line: _field(line, 5, "101"), False),
    "dash_date": (lambda line: line.replace("2026/11/02", "2026-11-02", 1), False),
    "far_date": (lambda line: line.replace("2026/11/02", "2026/11/05", 1), False),
    "no_fraction": (lambda line: line[:19] + line[23:], False),
    "repeated_header": (lambda line: HEADER, False),
    "non_ascii_device": (lambda line: line.replace("GPU-", "GPU\u00e9-", 1), True),
}


def _typed_read_kept(con, path, relation) -> bool:
    """Whether the typed read of the file (read as fields) is kept; the relation is dropped."""
    ctx = ParseContext(con=con, landing=None, day=date(2026, 11, 2), options={}, name_date=date(2026, 11, 2))
    mapped = functools.partial(NvidiaSmiCsv()._mapped_sql, ctx, path, relation.header)
    try:
        return parse_typed(ctx, relation, _nvsmi_header(path, relation.header)[2], mapped, "power.draw") is not None
    finally:
        relation.drop(con)


def _loads_by_reader(con, monkeypatch, path, lines: int, exact: bool = True) -> dict:
    """The file's load (digest) by the Python and by the DuckDB line reader; each read ``lines`` rows (or more,
    unless ``exact``)."""
    results = {}
    for reader in ("python", "duckdb"):
        monkeypatch.setenv("INFERCOST_LINE_READER", reader)
        report = ingest_files(con, "telemetry", [path], date(2026, 11, 2), replace_anyway=True)
        assert report.rows_read == lines if exact else report.rows_read >= lines
        results[reader] = digest(con, "telemetry")
    return results


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_typed_read_kept_only_where_it_matches_the_text_path(tmp_path, con, monkeypatch, name):
    change, typed = CHANGES[name]
    body = list(BODY)
    body[700] = change(body[700])
    path = tmp_path / f"us-west-h100-large-000-{name.replace('_', '-')}_2026-11-02.csv"
    path.write_text("\n".join([HEADER, *body]) + "\n")
    relation = read_line_relation(con, path, csv_fields=True)
    assert relation is not None and relation.header == HEADER
    assert _typed_read_kept(con, path, relation) == typed
    results = _loads_by_reader(con, monkeypatch, path, len(body))
    assert results["python"] == results["duckdb"]
    assert results["duckdb"][0] and (not typed or not results["duckdb"][1])  # a typed file quarantines nothing


# a file whose text is not exactly its fields, which only the count of its lines (no pass over its text) can tell
# from a clean one before the typed read: (its bytes, whether the typed read is kept)
NOT_EXACT = {
    "blank_line": (None, False),  # a blank line after a whole line in the middle (below)
    "blank_last_line": (lambda b: b + b"\n", False),
    "blank_lines_only_at_end": (lambda b: b + b"\n\n\n", False),
    "crlf_line": (lambda b: b.replace(b"\n", b"\r\n", 1), False),
    "latin1_in_an_unused_field": (lambda b: b.replace(b"NVIDIA", b"NVIDIA\xe9", 1), True),
    "latin1_in_the_device_id": (lambda b: b.replace(b"GPU-", b"GPU\xe9-", 1), False),
    "no_final_line_end": (lambda b: b.rstrip(b"\n"), True),
}


@pytest.mark.parametrize("name", sorted(NOT_EXACT))
@pytest.mark.parametrize("compressed", [False, True])
def test_a_file_not_exactly_its_fields_loads_as_the_python_reader_loads_it(
    tmp_path, con, monkeypatch, name, compressed
):
    change, typed = NOT_EXACT[name]
    text = ("\n".join([HEADER, *BODY]) + "\n").encode()
    cut = text.index(b"\n", 2000) + 1  # a blank line goes after a whole line
    data = change(text) if name != "blank_line" else text[:cut] + b"\n" + text[cut:]
    path = tmp_path / f"us-west-h100-large-000-{name.replace('_', '-')}_2026-11-02.csv"
    if compressed:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    relation = read_line_relation(con, path, csv_fields=True)
    if relation is not None and relation.header is not None:  # the first line allows a read as fields
        assert _typed_read_kept(con, path, relation) == typed
    results = _loads_by_reader(con, monkeypatch, path, len(BODY), exact=False)
    assert results["python"] == results["duckdb"]
