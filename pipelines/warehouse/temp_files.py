"""A run's temporary files outside the warehouse, named by the process that made them, and those of dead runs removed.

The ingest decompresses a landing file into the system's temporary folder for DuckDB's readers
(``infercost-lines-<pid>-...``: a telemetry file's text, about 0.15 GB on a fleet-day) and cuts a large line file
into pieces there (``infercost-pieces-<pid>-...``: up to two 256 MiB pieces); a Spark attribution task keeps its
scratch database there (``infercost-attribution-<day>-<pid>-...``). A run removes its own when it ends, even after an
error, but a run killed (out of memory, ``kill -9``, a node lost) cannot: night after night its leftovers would
fill the disk. So each run first removes the temporary files whose process is no longer running. A file whose
process still runs (another run, a reused process id) is left alone; a name without a process id is not ours.

Imports no Dagster.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

_OURS = re.compile(r"^infercost-(?:lines|pieces|attribution-\d{4}-\d{2}-\d{2})-(\d+)-")


def make_dir(kind: str) -> Path:
    """A new temporary directory ``infercost-<kind>-<pid>-...`` (remove it when done)."""
    return Path(tempfile.mkdtemp(prefix=f"infercost-{kind}-{os.getpid()}-"))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_abandoned(folder: Path | None = None) -> list[Path]:
    """Remove the temporary files and directories of infercost runs whose process is no longer running, in
    ``folder`` (the system's temporary folder); returns what was removed."""
    folder = Path(folder or tempfile.gettempdir())
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _OURS.match(entry.name)
        if not match or int(match.group(1)) == os.getpid() or _running(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed
