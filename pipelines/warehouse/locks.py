"""Waiting for the live warehouse's write lock, for a bounded time.

DuckDB lets one process write a file, and while it does no other process can open it, even read-only; a process
that holds it read-only (a notebook, ``infercost sql --live``) keeps every writer out. Every step that opens the live
file for writing goes through ``open_with_retry``: it retries with backoff for at most ``INFERCOST_LOCK_WAIT_S``
seconds, then fails with ``WarehouseLocked``, naming the file and the process DuckDB says holds it.

Imports no Dagster.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import duckdb

from pipelines.settings import current

FIRST_DELAY_S = 0.05
MAX_DELAY_S = 2.0


class WarehouseLocked(duckdb.IOException):
    """Another process holds the file; raised after the bounded wait (an IOException, as DuckDB's own is)."""


def is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def _holder(exc: BaseException) -> str:
    """DuckDB's words for the process holding the lock (its program and PID), if it gave them."""
    found = re.search(r"held in (.+?\(PID \d+\))", str(exc))
    return f": {found.group(1)}" if found else ""


def _locked_message(path, exc: BaseException, read_only: bool, wait_s: float) -> str:
    # begins as DuckDB's own message does, and keeps its "(PID n)": callers that recognise DuckDB's lock error
    # recognise this one
    held = f"Could not set lock on {path}: another process holds it{_holder(exc)}"
    if read_only:
        return (
            f"{held}. DuckDB lets no other process open a file while one writes it: read the published copy, "
            "or try again when the run is over."
        )
    return (
        f"{held}. DuckDB lets one process write a file, and none while another has it open; waited "
        f"{wait_s:g} s (INFERCOST_LOCK_WAIT_S). Close the other connection (readers should open the published "
        "copy) and run again."
    )


def open_with_retry(
    path: Path | str, *, read_only: bool = False, wait_s: float | None = None, config: dict | None = None
) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect``, retried with backoff while another process holds the file, for at most ``wait_s``
    seconds (default INFERCOST_LOCK_WAIT_S); then ``WarehouseLocked``. Errors other than the lock raise at once."""
    wait_s = current().lock_wait_s if wait_s is None else wait_s
    deadline = time.monotonic() + wait_s
    delay = FIRST_DELAY_S
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config or {})
        except duckdb.IOException as exc:
            if not is_lock_error(exc):
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WarehouseLocked(_locked_message(path, exc, read_only, wait_s)) from None
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, MAX_DELAY_S)


def wait_for_write_lock(path: Path | str, wait_s: float | None = None) -> None:
    """Return once the file can be opened for writing (for a process that opens it itself, like dbt)."""
    open_with_retry(path, wait_s=wait_s).close()
