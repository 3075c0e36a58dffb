"""A telemetry file read typed goes straight into the run's transaction when every row loads on the run's day
(pipelines/ingest/whole_files.py); any other file goes the usual way, and nothing of its attempt stays. Either way
the load is the one the usual way gives: rows, quarantined lines, per-file counts and energy sources, and the days
each file is remembered to hold."""

from datetime import date

import pytest

import pipelines.ingest.whole_files as whole_files
from pipelines.ingest.loader import ingest_files
from tests.test_telemetry_typed import BODY, HEADER, _field

DAY = date(2026, 11, 2)

# one line changed: (the change, whether the file goes straight in)
CHANGES = {
    "clean": (lambda line: line, True),
    "next_day": (lambda line: line.replace("2026/11/02 00:", "2026/11/03 00:", 1), False),
    "previous_day": (lambda line: line.replace("2026/11/02 00:", "2026/11/01 23:", 1), False),
    "far_date": (lambda line: line.replace("2026/11/02", "2026/11/05", 1), False),
    "util_above_100": (lambda line: _field(line, 5, "101"), False),
    "unit": (lambda line: _field(line, 4, "71.00 W"), False),  # not read typed: never tried
}


def _load(con) -> dict:
    return {
        "raw": con.execute("SELECT * EXCLUDE (loaded_at) FROM raw_telemetry ORDER BY ALL").fetchall(),
        "quarantine": con.execute(
            "SELECT * EXCLUDE (loaded_at) FROM ingest_quarantine WHERE feed = 'telemetry' ORDER BY ALL"
        ).fetchall(),
        "stats": con.execute(
            "SELECT * EXCLUDE (loaded_at) FROM ingest_file_stats WHERE feed = 'telemetry' ORDER BY ALL"
        ).fetchall(),
        "file_days": con.execute(
            "SELECT source_file, partition_date, rows_filed, rows_dated, rows_sharing_keys FROM ingest_file_days "
            "WHERE feed = 'telemetry' ORDER BY ALL"
        ).fetchall(),
    }


def _both_ways(con, monkeypatch, files, day=DAY) -> tuple[dict, dict, list]:
    """The load of ``files`` with whole files written straight in, and without; and what write_rows returned."""
    written = []
    write_rows = whole_files.write_rows

    def spy(*args):
        written.append(write_rows(*args))
        return written[-1]

    monkeypatch.setattr(whole_files, "write_rows", spy)
    loads = []
    for allowed in (True, False):
        if not allowed:
            monkeypatch.setattr(whole_files, "may_write", lambda *a: False)
        for table in ("raw_telemetry", "ingest_quarantine", "ingest_file_stats", "ingest_file_days"):
            con.execute(f"DELETE FROM {table}")
        report = ingest_files(con, "telemetry", files, day, replace_anyway=True)
        assert report.written
        loads.append((_load(con), report.other_days))
    (straight, other_straight), (usual, other_usual) = loads
    assert other_straight == other_usual
    return straight, usual, written


def _file(tmp_path, name, change, host="us-west-h100-large-000"):
    body = list(BODY)
    body[700] = change(body[700])
    path = tmp_path / f"{host}_2026-11-02.csv"
    path.write_text("\n".join([HEADER, *body]) + "\n")
    return path


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_a_file_goes_straight_in_only_when_every_row_loads_on_the_day(tmp_path, con, monkeypatch, name):
    change, straight = CHANGES[name]
    path = _file(tmp_path, name, change)
    with_files, usual, written = _both_ways(con, monkeypatch, [path])
    assert with_files == usual
    assert any(written) == straight and (name != "unit" or not written)
    assert len(usual["raw"]) == len(BODY) - (name not in ("clean", "unit"))  # one row quarantined or left
    if name == "next_day":  # its row of the next day is left for that day, not loaded, not lost
        assert {r[1] for r in usual["file_days"]} == {DAY, date(2026, 11, 3)}


def test_a_run_of_files_going_both_ways_loads_as_the_usual_way(tmp_path, con, monkeypatch):
    files = [
        _file(tmp_path, "a", CHANGES["clean"][0], "host-a"),
        _file(tmp_path, "b", CHANGES["next_day"][0], "host-b"),
        _file(tmp_path, "c", CHANGES["util_above_100"][0], "host-c"),
        _file(tmp_path, "d", CHANGES["clean"][0], "host-d"),
    ]
    with_files, usual, written = _both_ways(con, monkeypatch, files)
    assert with_files == usual
    assert written == [True, False, False, True]
    assert [r[3:6] for r in usual["stats"]] == [
        (len(BODY), len(BODY), 0),
        (len(BODY) - 1, len(BODY) - 1, 0),  # the row of the next day is that day's
        (len(BODY), len(BODY) - 1, 1),
        (len(BODY), len(BODY), 0),
    ]


def test_a_session_time_zone_files_rows_by_the_same_day_either_way(tmp_path, con, monkeypatch):
    """The run's writer is a second connection: it takes the session's time zone, which dates each row (under
    America/Los_Angeles these samples, just after midnight UTC, are of the day before)."""
    con.execute("SET TimeZone = 'America/Los_Angeles'")
    path = _file(tmp_path, "clean", CHANGES["clean"][0])
    with_files, usual, written = _both_ways(con, monkeypatch, [path], day=date(2026, 11, 1))
    assert with_files == usual and written == [True]
    assert {r[1] for r in usual["file_days"]} == {date(2026, 11, 1)}
    assert len(usual["raw"]) == len(BODY)
