"""A run writes its batches straight into the raw table, in the run's own transaction on a second connection
(pipelines/ingest/staging.py), instead of through a temporary stage copied at the end (a feed with a duplicate key
keeps its loaded keys in the stage). What that must keep: nobody sees a half-loaded day, a refused or failed run leaves the day byte for byte as
it was, the next run is not blocked by what a failed one left, and the rows are those the stage path loads."""

from datetime import date

import pytest

import pipelines.ingest.loader as loader
import pipelines.ingest.staging as staging
from pipelines.ingest.feeds import resolve_feed
from pipelines.ingest.loader import ingest_feed, ingest_files
from pipelines.ingest.report import IngestRefused, IngestReport
from pipelines.ingest.staging import Stage, replacing
from tests.conftest import sample_telemetry_hour
from tests.test_ingest_other_days import requests_of, write

DAY = date(2026, 11, 2)
HOSTS = ("eu-central-a100-002", "us-west-h100-large-000", "us-west-h100-small-001")
TABLES = {
    "raw_telemetry": "SELECT * FROM raw_telemetry ORDER BY ALL",
    "ingest_quarantine": "SELECT * FROM ingest_quarantine WHERE feed = 'telemetry' ORDER BY ALL",
    "ingest_file_stats": "SELECT * FROM ingest_file_stats WHERE feed = 'telemetry' ORDER BY ALL",
}


def snapshot(con) -> dict:
    return {t: con.execute(q).fetchall() for t, q in TABLES.items()}


def day_rows(con) -> int:
    return con.execute("SELECT count(*) FROM raw_telemetry WHERE partition_date = ?", [DAY]).fetchall()[0][0]


def three_hosts(landing, hour=0):
    for host in HOSTS:
        sample_telemetry_hour(landing, host, DAY.isoformat(), hour)
    return sorted((landing / "telemetry").iterdir())


def test_a_written_run_writes_in_its_own_transaction(con, landing):
    for feed in ("telemetry", "requests"):  # requests also keep their loaded keys in a stage, for later batches
        resolved = resolve_feed(feed, None, None, landing)
        with replacing(con, resolved, DAY, IngestReport(feed=feed, partition_date=DAY), replace_anyway=True) as stage:
            assert isinstance(stage, Stage) and stage.writer is not None
    report = IngestReport(feed="telemetry", partition_date=DAY)
    with replacing(con, resolve_feed("telemetry", None, None, landing), DAY, report, dry_run=True) as stage:
        assert stage.writer is None  # a dry run writes nothing, not even into a transaction it rolls back


def test_readers_see_the_old_day_until_the_run_commits(con, landing, monkeypatch):
    files = three_hosts(landing, hour=0)
    ingest_files(con, "telemetry", files, DAY)
    before, old_rows = snapshot(con), day_rows(con)
    for f in files:
        f.unlink()
    files = three_hosts(landing, hour=1)  # the day redelivered: other samples
    monkeypatch.setattr(loader, "BATCH_LINES", 1)  # every file is a batch, written before the next is read
    other = con.cursor()  # another connection to the warehouse, as a second reader in the process
    seen = []

    def progress(done, total, report):
        seen.append((done, day_rows(other), day_rows(con)))

    report = ingest_files(con, "telemetry", files, DAY, progress=progress)
    assert report.written and report.rows_loaded > 0
    # after each file: each is read typed and written whole into the run's transaction (whole_files.py)
    assert sorted({d for d, _, _ in seen}) == [1, 2, 3]
    assert all(a == b == old_rows for _, a, b in seen)  # mid-run: the whole old day, none of the new
    assert day_rows(other) == day_rows(con) == report.rows_loaded != old_rows
    assert snapshot(con) != before
    hours = con.execute("SELECT DISTINCT hour(ts AT TIME ZONE 'UTC') FROM raw_telemetry").fetchall()
    assert hours == [(1,)]  # replaced, not appended


def test_a_run_that_fails_halfway_leaves_the_day_and_the_next_run_loads(con, landing, monkeypatch):
    files = three_hosts(landing)
    ingest_files(con, "telemetry", files, DAY)
    before = snapshot(con)
    monkeypatch.setattr(loader, "BATCH_LINES", 1)

    def fail_after_the_second_file(done, total, report):
        if done == 2:
            raise KeyboardInterrupt("stopped halfway")

    with pytest.raises(KeyboardInterrupt):
        ingest_files(con, "telemetry", files, DAY, progress=fail_after_the_second_file)
    assert snapshot(con) == before  # two files' batches were written in the run's transaction, and rolled back
    report = ingest_files(con, "telemetry", files, DAY)  # nothing left open: the next run writes
    assert report.written
    after = snapshot(con)
    assert len(after["raw_telemetry"]) == len(before["raw_telemetry"])
    strip = [r[:-1] for r in after["raw_telemetry"]]  # loaded_at differs, every other column is the same
    assert strip == [r[:-1] for r in before["raw_telemetry"]]


def test_a_refused_telemetry_run_leaves_the_day_byte_for_byte(con, landing):
    files = three_hosts(landing)
    ingest_files(con, "telemetry", files, DAY)
    before = snapshot(con)
    for f in files:
        f.unlink()
    with pytest.raises(IngestRefused, match="it would load 0 rows"):
        ingest_feed(con, "telemetry", landing, DAY)
    assert snapshot(con) == before


def test_direct_rows_equal_the_stage_path(con, landing, monkeypatch):
    """The same files loaded through the run's transaction and through the stage (the path of a feed with a
    duplicate key, forced here): the same rows, quarantine and per-file counts, but loaded_at."""
    files = three_hosts(landing)
    bad = landing / "telemetry" / "broken_2026-11-02.csv"
    bad.write_text(files[0].read_text().splitlines()[0] + "\n2026/11/02 00:00:01.000, 0, GPU-x, H100, -5 W\n")
    ingest_files(con, "telemetry", [*files, bad], DAY)
    direct = snapshot(con)
    monkeypatch.setattr(staging, "_begin_writing", lambda *a: None)  # no writer: the stage path
    ingest_files(con, "telemetry", [*files, bad], DAY)
    staged = snapshot(con)
    assert direct["ingest_quarantine"] and direct["raw_telemetry"] and direct["ingest_file_stats"]
    for table in TABLES:  # every column but the last, loaded_at
        assert [r[:-1] for r in direct[table]] == [r[:-1] for r in staged[table]], table


def test_requests_written_as_they_go_equal_the_stage_path(con, landing, monkeypatch):
    """Requests, whose keys are checked against the batches before them: repeats within a batch, across batches
    and files, and of a key loaded for another day; a malformed line; a row of the next day. Loaded through the
    run's transaction (the stage keeps only the keys) and through the whole stage: the same rows, quarantine and
    per-file counts."""
    write(landing, "api_2026-11-01.jsonl", requests_of(date(2026, 11, 1), range(900, 905)))
    ingest_feed(con, "requests", landing, date(2026, 11, 1))
    write(landing, "api_2026-11-01.jsonl", requests_of(date(2026, 11, 1), range(900, 905)))
    first = requests_of(DAY, [*range(10), 3, 903]) + ["{not json"] + requests_of(date(2026, 11, 3), [50])
    write(landing, "api_2026-11-02.jsonl", first + requests_of(DAY, [*range(10, 20), 5]))
    write(landing, "api_2026-11-02-late.jsonl", requests_of(DAY, [7, *range(20, 25)]))
    monkeypatch.setattr(loader, "BATCH_LINES", 7)  # batches cut within files: keys checked across them
    queries = {
        "raw_requests": "SELECT * EXCLUDE (loaded_at) FROM raw_requests ORDER BY ALL",
        "ingest_quarantine": "SELECT * EXCLUDE (loaded_at) FROM ingest_quarantine WHERE feed = 'requests' ORDER BY ALL",
        "ingest_file_stats": "SELECT * EXCLUDE (loaded_at) FROM ingest_file_stats WHERE feed = 'requests' ORDER BY ALL",
    }
    loads = []
    for writes in (True, False):
        if not writes:
            monkeypatch.setattr(staging, "_begin_writing", lambda *a: None)  # no writer: the whole stage
        report = ingest_feed(con, "requests", landing, DAY)
        loads.append(({t: con.execute(q).fetchall() for t, q in queries.items()}, report.other_days))
    (written, other_written), (staged, other_staged) = loads
    assert written == staged and other_written == other_staged
    reasons = sorted(r[5] for r in written["ingest_quarantine"] if r[1] == DAY)
    assert len(reasons) == 5 and reasons[-1] == "malformed JSON"
    assert sum(1 for r in reasons if "api_2026-11-01.jsonl:4)" in r) == 1  # req-903, loaded on 11-01
    assert len([r for r in written["raw_requests"] if r[-1] == DAY]) == 25


def test_a_requests_run_stopped_after_a_written_batch_leaves_the_day(con, landing, monkeypatch):
    """A batch of requests is in the run's transaction once written: a run stopped after it leaves the day (rows,
    quarantine, counts) as it was, and the next run loads it whole."""
    write(landing, "api_2026-11-02.jsonl", requests_of(DAY, range(10)) + ["{not json"])
    ingest_feed(con, "requests", landing, DAY)
    queries = {
        "raw_requests": "SELECT * FROM raw_requests ORDER BY ALL",
        "ingest_quarantine": "SELECT * FROM ingest_quarantine WHERE feed = 'requests' ORDER BY ALL",
        "ingest_file_stats": "SELECT * FROM ingest_file_stats WHERE feed = 'requests' ORDER BY ALL",
    }
    before = {t: con.execute(q).fetchall() for t, q in queries.items()}
    write(landing, "api_2026-11-02.jsonl", requests_of(DAY, range(100, 130)) + ["{not json either"])
    monkeypatch.setattr(loader, "BATCH_LINES", 8)
    batches = []

    def stop_after_two_batches(done, total, report):
        batches.append(report.rows_read)
        if len(batches) == 2:
            raise KeyboardInterrupt("stopped halfway")

    with pytest.raises(KeyboardInterrupt):
        ingest_feed(con, "requests", landing, DAY, progress=stop_after_two_batches)
    assert batches[-1] > 0  # rows were written into the run's transaction before it stopped
    assert {t: con.execute(q).fetchall() for t, q in queries.items()} == before
    report = ingest_feed(con, "requests", landing, DAY)
    assert report.written and report.rows_loaded == 30 and report.rows_quarantined == 1
