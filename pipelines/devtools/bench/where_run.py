"""What a bench's figures were measured on, printed with them: the commit (and whether the tree had uncommitted
changes), the machine's cores and its load average. Figures from two machines, or from a loaded hour, differ by
more than most changes do; a figure without this line cannot be compared with another."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def commit(repo: Path = REPO) -> str:
    """The short commit of the tree the bench runs from, with ``+changes`` when files differ from it; ``unknown``
    outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def where_run() -> str:
    """One line: commit, cores, load average (1, 5, 15 minutes)."""
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"measured on commit {commit()}, {os.cpu_count()} cores, load average {load}"
