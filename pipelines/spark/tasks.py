"""What a Spark task runs: the one-machine code on a slice of the data, in an in-memory DuckDB of its own.

No rule is written twice. An ingest task reads whole files with the feed's reader and gives each row its day and
reason with the same SQL as the one-machine loader (pipelines/ingest/load_sql.py), its duplicate-key rule left
out; a dedup task then applies that rule to every row of one key bucket (first delivered wins, across files, and
a key already loaded for another day keeps that day). An attribution task runs ``attribute_day`` on one device
group's requests and telemetry, so that requests over midnight, counter deltas and idle come out as on one machine.

Pure DuckDB and Arrow (no pyspark, no Dagster): the tests call these functions directly too.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.attribution.day import attribute_day
from pipelines.ingest import file_days, load_sql, other_days
from pipelines.ingest.feeds import Feed
from pipelines.ingest.files import date_in_name
from pipelines.ingest.formats import ParseContext
from pipelines.ingest.loader import BATCH_LINES, parse_file
from pipelines.warehouse.connection import configure, ensure_raw_tables

OTHER_DAY = "other_day"
"""A parse task's output column beside the staged rows' (other_day_rows): NULL on a staged row of the day; 'count'
on a row that tells how many valid rows of another day (event_date) a file (source_file) holds, in other_day_rows;
'key' on a row that carries the key of one such row in a file its day's run never read (other_days.KEYS_TABLE);
one of FILE_DAY_KINDS on a row for the file memory."""
OTHER_DAY_ROWS = "other_day_rows"
FILE_DAY_KINDS = ("rows_filed", "rows_dated")
"""OTHER_DAY on a row for the file memory (file_days.add_batch): how many of a file's rows the loader's rule files to
a day (event_date; NULL: dated only by the run), and how many it quarantines on another day though dated on it, in
other_day_rows. A task sees one file: it counts no rows sharing a key with another file."""

# the tables an attribution task returns, tagged in one output (Spark needs one schema per applyInArrow)
ATTRIBUTION_OUTPUTS = ("request_energy_pieces", "device_energy_buckets", "unattributed_requests", "clock_skew_checks")


def task_connection(
    files: pa.Table | None = None, dims: dict[str, pa.Table] | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the raw tables, the fleet tables ``dims`` (readers look up a device's type and a
    region's time zone there) and the run's files (source_file, name_date, arrival) when given."""
    con = configure(duckdb.connect())
    ensure_raw_tables(con)
    for name, rows in (dims or {}).items():
        if rows.num_rows:
            con.register("_rows", rows)
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _rows")
            con.unregister("_rows")
    if files is not None:
        con.register("_files_arrow", files)
        con.execute(f"CREATE TEMP TABLE {load_sql.FILES_TABLE} AS SELECT * FROM _files_arrow")
        con.unregister("_files_arrow")
    return con


def without_duplicate_rule(feed: Feed) -> Feed:
    """The feed with its duplicate-key rule left out: a per-file task cannot see the other files' keys."""
    return replace(feed, contract=replace(feed.contract, on_duplicate_key="keep"))


def staged_schema(feed: Feed, day: date | None) -> pa.Schema:
    """The columns of a staged batch: the contract's, lineage, raw_text, reason, event_date and partition_date."""
    con = task_connection()
    con.execute(load_sql.batch_sql(feed, [], day, False, False))
    return con.sql(f"SELECT * FROM {load_sql.BATCH_TABLE}").to_arrow_table().schema


def task_schema(staged: pa.Schema) -> pa.Schema:
    """A parse task's output: the staged columns, then OTHER_DAY and OTHER_DAY_ROWS."""
    return staged.append(pa.field(OTHER_DAY, pa.string())).append(pa.field(OTHER_DAY_ROWS, pa.int64()))


def _stage(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    parts: list[str],
    day: date | None,
    found: other_days.OtherDays | None,
    days: dict | None,
) -> pa.Table:
    """A batch staged as the loader stages it: its rows of other days counted (``found``), its files' rows per
    day counted for the file memory (``days``: file_days.add_batch), its day's rows returned, and its last file's
    last valid date carried to the next batch (load_sql.carried_date_sql)."""
    any_bad = bool(con.execute(load_sql.any_bad_sql(parts, day, True)).fetchall())
    if found is not None:
        other_days.add_batch(con, feed, parts, day, found)
    if days is not None:
        file_days.add_batch(con, feed, parts, day, any_bad, days)
    con.execute(load_sql.batch_sql(feed, parts, day, any_bad, True))
    staged = con.sql(f"SELECT * FROM {load_sql.BATCH_TABLE}").to_arrow_table()
    con.execute(f"DROP TABLE {load_sql.BATCH_TABLE}")
    con.execute(load_sql.carried_date_sql(parts))
    for p in parts:
        con.execute(f"DROP TABLE IF EXISTS {p}")
    return staged


def _counted(counts: dict[tuple[str, date | None], int], kind: str) -> pa.Table:
    """{(source_file, day): rows} as side rows of ``kind``."""
    return pa.table(
        {
            "source_file": pa.array([f for f, _ in counts], pa.string()),
            "event_date": pa.array([d for _, d in counts], pa.date32()),
            OTHER_DAY: pa.array([kind] * len(counts), pa.string()),
            OTHER_DAY_ROWS: pa.array(list(counts.values()), pa.int64()),
        }
    )


def _side_rows(
    con: duckdb.DuckDBPyConnection, found: other_days.OtherDays | None, days: dict | None, schema: pa.Schema
) -> pa.Table:
    """The task's side rows, of ``task_schema``: a 'count' row per file and other day and a 'key' row per kept key
    (other_days.add_batch), and the FILE_DAY_KINDS rows per file and day (file_days.add_batch)."""
    tables = [_counted({k: n[i] for k, n in (days or {}).items()}, kind) for i, kind in enumerate(FILE_DAY_KINDS)]
    if found is None:
        return pa.concat_tables([_with_columns(t, schema) for t in tables])
    tables.append(_counted(found.counts, "count"))
    if found.keys_kept:
        tables.append(con.sql(f"SELECT *, 'key' AS {OTHER_DAY} FROM {other_days.KEYS_TABLE}").to_arrow_table())
        con.execute(f"DROP TABLE {other_days.KEYS_TABLE}")
    return pa.concat_tables([_with_columns(t, schema) for t in tables])


def parse_files(
    feed: Feed,
    day: date | None,
    files: pa.Table,
    dims: dict[str, pa.Table],
    paths: list[str],
    landing: Path | None,
    found: other_days.OtherDays | None = None,
) -> Iterator[pa.Table]:
    """Each file's rows of ``day``, staged in batches of about BATCH_LINES lines as the loader stages them: every
    row with its partition_date and, when it is to be quarantined, its reason (the duplicate-key rule aside).
    Rows of ``task_schema``; side rows follow: each file's rows per day for the file memory (FILE_DAY_KINDS), and
    with ``found`` (other_days.for_run: what the runs of the days around ``day`` read) the files' rows of other
    days, counted, and keyed where their day's run never read the file."""
    con = task_connection(files, dims)
    per_file = without_duplicate_rule(feed)
    schema = task_schema(staged_schema(per_file, day))
    found = None if day is None or found is None else copy.deepcopy(found)
    days = None if day is None else {}  # {(source_file, day): [rows filed, rows dated, rows sharing keys]}
    for path in map(Path, paths):
        reader = feed.for_file(path)
        ctx = ParseContext(con=con, landing=landing, day=day, options=reader.options, name_date=date_in_name(path))
        parts, lines = [], 0
        for piece_parts, n_lines in parse_file(con, ctx, reader, path):
            parts += piece_parts
            lines += n_lines
            if lines >= BATCH_LINES:
                yield _with_columns(_stage(con, per_file, parts, day, found, days), schema)
                parts, lines = [], 0
        if parts:
            yield _with_columns(_stage(con, per_file, parts, day, found, days), schema)
    side = _side_rows(con, found, days, schema)
    if side.num_rows:
        yield side
    con.close()


def _with_columns(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """``rows`` as rows of ``schema``, the columns they lack NULL."""
    return pa.table(
        {f.name: rows[f.name] if f.name in rows.column_names else pa.nulls(rows.num_rows, f.type) for f in schema}
    ).cast(schema)


def dedup_bucket(
    feed: Feed, day: date | None, files: pa.Table, rows: pa.Table, loaded: pa.Table, window_days: int
) -> pa.Table:
    """The duplicate-key rule over one key bucket: ``rows`` are the day's valid staged rows whose key hashes here,
    ``loaded`` the rows of other days already in the lake with those keys (key, partition_date, source_file,
    source_line) within ``window_days`` of ``day``. Returns the rows with a reason set on every repeat, as the one-machine
    loader does."""
    con = task_connection(files)
    con.register("_rows", rows)
    con.execute("CREATE TEMP TABLE _part AS SELECT * EXCLUDE (partition_date) FROM _rows")
    con.execute(load_sql.batch_sql(feed, ["_part"], day, False, True))
    if loaded.num_rows:
        con.register("_loaded", loaded)
        con.execute(f"INSERT INTO {feed.raw_table} BY NAME SELECT * FROM _loaded")
    con.execute(load_sql.already_loaded_sql(feed, day, staged=False, window_days=window_days))
    out = con.sql(f"SELECT * FROM {load_sql.BATCH_TABLE}").to_arrow_table()
    con.close()
    return out.select(rows.schema.names).cast(rows.schema)


def attribute_group(
    day: date, dims: dict[str, pa.Table], requests: pa.Table, telemetry: pa.Table, options: dict
) -> tuple[dict[str, pa.Table], dict]:
    """``attribute_day`` over one device group: its requests (raw rows of the days the day's requests may have
    started on) and telemetry (raw rows of the day and its neighbours), beside the fleet tables ``dims``;
    ``options``: attribute_day's (max_gap_s, prompt_token_weight, placement). Returns the group's output tables and its totals."""
    con = task_connection(dims={**dims, "raw_requests": requests, "raw_telemetry": telemetry})
    result = attribute_day(con, day, **options)
    tables = {name: con.sql(f"SELECT * FROM {name}").to_arrow_table() for name in ATTRIBUTION_OUTPUTS}
    con.close()
    totals = {
        "requests": result.requests,
        "request_device_rows": result.request_device_rows,
        "telemetry_rows": result.telemetry_rows,
        "dropped_samples": result.dropped_samples,
        "counter_intervals": result.counter_intervals,
        "counter_resets": result.counter_resets,
    }
    return tables, totals


def device_groups(deployments: pa.Table, inventory: pa.Table) -> dict[str, str]:
    """device_id -> group: whole hosts, and every host a replica's devices sit on in one group (a tensor-parallel
    replica over two hosts joins them), so a request's devices are attributed together. A group is named by its
    first host."""
    host_of = dict(zip(inventory["device_id"].to_pylist(), inventory["host"].to_pylist()))
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    by_replica: dict[str, str] = {}
    for replica, device in zip(deployments["replica_id"].to_pylist(), deployments["device_id"].to_pylist()):
        host = host_of.get(device) or device
        first = by_replica.setdefault(replica, host)
        a, b = root(first), root(host)
        if a != b:
            parent[max(a, b)] = min(a, b)
    devices = set(host_of) | set(deployments["device_id"].to_pylist())
    return {d: root(host_of.get(d) or d) for d in devices}


TOTALS = ("requests", "request_device_rows", "telemetry_rows", "dropped_samples", "counter_intervals", "counter_resets")


def tagged_schema() -> pa.Schema:
    """One schema for every attribution output: ``kind`` (the table), the union of the tables' columns, and a
    ``total_<name>`` column per group total (on the group's ``totals`` row)."""
    con = task_connection()
    attribute_day(con, date(2000, 1, 1))  # creates the output tables (empty)
    fields = {"kind": pa.field("kind", pa.string())}
    for name in ATTRIBUTION_OUTPUTS:
        for f in con.sql(f"SELECT * FROM {name}").to_arrow_table().schema:
            if f.name in fields and fields[f.name].type != f.type:
                raise TypeError(f"{name}.{f.name}: {f.type} where another output has {fields[f.name].type}")
            fields.setdefault(f.name, f.with_nullable(True))
    con.close()
    return pa.schema([*fields.values(), *(pa.field(f"total_{t}", pa.int64()) for t in TOTALS)])


def tagged(tables: dict[str, pa.Table], totals: dict, schema: pa.Schema) -> pa.Table:
    """The group's outputs as rows of ``tagged_schema``: each table's rows under its kind, then a totals row."""

    def widen(t: pa.Table, kind: str) -> pa.Table:
        return _with_columns(t.append_column("kind", pa.array([kind] * t.num_rows, pa.string())), schema)

    totals_row = pa.table({f"total_{k}": pa.array([int(totals[k])], pa.int64()) for k in TOTALS})
    return pa.concat_tables([*(widen(t, k) for k, t in tables.items()), widen(totals_row, "totals")])
