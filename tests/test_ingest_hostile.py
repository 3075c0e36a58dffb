"""Hostile input (issue #17): no line ever vanishes, and a file cannot take unbounded memory.

Every line of every file a run opens is counted once, whatever its date: loaded on its own day or quarantined with
a reason. A line longer than MAX_LINE_BYTES is quarantined, not held; a file that decompresses past the caps is
not read further and says so in a quarantine row naming it.
"""

import gzip
import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import date

from pipelines.ingest import files as ingest_files_module
from pipelines.ingest.loader import ingest_feed, ingest_files
from tests.conftest import REPO, assert_row_identity
from tests.test_ingest import NVSMI_HEADER, good_request

DAY = date(2026, 11, 2)
DAYS = [date(2026, 11, 1), DAY, date(2026, 11, 3)]


def stats(con, feed):
    """{file name: (rows read, loaded, quarantined)} summed over every day loaded."""
    return {
        f.rsplit("/", 1)[-1]: (r, lo, q)
        for f, r, lo, q in con.execute(
            "SELECT source_file, sum(rows_read), sum(rows_loaded), sum(rows_quarantined) FROM ingest_file_stats "
            "WHERE feed = ? GROUP BY 1",
            [feed],
        ).fetchall()
    }


def quarantined(con, feed):
    return con.execute(
        "SELECT regexp_extract(source_file, '[^/]*$'), source_line, partition_date, reason "
        "FROM ingest_quarantine WHERE feed = ? ORDER BY ALL",
        [feed],
    ).fetchall()


def test_rows_far_from_the_files_date_are_quarantined_not_lost(con, landing):
    # a host whose clock reset: every sample is dated months before the day in the file's name
    reset = (
        [NVSMI_HEADER]
        + [f"2026/06/15 00:00:{i:02d}.000, 0, GPU-a, NVIDIA H100 80GB HBM3, 100.0, 5, 10" for i in range(20)]
        + ["garbage"]
    )
    (landing / "telemetry" / "h_2026-11-02.csv").write_text("\n".join(reset) + "\n")
    far = good_request(3, started_at="2026-06-15T10:00:00Z", first_token_at=None, ended_at="2026-06-15T10:00:01Z")
    next_day = good_request(2, started_at="2026-11-03T10:00:00Z", first_token_at=None, ended_at="2026-11-03T10:00:01Z")
    (landing / "requests" / "r_2026-11-02.jsonl").write_text("\n".join([good_request(1), next_day, far]) + "\n")
    for day in DAYS:
        for feed in ("telemetry", "requests"):
            ingest_feed(con, feed, landing, day)
    # every line counted once over the three days the files are opened for
    assert stats(con, "telemetry") == {"h_2026-11-02.csv": (21, 0, 21)}
    assert stats(con, "requests") == {"r_2026-11-02.jsonl": (3, 2, 1)}
    tel = quarantined(con, "telemetry")
    assert {(d, r) for _, line, d, r in tel if line != 22} == {
        (DAY, "row dated 2026-06-15, more than a day from the file's date 2026-11-02")
    }
    assert tel[-1][1:] == (22, DAY, "expected 7 fields, got 1")  # beside the rows it came with: the file's day
    # the far request follows the nearest valid row before it (day 3), a day that opens the file
    assert quarantined(con, "requests") == [
        (
            "r_2026-11-02.jsonl",
            3,
            date(2026, 11, 3),
            "row dated 2026-06-15, more than a day from the file's date 2026-11-02",
        )
    ]
    assert_row_identity(con, "telemetry")
    assert_row_identity(con, "requests")


def test_an_undated_file_without_valid_rows_is_quarantined_once(con, landing):
    (landing / "requests" / "notes.jsonl").write_text("\n".join("{broken" for _ in range(50)) + "\n")
    for day in DAYS + [DAY]:  # and a re-run
        ingest_feed(con, "requests", landing, day)
    q = quarantined(con, "requests")
    assert len(q) == 50 and {d for _, _, d, _ in q} == {DAYS[0]}  # on the first day that read it
    assert stats(con, "requests") == {"notes.jsonl": (50, 0, 50)}
    ingest_feed(con, "requests", landing, DAYS[0])  # re-running that day keeps them
    assert len(quarantined(con, "requests")) == 50


def test_a_redelivered_file_that_sorts_first_does_not_take_the_rows(con, landing, monkeypatch):
    from pipelines.ingest import loader

    original = landing / "requests" / "r_2026-11-02.jsonl"
    original.write_text("\n".join(good_request(i) for i in range(3)) + "\n")
    redelivery = landing / "requests" / "a_redelivered_2026-11-02.jsonl"
    redelivery.write_text("\n".join(good_request(i) for i in range(3)) + "\n")
    now = time.time()
    os.utime(original, (now - 3600, now - 3600))  # arrived an hour before the redelivery
    os.utime(redelivery, (now, now))
    for batch_lines in (loader.BATCH_LINES, 1):  # one batch, and a batch per line
        monkeypatch.setattr(loader, "BATCH_LINES", batch_lines)
        report = ingest_feed(con, "requests", landing, DAY)
        assert (report.rows_loaded, report.rows_quarantined) == (3, 3)
        assert {f.rsplit("/", 1)[-1] for (f,) in con.execute("SELECT source_file FROM raw_requests").fetchall()} == {
            "r_2026-11-02.jsonl"
        }
        q = quarantined(con, "requests")
        assert [(f, line) for f, line, _, _ in q] == [("a_redelivered_2026-11-02.jsonl", i) for i in (1, 2, 3)]
        assert q[0][3].startswith("duplicate request_id (first loaded from ") and q[0][3].endswith(
            "r_2026-11-02.jsonl:1)"
        )


def test_an_overlong_line_is_quarantined_and_the_others_load(con, landing):
    cap = ingest_files_module.MAX_LINE_BYTES
    long_line = '{"id": "' + "x" * (3 * cap) + '"}'
    body = "\n".join([good_request(1), long_line, good_request(2), "x" * (cap + 1)]) + "\n" + "y" * (2 * cap)
    (landing / "requests" / "long_2026-11-02.jsonl").write_text(body)  # the last line runs to the end
    (landing / "requests" / "long_2026-11-02.jsonl.gz").write_bytes(gzip.compress(body.replace("req-", "gz-").encode()))
    report = ingest_feed(con, "requests", landing, DAY)
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (10, 4, 6)
    q = quarantined(con, "requests")
    assert [(f, line) for f, line, _, _ in q] == [
        (f, i) for f in ("long_2026-11-02.jsonl", "long_2026-11-02.jsonl.gz") for i in (2, 4, 5)
    ]
    assert all(r.startswith(f"line longer than {cap:,} bytes") for *_, r in q)
    raws = [r for (r,) in con.execute("SELECT raw_text FROM ingest_quarantine").fetchall()]
    assert all(len(r) < 1_000 for r in raws) and raws[0].startswith('{"id": "xxx')  # a prefix, not the line
    assert_row_identity(con, "requests")


BOMB_SCRIPT = textwrap.dedent("""
    import json, sys
    from datetime import date
    from pathlib import Path
    from pipelines.warehouse.connection import connect
    from pipelines.ingest.loader import ingest_feed, ingest_fleet_table
    from pipelines.warehouse.contracts import FLEET_TABLES
    from pipelines.devtools.bench.tree_memory import own_peak_bytes

    landing, db = Path(sys.argv[1]), Path(sys.argv[2])
    con = connect(db)
    for name in FLEET_TABLES:
        ingest_fleet_table(con, name, landing)
    # this process's own peak (VmHWM): ru_maxrss would carry pytest's, inherited across exec
    before = own_peak_bytes() // 1024
    report = ingest_feed(con, "requests", landing, date(2026, 11, 2))
    after = own_peak_bytes() // 1024
    q = con.execute("SELECT source_file, source_line, reason FROM ingest_quarantine ORDER BY ALL").fetchall()
    print(json.dumps({"rss_before_kib": before, "rss_after_kib": after, "loaded": report.rows_loaded,
                      "read": report.rows_read, "quarantine": q}))
""")


def gzip_bomb(path, expanded_bytes: int, line: bytes) -> None:
    """A gzip file of ``line`` repeated to ``expanded_bytes``: one member of 16 MiB compressed once (about 16 KB),
    written again and again (a gzip file may hold members one after the other)."""
    block = line * (2**24 // len(line))
    member = gzip.compress(block, compresslevel=9)
    with open(path, "wb") as f:
        f.writelines(member for _ in range(expanded_bytes // len(block)))


def run_bomb(landing, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", BOMB_SCRIPT, str(landing), str(tmp_path / "bomb.duckdb")],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), time.monotonic() - started


def test_a_gzip_bomb_of_one_line_is_refused_in_bounded_memory(landing, tmp_path):
    # 1 GiB of one line from about 1 MB of gzip: it used to take 7.6 GB of memory
    gzip_bomb(landing / "requests" / "bomb_2026-11-02.jsonl.gz", 2**30, b"a")
    assert (landing / "requests" / "bomb_2026-11-02.jsonl.gz").stat().st_size < 4 * 2**20
    (landing / "requests" / "ok_2026-11-02.jsonl").write_text(good_request(1) + "\n")
    result, seconds = run_bomb(landing, tmp_path)
    grown_mib = (result["rss_after_kib"] - result["rss_before_kib"]) / 1024
    assert grown_mib < 400, f"peak memory grew {grown_mib:.0f} MiB"
    assert result["loaded"] == 1
    [(source, line, reason)] = result["quarantine"]
    assert source.endswith("bomb_2026-11-02.jsonl.gz") and line == 1
    assert "bomb_2026-11-02.jsonl.gz" in reason and "expands more than" in reason
    print(f"one-line bomb: peak RSS grew {grown_mib:.0f} MiB, {seconds:.1f} s")


def test_a_gzip_bomb_of_short_lines_is_refused_in_bounded_memory(landing, tmp_path):
    gzip_bomb(landing / "requests" / "lines_2026-11-02.jsonl.gz", 2**30, b"{}\n")
    result, seconds = run_bomb(landing, tmp_path)
    grown_mib = (result["rss_after_kib"] - result["rss_before_kib"]) / 1024
    assert grown_mib < 400, f"peak memory grew {grown_mib:.0f} MiB"
    [(source, line, reason)] = result["quarantine"]
    assert source.endswith("lines_2026-11-02.jsonl.gz") and line == 1
    assert "expands more than" in reason and "not read" in reason
    print(f"short-line bomb: peak RSS grew {grown_mib:.0f} MiB, {seconds:.1f} s")


def test_decompression_caps_end_a_file_with_a_reason_naming_it(con, landing, monkeypatch):
    import io
    import tarfile

    from pipelines.ingest import decompress, loader

    monkeypatch.setattr(loader, "CHUNK_BYTES", 2**20)  # pieces of 1 MiB: some are split before the cap
    monkeypatch.setattr(decompress, "RATIO_FLOOR_BYTES", 2**20)  # small caps, so the files can be small
    monkeypatch.setattr(decompress, "OUT_BLOCK_BYTES", 2**16)
    lines = "\n".join(good_request(i) for i in range(20_000)) + "\n"  # about 8 MB that compresses ~20 times
    (landing / "requests" / "big_2026-11-02.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    monkeypatch.setattr(decompress, "MAX_DECOMPRESSED_BYTES", 3 * 2**20)
    report = ingest_feed(con, "requests", landing, DAY)
    [(name, line, _, reason)] = quarantined(con, "requests")
    assert name == "big_2026-11-02.jsonl.gz" and reason.startswith("big_2026-11-02.jsonl.gz: decompressed past 3,145,")
    assert report.rows_loaded == line - 1 and 0 < report.rows_loaded < 20_000  # lines split before the cap load
    assert_row_identity(con, "requests")

    # a tar archive whose one member expands too much is refused from its header, before a byte of it is read
    (landing / "requests" / "big_2026-11-02.jsonl.gz").unlink()
    monkeypatch.setattr(decompress, "MAX_DECOMPRESSED_BYTES", 64 * 2**30)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"\n" * (8 * 2**20)
        info = tarfile.TarInfo("trace.jsonl")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (landing / "requests" / "trace_2026-11-02.tar.gz").write_bytes(buf.getvalue())
    ingest_files(
        con, "requests", [landing / "requests" / "trace_2026-11-02.tar.gz"], DAY, replace_anyway=True
    )  # the day loaded above is replaced by a file that is all quarantine
    [(name, line, _, reason)] = quarantined(con, "requests")
    assert name == "trace_2026-11-02.tar.gz" and line == 1
    assert reason.startswith("trace_2026-11-02.tar.gz: expands more than 200 times (8,388,608 bytes from ")


def test_a_row_quarantined_for_its_date_keeps_its_line(con, landing):
    # the date rule runs after the parse: the quarantine row must still hold the line as written, not an empty text
    lines = [NVSMI_HEADER] + [
        f"2026/06/15 00:00:{i:02d}.000, 0, GPU-a, NVIDIA H100 80GB HBM3, 100.0, 5, 10" for i in range(3)
    ]
    (landing / "telemetry" / "h_2026-11-02.csv").write_text("\n".join(lines) + "\n")
    far = good_request(3, started_at="2026-06-15T10:00:00Z", first_token_at=None, ended_at="2026-06-15T10:00:01Z")
    (landing / "requests" / "r_2026-11-02.jsonl").write_text("\n".join([good_request(1), far]) + "\n")
    for feed in ("telemetry", "requests"):
        ingest_feed(con, feed, landing, DAY)
    kept = con.execute(
        "SELECT feed, source_line, raw_text FROM ingest_quarantine WHERE reason LIKE 'row dated %' ORDER BY ALL"
    ).fetchall()
    assert kept == [("requests", 2, far)] + [("telemetry", i + 2, lines[i + 1]) for i in range(3)]
