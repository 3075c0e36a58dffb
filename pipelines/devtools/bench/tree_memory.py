"""The resident memory and CPU time of a process tree, sampled in a thread and kept per step of a run (the peak
memory, the CPU seconds used).

Linux only (/proc). The tree's memory is the sum of its processes' resident sets (VmRSS): pages shared between
them (libraries, a file both map) count once per process, so the sum can exceed what the machine gave the tree;
it is the figure to hold under a memory goal, since the tree never needs more than that at once. The tree's CPU
time is its live processes' user and system time plus what their exited children used (a child's time moves to its
parent's once the parent has waited for it), so a step's CPU seconds over its wall seconds is how many of the
machine's cores it kept busy.
"""

from __future__ import annotations

import os
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


def _status_bytes(pid: int | str, field: str) -> int:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _rss_bytes(pid: int) -> int:
    return _status_bytes(pid, "VmRSS")


def own_peak_bytes(pid: int | str = "self") -> int:
    """The peak resident set of the process ``pid`` (this one by default) since it started its program: VmHWM.
    Not getrusage's ru_maxrss, which a process started by a larger one inherits: Linux keeps the largest resident
    set seen by the process across exec, the parent's (from which it was forked) included, so a child of a parent
    that once held 1.8 GB reports at least 1.8 GB whatever it used itself."""
    return _status_bytes(pid, "VmHWM")


_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """The process's user and system seconds, with those of its exited children it has waited for."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # after the command's name, which may hold spaces
    return sum(int(f) for f in fields[11:15]) / _TICKS_PER_S  # utime, stime, cutime, cstime


def _tree(root: int) -> list[int]:
    pids, todo, seen = [], [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        pids.append(pid)
        todo += _children(pid)
    return pids


def tree_rss_bytes(root: int) -> int:
    """The summed resident sets of ``root`` and all its descendants, now."""
    return sum(_rss_bytes(pid) for pid in _tree(root))


def tree_cpu_s(root: int) -> float:
    """The CPU seconds ``root`` and all its descendants have used so far (their exited children's included)."""
    return sum(_cpu_s(pid) for pid in _tree(root))


class TreeSampler:
    """Samples a process tree's memory and CPU time every ``interval_s`` seconds in a thread, with the time of each
    sample."""

    def __init__(self, root: int, interval_s: float = 0.25):
        self.root, self.interval_s = root, interval_s
        self.samples: list[tuple[float, int, float]] = []  # (Unix seconds, bytes, CPU seconds so far)
        self.process_peak_bytes = 0
        """The largest peak resident set (own_peak_bytes) of any one process of the tree seen by a sample."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-memory", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            pids = _tree(self.root)
            self.samples.append((time.time(), sum(map(_rss_bytes, pids)), sum(map(_cpu_s, pids))))
            self.process_peak_bytes = max([self.process_peak_bytes, *map(own_peak_bytes, pids)])

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak_bytes(self) -> int:
        return max((rss for _, rss, _ in self.samples), default=0)

    def step_peaks(self, windows: dict[str, tuple[float, float]]) -> dict[str, int]:
        """The peak of the samples inside each step's [start, end] window."""
        return {
            step: max((rss for t, rss, _ in self.samples if start <= t <= end), default=0)
            for step, (start, end) in windows.items()
        }

    def step_cpu_s(self, windows: dict[str, tuple[float, float]]) -> dict[str, float]:
        """The tree's CPU seconds inside each step's [start, end] window (between its first and last samples)."""
        cpu = {}
        for step, (start, end) in windows.items():
            inside = [c for t, _, c in self.samples if start <= t <= end]
            cpu[step] = max(inside[-1] - inside[0], 0.0) if inside else 0.0
        return cpu
