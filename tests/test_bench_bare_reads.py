"""The fleet-day benchmark's floor (pipelines/devtools/bench/bare_reads.py): DuckDB's bare read of the shipped
sample day's files reads every line of them, as typed columns, and leaves no file behind."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from pipelines.devtools.bench.bare_reads import _columns, bare_reads
from pipelines.devtools.bench.fleet_day import _bare_reads

SAMPLE = Path(__file__).resolve().parents[1] / "sample_logs"


def _lines(paths, skip: int) -> int:
    return sum(sum(1 for line in gzip.open(p, "rt") if line.strip()) - skip for p in paths)


def test_bare_reads_read_every_line_of_the_sample_day_typed(tmp_path):
    out = bare_reads(SAMPLE, tmp_path)
    assert out["telemetry"]["rows"] == _lines(sorted((SAMPLE / "telemetry").glob("*.csv.gz")), skip=1)
    assert out["requests"]["rows"] == _lines(sorted((SAMPLE / "requests").glob("*.jsonl.gz")), skip=0)
    assert all(out[f]["seconds"] > 0 and out[f]["cpu_s"] >= 0 for f in out)
    assert list(tmp_path.iterdir()) == []  # the scratch database is removed


def test_nvidia_smi_header_types():
    header = "timestamp, index, uuid, name, power.draw [W], utilization.gpu [%], memory.used [MiB]"
    assert list(_columns(header).values()) == ["TIMESTAMP", *["VARCHAR"] * 3, "DOUBLE", "DOUBLE", "DOUBLE"]


def test_the_benchmark_prints_the_bare_reads_beside_the_ingest_steps(tmp_path):
    said = []
    steps = "step seconds: fleet_files 1.0, raw_requests 8.0, raw_telemetry 12.0, cost_models 3.0"
    bare = _bare_reads(SAMPLE, tmp_path, steps, said.append)
    assert set(bare) == {"requests", "telemetry"}
    assert said[0].startswith("bare read requests:") and "the raw_requests step 8.0 s" in said[0]
    assert said[1].startswith("bare read telemetry:") and "the raw_telemetry step 12.0 s" in said[1]
    # the child process prints one JSON line
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.devtools.bench.bare_reads", str(SAMPLE), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout)["telemetry"]["rows"] == bare["telemetry"]["rows"]
