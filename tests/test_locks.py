"""Readers never break a run: writers wait (bounded) for another process's lock on the live file, dbt does too,
a killed run's dbt dies with it, and a killed run is not left STARTED."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.warehouse.connection import connect
from pipelines.warehouse.locks import WarehouseLocked

REPO = Path(__file__).resolve().parents[1]
HOLD = (
    "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True); print('held', flush=True); "
    "time.sleep(float(sys.argv[2]))"
)


def hold(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the file read-only (a notebook, `infercost sql --live`) for ``seconds``."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "w.duckdb"
    with connect(path) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    return path


@pytest.mark.slow
def test_a_writer_waits_for_a_reader_then_writes(warehouse, monkeypatch):
    monkeypatch.setenv("INFERCOST_LOCK_WAIT_S", "30")
    with pytest.raises(duckdb.IOException, match="lock"):  # the premise: a plain connect fails at once
        holder = hold(warehouse, 3)
        duckdb.connect(str(warehouse))
    holder.wait()
    holder = hold(warehouse, 3)
    t0 = time.monotonic()
    try:
        with connect(warehouse) as con:
            waited = time.monotonic() - t0
            con.execute("INSERT INTO t VALUES (2)")
            assert con.execute("SELECT sum(x) FROM t").fetchall() == [(3,)]
    finally:
        holder.kill()
        holder.wait()
    assert 1.0 < waited < 20, waited


def test_a_holder_that_never_lets_go_fails_the_writer_after_the_bounded_wait(warehouse, monkeypatch):
    monkeypatch.setenv("INFERCOST_LOCK_WAIT_S", "1.5")
    holder = hold(warehouse, 120)
    t0 = time.monotonic()
    try:
        with pytest.raises(WarehouseLocked) as caught:
            connect(warehouse)
        waited = time.monotonic() - t0
    finally:
        holder.kill()
        holder.wait()
    message = str(caught.value)
    assert str(warehouse) in message and "another process" in message and f"PID {holder.pid}" in message
    assert "INFERCOST_LOCK_WAIT_S" in message
    assert 1.4 < waited < 5, waited


def test_the_dagster_resource_waits_like_every_writer(warehouse, monkeypatch):
    from pipelines.defs.resources import WarehouseResource, warehouse_connection

    resource = WarehouseResource(database=str(warehouse))
    monkeypatch.setenv("INFERCOST_LOCK_WAIT_S", "30")
    holder = hold(warehouse, 2)
    try:
        with warehouse_connection(resource) as con:
            assert con.execute("SELECT count(*) FROM t").fetchall() == [(1,)]
    finally:
        holder.kill()
        holder.wait()
    monkeypatch.setenv("INFERCOST_LOCK_WAIT_S", "0.5")
    holder = hold(warehouse, 120)
    try:
        with pytest.raises(WarehouseLocked, match="another process"), warehouse_connection(resource):
            pass
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_dbt_waits_for_a_reader_that_takes_the_file_as_it_starts(warehouse, monkeypatch):
    """dbt-duckdb opens the file itself: profiles.yml's connect retries carry it past a reader holding the file
    for 4 s (without them `dbt debug` fails its connection test at once)."""
    from pipelines.defs.resources import dbt_resource

    monkeypatch.setenv("INFERCOST_WAREHOUSE", str(warehouse))
    holder = hold(warehouse, 4)
    try:
        out = subprocess.run(
            [dbt_resource.dbt_executable, "debug", "--profiles-dir", str(REPO / "dbt")],
            cwd=REPO / "dbt",
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.kill()
        holder.wait()
    assert "Connection test: [OK connection ok]" in out.stdout.replace("\x1b[32m", "").replace("\x1b[0m", ""), (
        out.stdout[-2000:]
    )


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_child_started_through_the_launcher_dies_with_its_killed_parent(tmp_path):
    from pipelines.defs.child_process import dies_with_parent
    from pipelines.defs.resources import dbt_resource

    # the dbt resource runs dbt through the launcher, and the launcher runs the real dbt
    assert dbt_resource.dbt_executable.endswith("dbt-dies-with-parent")
    version = subprocess.run(
        [dbt_resource.dbt_executable, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert version.returncode == 0 and "duckdb" in version.stdout
    # a parent that starts a child as dagster-dbt does (a plain Popen), then is SIGKILLed
    code = (
        "import subprocess, sys, time; p = subprocess.Popen([sys.argv[1], '120']); print(p.pid, flush=True); "
        "time.sleep(120)"
    )
    children = {}
    for how, exe in (("plain", "/bin/sleep"), ("launcher", dies_with_parent("/bin/sleep", tmp_path))):
        parent = subprocess.Popen([sys.executable, "-c", code, exe], stdout=subprocess.PIPE, text=True)
        children[how] = int(parent.stdout.readline())
        time.sleep(0.3)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 5
    while _alive(children["launcher"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert _alive(children["plain"]), "premise: a plain child outlives its SIGKILLed parent"
        assert not _alive(children["launcher"])
    finally:
        for pid in children.values():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


JOB = """
import sys, time
import dagster as dg

@dg.op
def nap():
    print("napping", flush=True)
    time.sleep(float(sys.argv[1]))

@dg.job
def napper():
    nap()

with dg.DagsterInstance.get() as instance:
    napper.execute_in_process(instance=instance)
"""


@pytest.mark.slow
def test_a_killed_run_is_marked_failed_on_the_next_start_and_a_live_one_is_left_alone(tmp_path, monkeypatch):
    import dagster as dg

    from pipelines.defs.runs import fail_orphaned_runs

    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").touch()
    (tmp_path / "job.py").write_text(JOB)
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    runs = []
    try:
        for _ in range(2):  # one after the other: the first creates the instance's storage
            runs.append(
                subprocess.Popen(
                    [sys.executable, str(tmp_path / "job.py"), "120"],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
            )
            assert "napping" in runs[-1].stdout.readline()
        runs[0].send_signal(signal.SIGKILL)
        runs[0].wait()
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        with dg.DagsterInstance.get() as instance:
            assert sorted(r.status.value for r in instance.get_runs()) == ["STARTED", "STARTED"]
            failed = fail_orphaned_runs(instance)
            statuses = sorted(r.status.value for r in instance.get_runs())
            assert len(failed) == 1 and statuses == ["FAILURE", "STARTED"]
            assert fail_orphaned_runs(instance) == []
            assert "Marked failed on the next start" in instance.all_logs(failed[0])[-1].message
    finally:
        for run in runs:
            run.kill()
            run.wait()


def test_a_run_killed_before_it_started_is_marked_failed_once_its_grace_is_over(tmp_path, monkeypatch):
    """Found by a stranger: `infercost materialize` killed just after it named its log left its run NOT_STARTED
    for good (only STARTED runs were looked at). A run not started is failed once it is older than the grace."""
    import dagster as dg

    import pipelines.defs.runs as runs_module

    @dg.op
    def nothing():
        pass

    @dg.job
    def idle():
        nothing()

    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").touch()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        run = instance.create_run_for_job(job_def=idle)
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.NOT_STARTED
        assert runs_module.fail_orphaned_runs(instance) == []  # just created: it may still start
        monkeypatch.setattr(runs_module, "NO_PID_GRACE_S", 0.0)
        assert runs_module.fail_orphaned_runs(instance) == [run.run_id]
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert "Marked failed on the next start" in instance.all_logs(run.run_id)[-1].message


def test_the_dbt_step_waits_for_the_lock_then_fails_naming_the_file(warehouse, tmp_path, monkeypatch):
    """dbt-duckdb would fail at once with DuckDB's words; the step waits first, like every writer."""
    import dagster as dg

    from pipelines.defs.dbt import cost_models
    from pipelines.defs.resources import dbt_resource

    monkeypatch.setenv("INFERCOST_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("INFERCOST_LOCK_WAIT_S", "1")
    holder = hold(warehouse, 120)
    t0 = time.monotonic()
    try:
        result = dg.materialize(
            [cost_models],
            resources={"dbt": dbt_resource},
            partition_key="2026-11-02",
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
    finally:
        holder.kill()
        holder.wait()
    assert not result.success and time.monotonic() - t0 > 1
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.event_specific_data.error.to_string()
    assert "WarehouseLocked" in message and str(warehouse) in message and "another process" in message
