"""Runs left at STARTED (or not started) by a killed process are marked failed on the next start.

A run executed in process (``infercost materialize``) records its process id in an engine event ("Executing steps
in process (pid: N)"); ``dagster dev``'s run workers do the same. When that process is SIGKILLed, nothing records
the end and the run shows STARTED forever. ``fail_orphaned_runs`` finds this instance's STARTED runs whose
processes are all gone (or were replaced by another process under the same id) and reports them failed. A run
killed before it started (NOT_STARTED or STARTING: ``materialize`` creates the run, then starts it) has no process
id recorded yet: it is failed once it was created more than NO_PID_GRACE_S ago.
"""

from __future__ import annotations

import os
import time

import dagster as dg

# a run that recorded no process id this long after it started is taken for dead (the id comes within a second)
NO_PID_GRACE_S = 60.0


def _process_start_epoch(pid: int) -> float | None:
    """When a process started, in seconds since the epoch (Linux /proc); None where that cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/stat") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith("btime"))
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    if fields[0] == "Z":  # a zombie: killed, not yet reaped
        return float("inf")
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def process_alive(pid: int, since: float) -> bool:
    """Whether process ``pid`` exists and is the one that was running at ``since`` (epoch seconds)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    started = _process_start_epoch(pid)
    return started is None or started <= since + 1.0


def _run_pids(instance: dg.DagsterInstance, run_id: str) -> dict[int, float]:
    """The process ids a run's engine events name, with the time each was first named."""
    pids: dict[int, float] = {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.event_specific_data
        pid = getattr(data, "metadata", {}).get("pid") if data else None
        if pid is not None:
            pids.setdefault(int(pid.value), entry.timestamp)
    return pids


def fail_orphaned_runs(instance: dg.DagsterInstance, log=lambda msg: None) -> list[str]:
    """Mark failed every STARTED run of ``instance`` whose process is gone, and every run left before it started;
    return their run ids."""
    failed = []
    left = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED]
    for record in instance.get_run_records(dg.RunsFilter(statuses=left)):
        run = record.dagster_run
        pids = _run_pids(instance, run.run_id)
        if pids:
            if any(process_alive(pid, since) for pid, since in pids.items()):
                continue
            why = f"its process (pid {', '.join(map(str, pids))}) is gone"
        else:
            started = record.start_time or record.create_timestamp.timestamp()
            if time.time() - started < NO_PID_GRACE_S:
                continue
            why = "it recorded no process and was created over a minute ago"
        instance.report_run_failed(run, message=f"Marked failed on the next start: {why} (killed?).")
        log(f"run {run.run_id} was left {run.status.value}; {why}: marked failed")
        failed.append(run.run_id)
    return failed
