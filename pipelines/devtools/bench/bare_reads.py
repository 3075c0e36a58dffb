"""DuckDB's bare read and store of a fleet-day's raw files: the floor the loaders are compared with.

The request JSONL read by ``read_json`` (types inferred) and the nvidia-smi CSVs by a typed ``read_csv`` (the
timestamp in the typed reader's format), each straight into a table of a fresh DuckDB file, then checkpointed: no
line numbers, no checks, no quarantine, no per-file counts, no day rules. What the loaders spend above these
figures is what their guarantees cost (README "The fleet-day"). Run as a child process of the fleet-day
benchmark (``python -m pipelines.devtools.bench.bare_reads LANDING WORKDIR``), which prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from pipelines.ingest.formats.telemetry_typed import TS_FORMAT
from pipelines.ingest.plain_files import GLOB_CHARS
from pipelines.warehouse.connection import sql_str

USAGE = "usage: python -m pipelines.devtools.bench.bare_reads LANDING WORKDIR"


def _columns(header: str) -> dict[str, str]:
    """nvidia-smi's header as typed columns: the timestamp, numbers with a unit, text for the rest."""
    types = {}
    for i, name in enumerate(f.strip() for f in header.split(",")):
        if name == "timestamp":
            types[f"field_{i + 1}"] = "TIMESTAMP"
        elif name.endswith(("[W]", "[%]", "[MiB]")):
            types[f"field_{i + 1}"] = "DOUBLE"
        else:
            types[f"field_{i + 1}"] = "VARCHAR"
    return types


def _first_line(path: Path) -> str:
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig") as f:  # a byte order mark is not part of the header
        return f.readline().rstrip("\r\n")


def _files(landing: Path, folder: str, pattern: str) -> list[Path]:
    """The folder's files, or SystemExit naming what is missing; a name DuckDB would read as a glob is refused."""
    found = sorted((landing / folder).glob(pattern)) if (landing / folder).is_dir() else []
    if not found:
        raise SystemExit(f"{landing / folder}: no {pattern} file (the bare reads need the landing's {folder}/)")
    for path in found:
        if GLOB_CHARS & set(str(path)):
            raise SystemExit(f"{path}: DuckDB reads a name with any of * ? [ ] {{ }} ' \\ as a pattern; rename it")
    return found


def _one_header(files: list[Path]) -> str:
    """The telemetry files' header: the bare read types its columns from it, so every file must have it."""
    header = _first_line(files[0])
    for path in files[1:]:
        if _first_line(path) != header:
            raise SystemExit(f"{path}: its header differs from {files[0]}'s ({header!r}); the bare read needs one")
    return header


def _timed(con, sql: str) -> dict[str, float]:
    c0, t0 = os.times(), time.perf_counter()
    con.execute(sql)
    con.execute("CHECKPOINT")
    c1 = os.times()
    return {"seconds": time.perf_counter() - t0, "cpu_s": c1.user - c0.user + c1.system - c0.system}


def bare_reads(landing: Path, workdir: Path) -> dict[str, dict[str, float]]:
    """Seconds, CPU seconds and rows of each bare read (telemetry, requests) of the landing's files."""
    import duckdb

    telemetry = _files(landing, "telemetry", "*.csv*")
    requests = _files(landing, "requests", "*.jsonl*")
    header = _one_header(telemetry)
    path = workdir / "bare_reads.duckdb"
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        files = "[" + ", ".join(sql_str(str(p)) for p in telemetry) + "]"
        columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in _columns(header).items()) + "}"
        out = {
            "telemetry": _timed(
                con,
                f"CREATE TABLE t AS SELECT * FROM read_csv({files}, columns = {columns}, header = false, skip = 1, "
                f"auto_detect = false, quote = '', escape = '', delim = ',', timestampformat = '{TS_FORMAT}', "
                "filename = true)",
            ),
            "requests": _timed(
                con,
                "CREATE TABLE r AS SELECT * FROM read_json(["
                + ", ".join(sql_str(str(p)) for p in requests)
                + "], format = 'newline_delimited')",
            ),
        }
        for name, table in (("telemetry", "t"), ("requests", "r")):
            out[name]["rows"] = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    finally:
        con.close()
        path.unlink(missing_ok=True)
        Path(str(path) + ".wal").unlink(missing_ok=True)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(USAGE)
    print(json.dumps(bare_reads(Path(sys.argv[1]), Path(sys.argv[2]))))
