"""A run killed halfway leaves its decompressed text in the temporary folder; the next run removes it, and never
the files of a process that still runs (pipelines/warehouse/temp_files.py)."""

import gzip
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import date

from pipelines.ingest.loader import ingest_feed
from pipelines.warehouse import temp_files
from tests.conftest import REPO


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_the_files_of_dead_processes_are_removed(tmp_path):
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = _dead_pid()
        names = {
            f"infercost-lines-{dead}-abc": "dir",
            f"infercost-pieces-{dead}-abc": "dir",
            f"infercost-attribution-2026-11-02-{dead}-0f0f.duckdb": "file",
            f"infercost-lines-{alive.pid}-abc": "dir",  # another run, still running
            f"infercost-lines-{os.getpid()}-abc": "dir",  # this process's own
            "infercost-lines-4fwtn2ei": "dir",  # no process id: not told apart, left
            f"other-{dead}-abc": "dir",
        }
        for name, kind in names.items():
            if kind == "dir":
                (tmp_path / name).mkdir()
                (tmp_path / name / "lines.txt").write_text("x")
            else:
                (tmp_path / name).write_text("x")
        removed = temp_files.remove_abandoned(tmp_path)
        assert sorted(p.name for p in removed) == sorted(
            n for n in names if n.startswith("infercost") and str(dead) in n
        )
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            n for n in names if str(dead) not in n or "other" in n
        )
    finally:
        alive.kill()
        alive.wait()


KILLED_RUN = textwrap.dedent("""
    import sys
    from datetime import date
    from pathlib import Path
    from pipelines.ingest.loader import ingest_feed, ingest_fleet_table
    from pipelines.warehouse.connection import connect
    from pipelines.warehouse.contracts import FLEET_TABLES
    landing = Path(sys.argv[1])
    con = connect(sys.argv[2])
    for name in FLEET_TABLES:
        ingest_fleet_table(con, name, landing)
    ingest_feed(con, "telemetry", landing, date(2026, 11, 2))
""")


def _telemetry_gz(path, rows: int) -> None:
    lines = ["timestamp, index, uuid, name, power.draw [W], utilization.gpu [%], memory.used [MiB]"]
    lines += [
        f"2026/11/02 {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.007, 0, GPU-x, H100, 300.00, 50, 1000"
        for s in range(rows)
    ]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1))


def test_a_killed_runs_decompressed_text_is_removed_by_the_next_run(con, landing, tmp_path, monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    for i in range(4):
        _telemetry_gz(landing / "telemetry" / f"host{i}_2026-11-02.csv.gz", 80_000)
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(REPO)}
    run = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(landing), str(tmp_path / "killed.duckdb")], env=env)
    deadline = time.monotonic() + 120
    while not list(temp.glob("infercost-lines-*")) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    run.send_signal(signal.SIGKILL)
    run.wait()
    left = list(temp.glob(f"infercost-lines-{run.pid}-*"))
    assert left, "the run ended before it was killed: nothing to remove"
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    for f in list((landing / "telemetry").iterdir())[1:]:
        f.unlink()
    ingest_feed(con, "telemetry", landing, date(2026, 11, 2))
    assert not [p for p in temp.iterdir() if p.name.startswith("infercost-")]
