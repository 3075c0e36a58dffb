"""The history benchmark: does a daily run cost the same on day 1 and on day N of a warehouse's life?

A generated fleet of N days (``infercost generate --days N``, written once under bench_data/history-<devices>/) is
materialized as the schedule would: days 1 .. N-1 as backfill runs of at most BACKFILL_CHUNK_DAYS days into a
warehouse (the history, not timed), then, one after the other, day 1 alone in an empty warehouse (timed) and day N
alone on the history (timed). Each run is ``infercost materialize`` in a child process; the summary prints both
days' times, the ratio and each step's seconds side by side.

The history is kept for the next bench: a file in its home says the last day it holds. A bench killed during the
backfill (30 days took an hour here beside a CI run: a 90-day history takes hours) resumes after the last finished
run; a history through day N-1, or through day N (day N was timed on it: timing it again re-runs it, the same
work), is reused; a longer one is built again.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pipelines.devtools.bench.inputs import bench_dir, generate_landing
from pipelines.devtools.bench.where_run import where_run

FIRST_DAY = date(2026, 8, 1)
"""Day 1 of the generated fleet: early enough that day 90 (2026-10-29) is a complete UTC day, which a run can
materialize (a fleet from 2026-11-02 reached into 2027 and was refused only after two hours of generation)."""
BACKFILL_CHUNK_DAYS = 10
"""The days of one backfill run of the history (a killed bench loses at most one run's work: 10 days of the
64-accelerator fleet take about 20 min here, where 30 took an hour and a session could end inside one)."""
BUILT_THROUGH = "history-built-through"
"""The file in the history's home holding the last day the history holds (ISO), written after each run."""
CLI = [sys.executable, "-m", "pipelines.cli"]


def materialize_days(
    landing: Path, home: Path, first: date, last: date, extra_env: dict[str, str] | None = None
) -> tuple[float, dict[str, float]]:
    """``infercost materialize`` of [first, last] in a child process (``extra_env`` added to its environment);
    returns its wall seconds and its step seconds."""
    env = {**os.environ, **(extra_env or {}), "INFERCOST_LANDING": str(landing), "INFERCOST_HOME": str(home)}
    env.pop("INFERCOST_WAREHOUSE", None)
    env.pop("DAGSTER_HOME", None)
    t0 = time.perf_counter()
    done = subprocess.run(
        CLI + ["materialize", "--from", first.isoformat(), "--to", last.isoformat()],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"materialize {first}..{last} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    steps = {}
    for line in done.stdout.splitlines() + done.stderr.splitlines():
        if line.startswith("step seconds:"):
            steps = {k: float(v) for k, v in re.findall(r"(\w+) ([0-9.]+)", line.split(":", 1)[1])}
    return seconds, steps


def fleet_landing(devices: int, days: int, say=print) -> Path:
    """The generated fleet of ``devices`` accelerators from FIRST_DAY, with at least ``days`` days (written once)."""
    landing = bench_dir(f"history-{devices}")
    last = FIRST_DAY + timedelta(days=days - 1)
    if not any((landing / "requests").glob(f"{last}*")):
        say(f"generating {days} days of a {devices}-accelerator fleet into {landing} (once) ...")
        generate_landing(landing, ["--devices", str(devices), "--days", str(days), "--start", str(FIRST_DAY)])
    return landing


def built_through(home: Path) -> date | None:
    """The last day of the history in ``home`` (None: no history, or one from a bench that wrote no record)."""
    try:
        return date.fromisoformat((home / BUILT_THROUGH).read_text().strip())
    except (OSError, ValueError):
        return None


def build_history(landing: Path, home: Path, last: date, say=print) -> None:
    """The history of days FIRST_DAY .. ``last`` in ``home``, in backfill runs of BACKFILL_CHUNK_DAYS days (not
    timed), resuming after the last day a record says was built (module docstring)."""
    through = built_through(home)
    if through is None or through > last + timedelta(days=1):
        shutil.rmtree(home, ignore_errors=True)
        through = FIRST_DAY - timedelta(days=1)
    if through >= last:
        say(f"reusing the history of {FIRST_DAY} .. {through} in {home}")
        return
    first = through + timedelta(days=1)
    while first <= last:
        upto = min(last, first + timedelta(days=BACKFILL_CHUNK_DAYS - 1))
        say(f"backfill {first} .. {upto} (the history, not timed) ...")
        seconds, _ = materialize_days(landing, home, first, upto)
        (home / BUILT_THROUGH).write_text(upto.isoformat())
        say(f"  {seconds:.0f} s")
        first = upto + timedelta(days=1)


def history(devices: int = 64, days: int = 10, say=print) -> dict:
    """Day 1 and day ``days`` of a fresh warehouse's daily runs on a generated fleet, timed side by side: the
    history (days 1 .. N-1, backfilled, not timed) is built or resumed first, then day 1 runs in an empty warehouse
    and day N on that history, one after the other."""
    last = FIRST_DAY + timedelta(days=days - 1)
    today = datetime.now(UTC).date()
    if last >= today:  # said before hours of generation: a run materializes complete UTC days only
        raise ValueError(
            f"day {days} of the history bench would be {last}, not a complete UTC day yet (today is {today}): "
            f"use at most {(today - FIRST_DAY).days} days"
        )
    landing = fleet_landing(devices, days, say)
    home = landing.parent / f"history-{devices}-home"
    build_history(landing, home, last - timedelta(days=1), say)
    empty = landing.parent / f"history-{devices}-day1"
    shutil.rmtree(empty, ignore_errors=True)
    say(where_run())
    say(f"day 1 ({FIRST_DAY}) in an empty warehouse ...")
    first_s, first_steps = materialize_days(landing, empty, FIRST_DAY, FIRST_DAY)
    say(f"  {first_s:.1f} s")
    say(f"day {days} ({last}) on {days - 1} days of history ...")
    last_s, last_steps = materialize_days(landing, home, last, last)
    (home / BUILT_THROUGH).write_text(last.isoformat())
    say(f"after day {days}: {where_run()}")
    ratio = last_s / first_s
    say(f"{'step':<24}{'day 1 s':>10}{f'day {days} s':>10}{'ratio':>8}")
    for step in first_steps:
        a, b = first_steps[step], last_steps.get(step, float("nan"))
        say(f"{step:<24}{a:>10.1f}{b:>10.1f}{b / a if a else float('nan'):>8.2f}")
    say(f"{'materialize (wall)':<24}{first_s:>10.1f}{last_s:>10.1f}{ratio:>8.3f}")
    sizes = {name: (h / "warehouse.duckdb").stat().st_size / 1e9 for name, h in (("day 1", empty), ("day N", home))}
    say(
        f"summary history ({devices} accelerators): day 1 {first_s:.1f} s, day {days} {last_s:.1f} s, ratio "
        f"{ratio:.3f} (goal <= 1.25); warehouse file {sizes['day 1']:.2f} GB after day 1, "
        f"{sizes['day N']:.2f} GB after {days} days"
    )
    return {"day1_s": first_s, "last_s": last_s, "ratio": ratio, "steps": (first_steps, last_steps)}
