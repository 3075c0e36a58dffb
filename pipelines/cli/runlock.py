"""One writing run per INFERCOST_HOME: `materialize`, `demo` and `ingest` hold an exclusive lock on
``$INFERCOST_HOME/run.lock`` while they write.

The lock is ``fcntl.flock`` on an open file, so the kernel drops it when the process ends, however it ends: a run
killed with SIGKILL never blocks the next one. The file's text (the holder's PID and command) is only for the
message a second run prints; a stale text left by a killed run is overwritten by the next holder.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines.cli.helpers import UserError

LOCK_NAME = "run.lock"


@contextmanager
def run_lock(home: Path, command: str) -> Iterator[Path]:
    """Hold the home's run lock for the block; ``UserError`` naming the holder's PID when another run has it."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / LOCK_NAME
    with open(path, "a+") as f:  # "a+": never truncate on open, the holder's text must survive a refused attempt
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "a process that has not written its PID yet"
            raise UserError(
                f"another run is writing to {home}: {holder}. Wait for it to finish (or stop that "
                "process); two runs on one INFERCOST_HOME would corrupt each other"
            ) from None
        f.seek(0)
        f.truncate()
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        f.write(f"PID {os.getpid()} (infercost {command}, started {started})\n")
        f.flush()
        try:
            yield path
        finally:
            f.truncate(0)  # still locked here; closing the file releases the lock
