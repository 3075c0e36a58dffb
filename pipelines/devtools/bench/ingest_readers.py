"""The line readers side by side on a generated fleet-day: its request JSONL and nvidia-smi CSV ingested into a fresh
warehouse by the Python reader (INFERCOST_LINE_READER=python) and by DuckDB's (duckdb), in one run.

Each ingest runs in its own process (so its peak memory is its own), the two readers alternating per feed (a noisy
neighbour then slows both alike); the loaded rows, the quarantine and the per-file counts of the two are compared
(digests of every column but the load time), and a difference fails the run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from pipelines.devtools.bench.tree_memory import own_peak_bytes

READERS = ("python", "duckdb")
FEEDS = ("requests", "telemetry")


def _digest(con, feed: str) -> dict:
    """What a run loaded and quarantined and its file counts, as comparable values."""
    raw = con.execute(
        f"SELECT count(*), sum(hash(COLUMNS(* EXCLUDE (loaded_at))) % 1000000007) FROM raw_{feed}"
    ).fetchall()[0]
    quarantine = con.execute(
        "SELECT count(*), sum(hash(source_file, source_line, raw_text, reason, partition_date) % 1000000007) "
        "FROM ingest_quarantine"
    ).fetchall()[0]
    files = con.execute(
        "SELECT source_file, rows_read, rows_loaded, rows_quarantined, rows_skipped FROM ingest_file_stats ORDER BY 1"
    ).fetchall()
    return {"raw": [str(v) for v in raw], "quarantine": [str(v) for v in quarantine], "files": files}


def run_child(feed: str, landing: str, db: str, day: str) -> None:
    """One ingest of ``feed`` into a fresh warehouse ``db``, with the reader INFERCOST_LINE_READER names: prints its
    seconds, peak memory, rows and digest as JSON."""
    from pipelines.ingest.loader import ingest_feed, ingest_fleet_table
    from pipelines.warehouse.connection import connect
    from pipelines.warehouse.contracts import FLEET_TABLES

    con = connect(Path(db))
    for name in FLEET_TABLES:
        ingest_fleet_table(con, name, Path(landing))
    started = time.perf_counter()
    report = ingest_feed(con, feed, Path(landing), date.fromisoformat(day))
    seconds = time.perf_counter() - started
    out = {
        "seconds": seconds,
        "peak_mb": own_peak_bytes() / 2**20,
        "read": report.rows_read,
        "loaded": report.rows_loaded,
        "quarantined": report.rows_quarantined,
        "digest": _digest(con, feed),
    }
    con.close()
    print(json.dumps(out, default=str))


def ingest_in_child(env: dict, feed: str, landing: Path, db: Path, day: str, cwd: Path | None = None) -> dict:
    """One ingest of ``feed`` into ``db`` in a child process (this module's main) with ``env``; its JSON summary."""
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.devtools.bench.ingest_readers", feed, str(landing), str(db), day],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{cwd or 'this checkout'}: ingest of {feed} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _child(reader: str, feed: str, landing: Path, work: Path, day: str) -> dict:
    db = work / f"{feed}-{reader}.duckdb"
    db.unlink(missing_ok=True)
    env = {**os.environ, "INFERCOST_LINE_READER": reader, "INFERCOST_HOME": str(work)}
    try:
        return ingest_in_child(env, feed, landing, db, day)
    finally:
        db.unlink(missing_ok=True)


def compare_readers(landing: Path, day: str, say=print) -> dict:
    """Both readers on both feeds of the landing's day; prints one line per run and a summary per feed."""
    work = landing.parent / f"{landing.name}-readers"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results = {}
    try:
        for feed in FEEDS:
            runs = {}
            for reader in READERS:
                runs[reader] = r = _child(reader, feed, landing, work, day)
                say(
                    f"  ingest {feed:<9} {reader:<6} reader: {r['seconds']:7.1f} s, peak {r['peak_mb']:,.0f} MB, "
                    f"{r['read']:,} rows read, {r['loaded']:,} loaded, {r['quarantined']:,} quarantined"
                )
            same = runs["python"]["digest"] == runs["duckdb"]["digest"]
            ratio = runs["python"]["seconds"] / max(runs["duckdb"]["seconds"], 1e-9)
            say(
                f"  {feed}: duckdb reader {ratio:.1f}x the python reader; loaded, quarantined and counts identical: {same}"
            )
            if not same:
                raise RuntimeError(
                    f"{feed}: the two readers disagree: {runs['python']['digest']} vs {runs['duckdb']['digest']}"
                )
            results[feed] = {"ratio": ratio, **{r: runs[r]["seconds"] for r in READERS}}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    run_child(*sys.argv[1:5])
