"""Run several long-lived commands as one service, and stop every process they started when asked.

Each child starts in its own session, so in its own process group (``start_new_session``), with the kernel told to
send it SIGTERM if the supervisor dies without cleaning up (``PR_SET_PDEATHSIG``, Linux). The supervisor installs
its own SIGINT and SIGTERM handlers before starting anything, so the children begin with both signals at their
defaults even when the supervisor itself was started in the background with SIGINT ignored (why `dagster dev`
started from a script "ignores" Ctrl-C). To stop, it snapshots every descendant of every child (from /proc), sends
SIGINT to each group, then SIGTERM, then SIGKILL to whatever of the snapshot is still alive after a grace period;
a grandchild that left its group (setsid) is still in the snapshot. A child that exits on its own stops the rest.

Imports no Dagster.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Command:
    name: str
    argv: list[str]


# looked up once in the parent: between fork and exec the child only calls it (no dlopen, no allocation)
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


class Supervisor:
    def __init__(self, commands: list[Command], env: dict[str, str], cwd: Path, say: Callable[[str], None]):
        self.commands, self.env, self.cwd, self.say = commands, env, cwd, say
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = False

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True

    def start(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        for command in self.commands:
            self.children[command.name] = subprocess.Popen(
                command.argv, env=self.env, cwd=self.cwd, start_new_session=True, preexec_fn=_die_with_parent
            )
            self.say(f"started {command.name} (PID {self.children[command.name].pid})")

    def wait(self) -> int:
        """Until a signal arrives or a child exits; then stop everything. 0 after a signal, else 1."""
        exited = None
        while not self.stopping and exited is None:
            exited = next((n for n, p in self.children.items() if p.poll() is not None), None)
            time.sleep(0.2)
        if exited:
            self.say(f"{exited} exited with status {self.children[exited].returncode}: stopping the rest")
        self.stop()
        return 0 if exited is None else 1

    def stop(self, grace_s: float = 15.0) -> None:
        tree = {pid for p in self.children.values() for pid in descendants(p.pid) | {p.pid}}
        for sig in (signal.SIGINT, signal.SIGTERM):
            for p in self.children.values():
                _signal_group(p.pid, sig)
            deadline = time.monotonic() + grace_s / 2
            while time.monotonic() < deadline and any(alive(pid) for pid in tree):
                for p in self.children.values():
                    p.poll()  # reap, so an exited child is not a zombie counted alive
                time.sleep(0.1)
        for pid in tree:
            if alive(pid):
                self.say(f"PID {pid} did not stop in {grace_s:.0f} s: killing it")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.children.values():
            p.wait()
        deadline = time.monotonic() + 5  # SIGKILL is not instant: wait for the kernel to finish them
        while time.monotonic() < deadline and any(alive(pid) for pid in tree):
            time.sleep(0.05)
        self.say("stopped")
