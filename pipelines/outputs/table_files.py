"""Writing a query's answer to CSV, JSON or Parquet, batch by batch, from Python (pyarrow), never by DuckDB COPY:
the analyst's SQL runs in a connection that can reach no file (pipelines/warehouse/readonly_query.py), and only
this code, with the path the user gave on the command line, writes one.

A file is written beside its destination and renamed into place when complete, so a query that fails half way
leaves no partial file. Imports no Dagster.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FORMATS = ("csv", "json", "parquet")


def _json_value(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, date | time):
        return v.isoformat()
    if isinstance(v, timedelta):
        return v.total_seconds()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    return v


def _limited(batches: Iterable[pa.RecordBatch], max_rows: int | None):
    rows = 0
    for batch in batches:
        if max_rows is not None and rows + batch.num_rows > max_rows:
            batch = batch.slice(0, max_rows - rows)
        if batch.num_rows:
            yield batch
        rows += batch.num_rows
        if max_rows is not None and rows >= max_rows:
            return


def _write_csv(schema, batches, out) -> int:
    rows = 0
    with pacsv.CSVWriter(out, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _write_json(schema, batches, out) -> int:
    """A JSON array of objects, one per row; names as the query gave them, dates and times as ISO 8601 text."""
    names, rows = schema.names, 0
    out.write(b"[")
    for batch in batches:
        columns = [c.to_pylist() for c in batch.columns]
        for values in zip(*columns):
            record = {n: _json_value(v) for n, v in zip(names, values)}
            out.write((",\n" if rows else "\n").encode() + json.dumps(record, allow_nan=False).encode())
            rows += 1
    out.write(b"\n]\n")
    return rows


def _write_parquet(schema, batches, out) -> int:
    rows = 0
    with pq.ParquetWriter(out, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


_WRITERS = {"csv": _write_csv, "json": _write_json, "parquet": _write_parquet}


def write_batches(
    schema: pa.Schema, batches: Iterable[pa.RecordBatch], fmt: str, out: Path | None, max_rows: int | None = None
) -> int:
    """Write at most ``max_rows`` rows (all when None) of ``batches`` as ``fmt`` to the file ``out`` (stdout when
    None); returns the rows written."""
    if fmt not in _WRITERS:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    limited = _limited(batches, max_rows)
    if out is None:
        rows = _WRITERS[fmt](schema, limited, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return rows
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        with open(tmp, "wb") as f:
            rows = _WRITERS[fmt](schema, limited, f)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return rows
