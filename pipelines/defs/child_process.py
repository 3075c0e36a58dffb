"""A child process that dies with its parent: the dbt that dagster-dbt starts.

dagster-dbt starts dbt with a plain ``subprocess.Popen``. When the process running the step is killed (SIGKILL, the
OOM killer), dbt is re-parented and keeps running, holding the live warehouse's write lock, so the next run waits
and fails. On Linux the kernel can kill a child when its parent dies (``prctl(PR_SET_PDEATHSIG)``), but that must
be set inside the child before it runs dbt, and dagster-dbt takes only an executable's path. So the resource's
executable is a small launcher, written once beside dbt's target files: it sets PR_SET_PDEATHSIG to SIGKILL, gives
up if its parent is already gone, and replaces itself with the real executable (the setting survives exec).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

LAUNCHER = """#!{python} -IS
# written by infercost (pipelines/defs/child_process.py): runs {target} so that it dies with its parent
import ctypes, os, signal, sys

PR_SET_PDEATHSIG = 1
ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
if os.getppid() == 1:  # the parent died before the line above: nothing is waiting for this process
    sys.exit(1)
os.execv({target!r}, [{target!r}] + sys.argv[1:])
"""


def dies_with_parent(executable: str | Path, folder: Path) -> str:
    """A launcher in ``folder`` that runs ``executable`` with PR_SET_PDEATHSIG=SIGKILL (Linux); elsewhere the
    executable itself. Written only when missing or different, atomically."""
    if not sys.platform.startswith("linux"):
        return str(executable)
    target = os.path.abspath(executable)
    text = LAUNCHER.format(python=sys.executable, target=target)
    path = folder / f"{Path(target).name}-dies-with-parent"
    try:
        if not path.exists() or path.read_text() != text:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(text)
            tmp.chmod(0o755)
            os.replace(tmp, path)
    except OSError:  # a read-only checkout: dbt runs, only without the guard
        return str(executable)
    return str(path)
