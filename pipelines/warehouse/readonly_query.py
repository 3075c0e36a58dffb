"""Run an analyst's SQL against a warehouse file: one SELECT, read-only, no access to any other file.

Opening a DuckDB file read-only is not a sandbox: a read-only connection still runs every statement of a string,
ATTACHes other files for writing, COPYs and EXPORTs to files, and reads any file the process can (read_text,
read_csv, glob). So the connection used here is, in this order:

1. opened read-only (a run that holds the file for writing makes this fail: ``WarehouseBusy``);
2. cut off from the file system and the network (``SET enable_external_access = false``: no read_text, read_csv,
   glob, COPY, EXPORT, ATTACH, INSTALL or LOAD), but for the folder of Parquet files a published copy's views read
   and the lake (``$INFERCOST_HOME/lake``, which the spark engine's views read) (``allowed_directories``; only a
   SELECT runs, so nothing is written there), then frozen (``SET
   lock_configuration = true``: no statement can turn that back on);
3. given exactly one statement, as DuckDB's own parser splits the text (``extract_statements``), and only if DuckDB
   reports it as a SELECT (WITH, FROM-first, VALUES, SHOW, DESCRIBE and SUMMARIZE parse as SELECT too; EXPLAIN,
   PRAGMA, CALL, SET, COPY, ATTACH and the rest are refused).

Imports no Dagster.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import duckdb
import pyarrow as pa

from pipelines.warehouse import lake
from pipelines.warehouse.connection import configure, sql_str
from pipelines.warehouse.publish import parts_dir

ALLOWED_TYPES = (duckdb.StatementType.SELECT,)
READ_ONLY_RULE = (
    "read-only: one SELECT (or WITH, FROM, VALUES, SHOW, DESCRIBE, SUMMARIZE) on the warehouse's tables is allowed"
)


class QueryRefused(ValueError):
    """The SQL is not one read-only query of the warehouse; the message (one line) says what to change."""


class WarehouseBusy(RuntimeError):
    """Another process holds the DuckDB file for writing (a pipeline run)."""

    def __init__(self, path: Path, pid: int | None):
        super().__init__(f"the pipeline is writing to {path}" + (f" (PID {pid})" if pid else ""))
        self.path, self.pid = path, pid

    @classmethod
    def from_error(cls, path: Path, exc: duckdb.Error) -> WarehouseBusy | None:
        """The busy file behind DuckDB's "Could not set lock" error (naming the holder's PID), else None."""
        message = str(exc)
        if "Could not set lock" not in message and "Conflicting lock" not in message:
            return None
        pid = re.search(r"\(PID (\d+)\)", message)
        return cls(path, int(pid.group(1)) if pid else None)


class QueryResult(NamedTuple):
    table: pa.Table
    """The first rows of the answer (all of them when no row limit was given)."""
    total_rows: int
    """Rows in the whole answer."""


def open_read_only(path: Path | str) -> duckdb.DuckDBPyConnection:
    """A read-only connection with infercost's session settings; ``WarehouseBusy`` when a writer holds the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        busy = WarehouseBusy.from_error(path, exc)
        if busy:
            raise busy from None
        raise
    return configure(con)


def sandbox(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Cut a connection off from every file but its database (and, for a published copy, the Parquet files its
    views read: pipelines/warehouse/publish.py) and freeze its configuration."""
    path = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    if path and path[0][0]:
        # the published copy's Parquet parts, and the lake, which the spark engine's views of the row-level tables
        # read (pipelines/spark/lake_io.attach_lake)
        readable = ", ".join(sql_str(f"{folder}/") for folder in (parts_dir(Path(path[0][0])), lake.lake_root()))
        con.execute(f"SET allowed_directories = [{readable}]").fetchall()
    con.execute("SET enable_external_access = false").fetchall()
    con.execute("SET lock_configuration = true").fetchall()
    return con


def one_select(con: duckdb.DuckDBPyConnection, sql: str):
    """The one SELECT statement of ``sql``, as DuckDB parses it; ``QueryRefused`` for anything else."""
    statements = con.extract_statements(sql)
    if not statements:
        raise QueryRefused("no SQL statement given (the text is empty or only comments)")
    if len(statements) > 1:
        kinds = ", ".join(s.type.name for s in statements)
        raise QueryRefused(
            f"exactly one statement is allowed; this text holds {len(statements)} ({kinds}): remove all but one"
        )
    statement = statements[0]
    if statement.type not in ALLOWED_TYPES:
        raise QueryRefused(f"{READ_ONLY_RULE}; this is a {statement.type.name} statement")
    return statement


def stream_read_only(path: Path | str, sql: str, consume, batch_size: int = 100_000) -> int:
    """Run one SELECT on the warehouse file at ``path`` in the sandbox above and hand its answer to
    ``consume(schema, batches)`` batch by batch (nothing is held beyond one batch unless ``consume`` keeps it).

    Returns the answer's row count, which includes the rows ``consume`` did not read. Raises ``QueryRefused`` (not
    a read-only query of the warehouse, or it tried to reach a file), ``WarehouseBusy``, ``FileNotFoundError``, or
    ``duckdb.Error`` (a query that is allowed but wrong: a missing column, a syntax error).
    """
    with sandbox(open_read_only(path)) as con:
        statement = one_select(con, sql)
        counted = [0]

        def batches(reader):
            for batch in reader:
                counted[0] += batch.num_rows
                yield batch

        try:
            reader = con.sql(statement).to_arrow_reader(batch_size=max(1, batch_size))
            it = batches(reader)
            consume(reader.schema, it)
            for _ in it:  # the rows consume left are still counted
                pass
        except duckdb.PermissionException as exc:
            reason = str(exc).split(" - ", 1)[0].removeprefix("Permission Error: ")
            raise QueryRefused(f"only the warehouse's own tables can be read, no other file ({reason})") from None
    return counted[0]


def query_read_only(path: Path | str, sql: str, max_rows: int | None = None) -> QueryResult:
    """The first ``max_rows`` rows (all rows when None) of one SELECT run by ``stream_read_only``, as an Arrow
    table, and the answer's row count; the rows past ``max_rows`` are counted batch by batch, never held."""
    kept: list[pa.RecordBatch] = []
    schemas: list[pa.Schema] = []

    def keep(schema, batches):
        schemas.append(schema)
        rows = 0
        for batch in batches:
            kept.append(batch)
            rows += batch.num_rows
            if max_rows is not None and rows >= max_rows:
                return

    total = stream_read_only(path, sql, keep, batch_size=min(max_rows or 100_000, 100_000))
    table = pa.Table.from_batches(kept, schema=schemas[0])
    if max_rows is not None:
        table = table.slice(0, max_rows)
    return QueryResult(table, total)
