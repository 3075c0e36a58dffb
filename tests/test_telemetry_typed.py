"""The typed read of nvidia-smi CSV (pipelines/ingest/formats/telemetry_typed.py, staged by staging.stage_clean) is
kept only where it gives the text path's rows: a clean file is read typed; a file with any line the typed read
cannot take, or any row to quarantine, is parsed from its text; either way the load is the Python reader's, row for
row, quarantined lines and per-file counts included."""

import functools
import gzip
from datetime import date

import pytest

from pipelines.ingest.duckdb_lines import read_line_relation
from pipelines.ingest.feeds import resolve_feed
from pipelines.ingest.formats.common import ParseContext
from pipelines.ingest.formats.telemetry import NvidiaSmiCsv
from pipelines.ingest.loader import ingest_files
from pipelines.ingest.staging import clean_pieces, stage_clean
from pipelines.warehouse.connection import ensure_raw_tables
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


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_typed_read_kept_only_where_it_matches_the_text_path(tmp_path, con, monkeypatch, name):
    change, typed = CHANGES[name]
    body = list(BODY)
    body[700] = change(body[700])
    path = tmp_path / f"us-west-h100-large-000-{name.replace('_', '-')}_2026-11-02.csv"
    path.write_text("\n".join([HEADER, *body]) + "\n")
    relation = read_line_relation(con, path, csv_fields=True)
    assert relation is not None and relation.header == HEADER
    ctx = ParseContext(con=con, landing=None, day=date(2026, 11, 2), options={}, name_date=date(2026, 11, 2))
    ensure_raw_tables(con)
    feed, counts = resolve_feed("telemetry"), {}
    stage = functools.partial(stage_clean, con, feed, day=date(2026, 11, 2), counts=counts)
    kept = NvidiaSmiCsv().stage_typed(ctx, path, relation, lambda rows, n: stage(rows_sql=rows, n_rows=n))
    assert kept == typed
    # kept: the file's rows staged and counted; else nothing of it is left in the stage
    pieces = clean_pieces(con, feed)
    staged = sum(con.execute(f"SELECT count(*) FROM {p}").fetchall()[0][0] for p in pieces)
    assert (len(pieces), staged) == ((1, len(body)) if typed else (0, 0))
    assert counts == ({str(path): (len(body), len(body), 0, 0, "power.draw")} if typed else {})
    for p in pieces:
        con.execute(f"DROP TABLE {p}")
    relation.drop(con)
    results = {}
    for reader in ("python", "duckdb"):
        monkeypatch.setenv("INFERCOST_LINE_READER", reader)
        report = ingest_files(con, "telemetry", [path], date(2026, 11, 2), replace_anyway=True)
        assert report.rows_read == len(body)
        results[reader] = digest(con, "telemetry")
    assert results["python"] == results["duckdb"]
    assert results["duckdb"][0] and (not typed or not results["duckdb"][1])  # a typed file quarantines nothing


def test_files_typed_and_not_in_one_run_load_as_the_python_reader(tmp_path, con, monkeypatch):
    """Clean files staged straight from their typed read around files that go back to the text path (their typed
    rows taken out of the stage again, in the middle and at the end): the load is the Python reader's."""
    paths = []
    for i, name in enumerate(["clean", "above_tdp", "clean", "unit", "clean", "far_date"]):
        body = list(BODY)
        body[100 + i] = CHANGES[name][0](body[100 + i])
        paths.append(tmp_path / f"host-{i}_2026-11-02.csv")
        paths[-1].write_text("\n".join([HEADER, *body]) + "\n")
    results = {}
    for reader in ("python", "duckdb"):
        monkeypatch.setenv("INFERCOST_LINE_READER", reader)
        report = ingest_files(con, "telemetry", paths, date(2026, 11, 2), replace_anyway=True)
        assert report.rows_read == len(paths) * len(BODY)
        results[reader] = digest(con, "telemetry")
    assert results["python"] == results["duckdb"]
    assert results["duckdb"][1]  # the three files with a bad row quarantined it
