"""What a long command shows while it runs: a line per file with an ETA (`ingest`), and for a pipeline run
(`demo`, `materialize`) the answer rather than hundreds of lines of Dagster and dbt logs.

``quiet_run`` sends everything the run prints (Dagster's console log, dbt's lines, library chatter) to a log file
under INFERCOST_HOME/logs and lets through to the terminal only: each feed's load summary, dbt's progress (a line
every quarter, with an ETA), anything logged as a warning or error, and dbt's failures. ``--verbose`` shows it all.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Dagster's console format: <time> - dagster - <LEVEL> - <job> - <run id> - <step> - <message>
DAGSTER_LINE = re.compile(r" - dagster - (?P<level>[A-Z]+) - [\w-]+ - [0-9a-f-]+ - (?P<step>[\w.-]+) - (?P<msg>.*)")
LOAD_SUMMARY = re.compile(r"\d+ files?, [\d,]+ rows? read, [\d,]+ loaded")
# a long step's progress: ingest's "x/y files" and attribution's "device group x/y"
STEP_PROGRESS = re.compile(r"^(?P<what>.*?)(?:device group )?(?P<done>\d+)/(?P<total>\d+)\b")
# a long step's progress is shown at most this often
PROGRESS_EVERY_S = 10.0
DBT_RESULT = re.compile(r"^(?P<n>\d+) of (?P<total>\d+) (?P<status>OK|PASS|WARN|ERROR|FAIL|SKIP)\b")


def eta(elapsed_s: float, done: float, total: float) -> str:
    """'ETA 12 s' from the pace so far; empty before anything is done."""
    if done <= 0 or total <= done:
        return ""
    left = elapsed_s / done * (total - done)
    return f"ETA {left:.0f} s" if left < 120 else f"ETA {left / 60:.0f} min"


class IngestProgress:
    """``progress(files_done, files_total, report)`` for ingest_feed: a line per file done, and while one long file
    is read a line at most every ``every_s`` seconds; each with the rows read so far, the time taken and an ETA."""

    def __init__(self, label: str, say, every_s: float = 5.0):
        self.label, self.say, self.every_s = label, say, every_s
        self.t0 = self.last = time.monotonic()
        self.files_done = 0

    def __call__(self, done: int, total: int, report) -> None:
        now = time.monotonic()
        if done == self.files_done and now - self.last < self.every_s:
            return
        self.files_done, self.last = done, now
        elapsed = now - self.t0
        when = ", ".join(x for x in (f"{elapsed:.0f} s", eta(elapsed, done, total)) if x)
        self.say(f"  {self.label}: file {done}/{total}, {report.rows_read:,} rows read ({when})")


class _Filter(io.TextIOBase):
    """A text stream that writes every line to ``log`` and passes the lines worth seeing to ``show``."""

    def __init__(self, log, show):
        self.log, self.show, self.pending = log, show, ""
        self.dbt_t0: float | None = None  # when dbt started: its ETA is from its own pace
        self.steps: dict[str, tuple[float, float]] = {}  # a long step's (first seen, last shown)
        self.dbt_shown = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.log.write(text)
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self._consider(ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        self.log.flush()

    def _consider(self, line: str) -> None:
        m = DAGSTER_LINE.search(line)
        if m:
            if m["level"] in ("WARNING", "ERROR", "CRITICAL") or LOAD_SUMMARY.search(m["msg"]):
                prefix = "" if m["level"] == "INFO" else f"{m['level']}: "
                self.show(f"  {prefix}{m['step']}: {m['msg']}")
            elif m["level"] == "INFO":
                self._step_progress(m["step"], m["msg"])
            return
        if line.startswith("Running with dbt="):
            self.dbt_t0, self.dbt_shown = time.monotonic(), 0
            return
        m = DBT_RESULT.match(line)
        if m:
            if self.dbt_t0 is None:
                self.dbt_t0 = time.monotonic()
            n, total = int(m["n"]), int(m["total"])
            if m["status"] in ("WARN", "ERROR", "FAIL"):
                self.show(f"  dbt: {line}")
            quarter = 4 * n // total
            if quarter > self.dbt_shown:
                self.dbt_shown = quarter
                elapsed = time.monotonic() - self.dbt_t0
                when = eta(elapsed, n, total)
                self.show(f"  dbt build: {n}/{total} models and tests done" + (f" ({when})" if when else ""))
            return
        if line.startswith(("Completed with", "Failure in", "Database Error", "Compilation Error")):
            self.show(f"  dbt: {line}")

    def _step_progress(self, step: str, msg: str) -> None:
        """A long step's progress line, every PROGRESS_EVERY_S at most, with an ETA from its pace since first seen."""
        p = STEP_PROGRESS.match(msg)
        if not p or int(p["done"]) >= int(p["total"]):
            return
        key, now = f"{step}: {p['what']}", time.monotonic()
        first, last = self.steps.setdefault(key, (now, now))
        if now - last < PROGRESS_EVERY_S:
            return
        self.steps[key] = (first, now)
        when = eta(now - first, int(p["done"]), int(p["total"]))
        self.show(f"  {step}: {msg}" + (f" ({when})" if when else ""))


@contextlib.contextmanager
def quiet_run(home: Path, name: str, verbose: bool, say):
    """Around a pipeline run: with ``verbose`` nothing changes; otherwise the run's output goes to
    ``home/logs/<name>-<UTC time>.log`` (named at the start) and only its summary lines reach the terminal."""
    if verbose:
        yield None
        return
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.log"
    say(f"the run's full log: {path} (--verbose shows it here)")
    real_out, real_err = sys.stdout, sys.stderr

    def show(line: str) -> None:
        real_out.write(line + "\n")
        real_out.flush()

    with open(path, "a", encoding="utf-8") as log:
        stream = _Filter(log, show)
        sys.stdout = sys.stderr = stream
        try:
            yield path
        finally:
            sys.stdout, sys.stderr = real_out, real_err
            stream.write("\n")
