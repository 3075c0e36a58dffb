"""A run of a day does not open a landing file it remembers holding none of the day's rows (pipelines/ingest/
file_days.py), and loads exactly what it loads when it opens every file; a file that changed, or is read another
way, is opened again."""

import os
from datetime import date, timedelta

from pipelines.ingest import file_days
from pipelines.ingest.feeds import resolve_feed
from pipelines.ingest.loader import ingest_feed
from tests.conftest import run_cli
from tests.test_ingest import good_request
from tests.test_ingest_other_days import loaded, requests_of, write

NOV1, NOV2, NOV3, NOV4 = (date(2026, 11, d) for d in (1, 2, 3, 4))

WAREHOUSE_ROWS = {
    "raw_requests": "SELECT * EXCLUDE (loaded_at) FROM raw_requests",
    "ingest_quarantine": "SELECT * EXCLUDE (loaded_at) FROM ingest_quarantine WHERE feed = 'requests'",
    "ingest_file_stats": "SELECT * EXCLUDE (loaded_at) FROM ingest_file_stats WHERE feed = 'requests'",
}


def not_opened(report) -> list[str]:
    return [os.path.basename(f) for f in report.files_not_opened]


def land_days(landing, days, per_day=20, late_in=(NOV2,)):
    """A file per day, each with its day's requests and a bad line (quarantined on the day of the row before it);
    the files of ``late_in`` also hold a row of the next day (a log rotated late)."""
    for k, day in enumerate(days):
        ids = range(100_000 * k, 100_000 * k + per_day)
        late = requests_of(day + timedelta(days=1), [100_000 * k + 99_999]) if day in late_in else []
        write(landing, f"api_{day}.jsonl", requests_of(day, ids) + ["{not json"] + late)


def test_a_run_does_not_open_a_remembered_file_without_its_day(con, landing):
    land_days(landing, [NOV1, NOV2, NOV3, NOV4])
    assert ingest_feed(con, "requests", landing, NOV1).files_not_opened == []  # 11-01's and 11-02's files read
    # 11-01's file holds none of 11-02; 11-02's holds it, 11-03's is new
    second = ingest_feed(con, "requests", landing, NOV2)
    assert not_opened(second) == ["api_2026-11-01.jsonl"] and second.rows_loaded == 20
    assert "1 file not opened (remembered unchanged, with no row of the day" in second.summary()
    # 11-02's file holds a row of 11-03 (opened), 11-04's is new
    third = ingest_feed(con, "requests", landing, NOV3)
    assert not_opened(third) == [] and third.rows_loaded == 21
    fourth = ingest_feed(con, "requests", landing, NOV4)
    assert not_opened(fourth) == ["api_2026-11-03.jsonl"] and fourth.rows_loaded == 20
    assert [loaded(con, d) for d in (NOV1, NOV2, NOV3, NOV4)] == [20, 20, 21, 20]
    days = con.execute(
        "SELECT partition_date, rows_filed, rows_dated FROM ingest_file_days WHERE source_file LIKE '%api_2026-11-02.jsonl' ORDER BY 1"
    ).fetchall()
    assert days == [(NOV2, 21, 0), (NOV3, 1, 0)]  # the bad line takes the day of the row before it


def runs_both_ways(con, landing, tmp_path, days) -> int:
    """Run ``days`` in turn into ``con`` (remembering) and into a warehouse that forgets before every run (every
    file opened); assert the same rows, quarantine and file counts after each run; return the files not opened."""
    from pipelines.warehouse.connection import connect

    plain = connect(tmp_path / "plain.duckdb")
    skipped = 0
    try:
        for day in days:
            skipped += len(ingest_feed(con, "requests", landing, day).files_not_opened)
            plain.execute("DROP TABLE IF EXISTS ingest_file_days")  # no memory: every file is opened
            assert ingest_feed(plain, "requests", landing, day).files_not_opened == []
            for name, query in WAREHOUSE_ROWS.items():
                mine = sorted(con.execute(query).fetchall(), key=repr)
                assert mine == sorted(plain.execute(query).fetchall(), key=repr), (name, day)
    finally:
        plain.close()
    return skipped


def test_remembering_loads_what_opening_every_file_loads(con, landing, tmp_path):
    """Runs of days in the order a backfill and nightly runs make, with and without the memory: the same rows,
    quarantine and file counts."""
    land_days(landing, [NOV1, NOV2, NOV3, NOV4])
    assert runs_both_ways(con, landing, tmp_path, [NOV1, NOV2, NOV3, NOV4, NOV2, NOV3, NOV1, NOV4]) >= 6


def test_a_request_id_in_two_days_files_keeps_both_files_opened(con, landing, tmp_path):
    """The loader ranks two rows of one request_id by their files' arrival, whatever their days: a file holding a
    key another file has is opened by every run that may read it, so a re-run loads what the first run loaded
    (found by a stranger's test: without this, re-running 11-02 loaded the later copy too)."""
    third = landing / "requests" / "api_2026-11-03.jsonl"
    write(landing, third.name, requests_of(NOV3, range(300, 310)) + requests_of(NOV3, [500]))
    os.utime(third, ns=(10**18, 10**18))  # arrived first
    write(landing, "api_2026-11-02.jsonl", requests_of(NOV2, range(200, 210)) + requests_of(NOV2, [500]))
    assert runs_both_ways(con, landing, tmp_path, [NOV2, NOV2, NOV3, NOV2, NOV3]) == 0
    reason = con.execute("SELECT reason FROM ingest_quarantine WHERE partition_date = ?", [NOV2]).fetchall()
    assert [r[0] for r in reason] == [f"duplicate request_id (first loaded from {third}:11)"]


def test_a_changed_file_is_opened_again(con, landing):
    land_days(landing, [NOV1, NOV2, NOV3])
    for day in (NOV1, NOV2):
        ingest_feed(con, "requests", landing, day)
    assert not_opened(ingest_feed(con, "requests", landing, NOV2)) == ["api_2026-11-01.jsonl", "api_2026-11-03.jsonl"]
    # late rows of 11-02 appended to 11-01's file
    old = landing / "requests" / "api_2026-11-01.jsonl"
    with old.open("a") as f:
        f.write("\n".join(requests_of(NOV2, [5000, 5001])) + "\n")
    report = ingest_feed(con, "requests", landing, NOV2)
    assert not_opened(report) == ["api_2026-11-03.jsonl"] and loaded(con, NOV2) == 22
    # the same size and modification time, other bytes (a rewrite inside the clock's tick, or `cp -p`)
    stat = old.stat()
    text = old.read_text()
    old.write_text(text.replace("req-5001", "req-5002"))
    os.utime(old, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert old.stat().st_size == stat.st_size and old.stat().st_mtime_ns == stat.st_mtime_ns
    report = ingest_feed(con, "requests", landing, NOV2)
    assert not_opened(report) == ["api_2026-11-03.jsonl"] and "req-5002" in {
        r[0] for r in con.execute("SELECT request_id FROM raw_requests WHERE partition_date = ?", [NOV2]).fetchall()
    }


def test_an_edit_in_the_middle_of_a_large_file_with_its_size_and_time_kept_is_seen(con, landing):
    land_days(landing, [NOV1, NOV2], per_day=3000)
    old = landing / "requests" / "api_2026-11-01.jsonl"
    assert old.stat().st_size > 512 * 1024
    ingest_feed(con, "requests", landing, NOV1)
    assert not_opened(ingest_feed(con, "requests", landing, NOV2)) == ["api_2026-11-01.jsonl"]
    # a request of 11-01 in the middle of the file becomes a new one of 11-02, the same length; size and time kept
    stat, lines = old.stat(), old.read_text().splitlines()
    middle = lines.index(next(line for line in lines if '"req-1500"' in line))
    lines[middle] = lines[middle].replace("2026-11-01T", "2026-11-02T").replace("req-1500", "req-X500")
    old.write_text("\n".join(lines) + "\n")
    os.utime(old, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (old.stat().st_size, old.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    report = ingest_feed(con, "requests", landing, NOV2)
    assert not_opened(report) == [] and report.rows_loaded == 3001


def test_a_refusal_names_the_files_not_opened(con, landing):
    import pytest

    from pipelines.ingest.report import IngestRefused

    land_days(landing, [NOV1, NOV2])
    ingest_feed(con, "requests", landing, NOV1)
    ingest_feed(con, "requests", landing, NOV2)
    (landing / "requests" / "api_2026-11-02.jsonl").unlink()  # 11-02's rows gone from the landing
    with pytest.raises(IngestRefused, match="Not opened, remembered holding no row of the day: .*api_2026-11-01"):
        ingest_feed(con, "requests", landing, NOV2)
    dry = ingest_feed(con, "requests", landing, NOV2, dry_run=True)
    assert "Not opened, remembered holding no row of the day" in dry.refusal
    assert any("api_2026-11-01.jsonl: not opened" in line for line in dry.file_lines())


def test_a_quarantined_row_of_a_later_day_and_an_undated_file_keep_the_file_opened(con, landing):
    # a row dated 11-03 that breaks the contract is quarantined on 11-01 (its neighbour's day); it may load later
    bad_late = good_request(77, started_at="2026-11-03T10:00:00Z", ended_at="2026-11-03T09:00:00Z")
    write(landing, "api_2026-11-02.jsonl", requests_of(NOV2, range(10)) + [bad_late])
    ingest_feed(con, "requests", landing, NOV2)
    assert ingest_feed(con, "requests", landing, NOV3).files_not_opened == []
    # an undated file with no valid row: its rows are dated by whichever run reads it, so every run reads it
    write(landing, "undated.jsonl", ["{not json", "[1, 2]"])
    ingest_feed(con, "requests", landing, NOV2)
    for day in (NOV1, NOV2, NOV4):
        assert "undated.jsonl" not in not_opened(ingest_feed(con, "requests", landing, day))
    assert con.execute("SELECT count(*) FROM ingest_quarantine WHERE source_file LIKE '%undated.jsonl'").fetchall() == [
        (2,)
    ]


def test_another_reader_or_a_dry_run(con, landing, tmp_path):
    litellm = resolve_feed("requests", fmt="litellm")
    other = resolve_feed("requests", fmt="litellm", options={"model_field": "model"})
    mapping = tmp_path / "my_logs.yaml"
    mapping.write_text("feed: requests\n")
    mapped = resolve_feed("requests", fmt="mapped", options={"mapping": str(mapping)})
    keys = [file_days.reader_key(f, landing) for f in (resolve_feed("requests"), litellm, other, mapped)]
    mapping.write_text("feed: requests\nfields: {}\n")  # the mapping file edited: its files are read again
    keys.append(file_days.reader_key(mapped, landing))
    assert len(set(keys)) == 5
    land_days(landing, [NOV1, NOV2, NOV3])
    ingest_feed(con, "requests", landing, NOV1, dry_run=True)  # a dry run remembers nothing
    assert con.execute("SELECT count(*) FROM ingest_file_days").fetchall() == [(0,)]
    ingest_feed(con, "requests", landing, NOV1)
    dry = ingest_feed(con, "requests", landing, NOV2, dry_run=True)
    assert not_opened(dry) == ["api_2026-11-01.jsonl"] and not dry.written
    # remembered under another reader: opened again
    con.execute("UPDATE ingest_file_days SET reader = reader || ' (another)'")
    assert ingest_feed(con, "requests", landing, NOV2).files_not_opened == []


def test_the_cli_says_which_files_it_did_not_open(tmp_path, landing):
    land_days(landing, [NOV1, NOV2])
    home = tmp_path / "home"
    for day in ("2026-11-01", "2026-11-02"):
        run_cli(["ingest", "--feed", "requests", "--partition", day], home=home, landing=landing)
    out = run_cli(["ingest", "--feed", "requests", "--partition", "2026-11-02"], home=home, landing=landing).stdout
    assert "1 file not opened" in out, out


def test_a_bad_line_first_in_a_batch_between_two_days_is_quarantined_once(con, landing, tmp_path, monkeypatch):
    """A quarantined line takes the day of the nearest valid row before it in its file, also when that row is in
    an earlier batch of the run: whichever files a run opens (and so wherever it cuts its batches), the line is
    quarantined on the same day, once. Found by a stranger's test: a bad line first in a batch took the next day in
    the run of the day before, and the day before in the run of the next day, and was quarantined by neither.
    Small batches and pieces stand in for the 2M lines and 256 MiB of a fleet's day."""
    import pipelines.ingest.decompress as decompress
    import pipelines.ingest.loader as loader

    monkeypatch.setattr(loader, "BATCH_LINES", 30)
    monkeypatch.setattr(loader, "CHUNK_BYTES", 4000)
    monkeypatch.setattr(decompress, "READ_BLOCK_BYTES", 1000)
    first = landing / "requests" / "api_2026-11-01.jsonl"
    write(landing, first.name, requests_of(NOV1, range(25)))
    os.utime(first, ns=(10**18, 10**18))  # arrived first: it fills the first batch
    late_evening = [r.replace("T10:00:0", "T23:00:0") for r in requests_of(NOV2, range(100, 109))]
    bad = "{bad line between the days" + "x" * 380
    write(landing, "api_2026-11-02.jsonl", late_evening + [bad] + requests_of(NOV3, range(200, 205)))
    runs_both_ways(con, landing, tmp_path, [NOV1, NOV2, NOV2, NOV3])
    days = con.execute("SELECT partition_date FROM ingest_quarantine WHERE starts_with(raw_text, '{bad line')")
    assert days.fetchall() == [(NOV2,)]
