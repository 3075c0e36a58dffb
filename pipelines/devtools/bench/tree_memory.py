"""The resident memory of a process tree, sampled in a thread and kept as a peak per step of a run.

Linux only (/proc). The tree's memory is the sum of its processes' resident sets (VmRSS): pages shared between
them (libraries, a file both map) count once per process, so the sum can exceed what the machine gave the tree;
it is the figure to hold under a memory goal, since the tree never needs more than that at once.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

PROC = Path("/proc")


def _children(pid: int) -> list[int]:
    kids = []
    for task in (PROC / str(pid) / "task").glob("*/children"):
        try:
            kids += [int(k) for k in task.read_text().split()]
        except OSError:
            continue
    return kids


def _rss_bytes(pid: int) -> int:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss_bytes(root: int) -> int:
    """The summed resident sets of ``root`` and all its descendants, now."""
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += _rss_bytes(pid)
        todo += _children(pid)
    return total


class TreeSampler:
    """Samples a process tree's memory every ``interval_s`` seconds in a thread, with the time of each sample."""

    def __init__(self, root: int, interval_s: float = 0.25):
        self.root, self.interval_s = root, interval_s
        self.samples: list[tuple[float, int]] = []  # (Unix seconds, bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-memory", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.samples.append((time.time(), tree_rss_bytes(self.root)))

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak_bytes(self) -> int:
        return max((rss for _, rss in self.samples), default=0)

    def step_peaks(self, windows: dict[str, tuple[float, float]]) -> dict[str, int]:
        """The peak of the samples inside each step's [start, end] window."""
        return {
            step: max((rss for t, rss in self.samples if start <= t <= end), default=0)
            for step, (start, end) in windows.items()
        }
