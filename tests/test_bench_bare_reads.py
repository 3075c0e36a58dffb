"""The fleet-day benchmark's floor (pipelines/devtools/bench/bare_reads.py): DuckDB's bare read of the shipped
sample day's files reads every line of them, as typed columns, and leaves no file behind."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.devtools.bench.bare_reads import _columns, _first_line, bare_reads
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
    step_s = {"fleet_files": 1.0, "raw_requests": 8.0, "raw_telemetry": 12.0, "cost_models": 3.0}
    bare = _bare_reads(SAMPLE, tmp_path, step_s, said.append)
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


def _landing(root: Path, telemetry: dict[str, bytes]) -> Path:
    (root / "telemetry").mkdir(parents=True)
    (root / "requests").mkdir()
    (root / "requests" / "r.jsonl").write_text('{"id": "a"}\n')
    for name, text in telemetry.items():
        (root / "telemetry" / name).write_bytes(text)
    return root


HEADER = b"timestamp, index, uuid, name, power.draw [W], utilization.gpu [%], memory.used [MiB]\n"
ROW = b"2026/11/02 00:00:00.005, 0, GPU-1, A100, 55.00, 0, 50893\n"


def test_odd_landings_are_refused_with_what_is_wrong(tmp_path):
    with pytest.raises(SystemExit, match="telemetry: no"):
        bare_reads(tmp_path / "nowhere", tmp_path)
    other = _landing(tmp_path / "other", {"a.csv": HEADER + ROW, "b.csv": HEADER.replace(b"index, ", b"") + ROW})
    with pytest.raises(SystemExit, match="b.csv: its header differs"):
        bare_reads(other, tmp_path)
    globbed = _landing(tmp_path / "glob", {"a.csv": HEADER + ROW, "*.csv": HEADER + ROW})
    with pytest.raises(SystemExit, match=r"\*.csv: DuckDB reads a name"):
        bare_reads(globbed, tmp_path)
    done = subprocess.run([sys.executable, "-m", "pipelines.devtools.bench.bare_reads"], capture_output=True, text=True)
    assert done.returncode != 0 and "usage:" in done.stderr


def test_a_byte_order_mark_does_not_untype_the_header(tmp_path):
    landing = _landing(tmp_path / "bom", {"a.csv": b"\xef\xbb\xbf" + HEADER + ROW, "b.csv": HEADER + ROW})
    assert _columns(_first_line(landing / "telemetry" / "a.csv"))["field_1"] == "TIMESTAMP"
    out = bare_reads(landing, tmp_path)
    assert out["telemetry"]["rows"] == 2 and out["requests"]["rows"] == 1
