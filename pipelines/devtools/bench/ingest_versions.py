"""Two checkouts of infercost side by side on one feed's day: each ingests the landing's files into a fresh warehouse
in its own process (its code on PYTHONPATH), the two alternating run by run (a noisy neighbour then slows both
alike), and what they loaded is compared row for row: raw_<feed> (every column but the load time), the quarantine
(file, line, raw text, reason, day) and the per-file counts. A difference fails the run.

    python -m pipelines.devtools.bench.ingest_versions OLD_TREE NEW_TREE LANDING DAY WORK [FEED] [REPEAT]

prints, per run, wall seconds, CPU seconds (user + system of the child), peak RSS and the load average, then the
old/new ratios and whether the loads are identical. WORK holds the warehouses while they are compared.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import time
from pathlib import Path

import duckdb

from pipelines.devtools.bench.ingest_readers import ingest_in_child


def _run(tree: Path, feed: str, landing: Path, db: Path, day: str, home: Path) -> dict:
    """One ingest by the checkout ``tree`` (pipelines.devtools.bench.ingest_readers's child, in both)."""
    db.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(tree), "INFERCOST_HOME": str(home)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    out = ingest_in_child(env, feed, landing, db, day, cwd=tree)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {**out, "wall": wall, "cpu": cpu, "load": (load_before, os.getloadavg()[0])}


def differences(feed: str, old_db: Path, new_db: Path) -> dict[str, int]:
    """Rows in one warehouse and not the other (both ways, with multiplicity), per table compared."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"ATTACH '{old_db}' AS old (READ_ONLY)")
    con.execute(f"ATTACH '{new_db}' AS new (READ_ONLY)")
    queries = {
        f"raw_{feed}": f"SELECT * EXCLUDE (loaded_at) FROM {{db}}.raw_{feed}",
        "ingest_quarantine": "SELECT feed, partition_date, source_file, source_line, raw_text, reason "
        "FROM {db}.ingest_quarantine",
        "ingest_file_stats": "SELECT feed, partition_date, source_file, rows_read, rows_loaded, rows_quarantined, "
        "rows_skipped FROM {db}.ingest_file_stats",
    }
    out = {}
    for name, sql in queries.items():
        old, new = sql.format(db="old"), sql.format(db="new")
        n = con.execute(
            f"SELECT (SELECT count(*) FROM ({old} EXCEPT ALL {new})) + (SELECT count(*) FROM ({new} EXCEPT ALL {old}))"
        ).fetchall()[0][0]
        out[name] = n
        out[f"{name} rows"] = con.execute(f"SELECT count(*) FROM ({new})").fetchall()[0][0]
    con.close()
    return out


def compare(old: Path, new: Path, landing: Path, day: str, work: Path, feed: str = "requests", repeat: int = 1):
    work.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    try:
        for i in range(repeat):
            for label, tree in (("old", old), ("new", new)) if i % 2 == 0 else (("new", new), ("old", old)):
                r = _run(tree, feed, landing, work / f"{label}.duckdb", day, work / f"home-{label}")
                runs[label].append(r)
                print(
                    f"{label}: {r['wall']:6.1f} s wall, {r['cpu']:6.1f} s CPU, peak {r['peak_mb'] / 1024:.2f} GB, "
                    f"load {r['load'][0]:.1f}->{r['load'][1]:.1f}; {r['read']:,} read, {r['loaded']:,} loaded, "
                    f"{r['quarantined']:,} quarantined",
                    flush=True,
                )
        diff = differences(feed, work / "old.duckdb", work / "new.duckdb")
    finally:
        for label in runs:
            (work / f"{label}.duckdb").unlink(missing_ok=True)
            shutil.rmtree(work / f"home-{label}", ignore_errors=True)
    for key in ("wall", "cpu", "peak_mb"):
        o, n = (sum(r[key] for r in runs[x]) / len(runs[x]) for x in ("old", "new"))
        print(f"{key}: old {o:,.1f}, new {n:,.1f}, old/new {o / max(n, 1e-9):.2f}")
    identical = not any(v for k, v in diff.items() if not k.endswith(" rows"))
    print(f"rows differing (both ways): {diff}; identical: {identical}")
    if not identical:
        raise SystemExit(1)


if __name__ == "__main__":
    args = sys.argv[1:]
    compare(
        Path(args[0]),
        Path(args[1]),
        Path(args[2]),
        args[3],
        Path(args[4]),
        *(args[5:6] or ["requests"]),
        *([int(args[6])] if len(args) > 6 else []),
    )
