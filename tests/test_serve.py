"""`infercost serve` and its supervisor: every process it starts stops with it, and the ports are free again.

The supervisor is tested directly on shell children built to be hard to stop (one ignores SIGINT and SIGTERM, one
leaves its process group with setsid); the whole `serve` (Dagster UI, daemon, API) is started as a subprocess, asked
over HTTP, and stopped with SIGTERM to its PID."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from pipelines.serve.supervisor import Command, Supervisor, alive, descendants
from tests.conftest import REPO, cli_env
from tests.test_api_http import free_port, listening_addresses

STUBBORN = "trap '' INT TERM; setsid sleep 300 & sleep 300 & wait"


def _tree(pids) -> set[int]:
    return {d for p in pids for d in descendants(p) | {p}}


def test_the_supervisor_stops_stubborn_children_and_grandchildren_that_left_the_group(tmp_path):
    commands = [Command("stubborn", ["bash", "-c", STUBBORN]), Command("plain", ["sleep", "300"])]
    messages = []
    supervisor = Supervisor(commands, cli_env(), tmp_path, messages.append)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        supervisor.start()
        time.sleep(0.5)
        tree = _tree(p.pid for p in supervisor.children.values())
        assert len(tree) == 4  # bash, its two sleeps, the plain sleep
        groups = {p.pid for p in supervisor.children.values()}
        assert any(os.getpgid(pid) not in groups for pid in tree)  # the setsid sleep left its group
        supervisor.stop(grace_s=2)
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    assert not [pid for pid in tree if alive(pid)]
    assert any("did not stop" in m for m in messages)


def test_children_die_with_a_killed_supervisor(tmp_path):
    script = (
        "import sys, time\n"
        "from pipelines.serve.supervisor import Command, Supervisor\n"
        "s = Supervisor([Command('a', ['sleep', '300']), Command('b', ['sleep', '300'])], None, '.', print)\n"
        "s.start(); sys.stdout.flush(); time.sleep(300)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=cli_env(), stdout=subprocess.PIPE)
    time.sleep(1.5)
    children = descendants(parent.pid)
    assert len(children) == 2
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(c) for c in children):
        time.sleep(0.1)
    assert not [c for c in children if alive(c)]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _graphql(base: str, query: str) -> dict:
    request = urllib.request.Request(
        base + "/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


STATUS_QUERY = (
    "{ repositoriesOrError { ... on RepositoryConnection { nodes { schedules { name scheduleState { status } } "
    "sensors { name sensorState { status } } } } } }"
)


@pytest.mark.slow
def test_serve_runs_ui_daemon_and_api_and_sigterm_stops_every_process(tmp_path):
    ui_port, api_port = free_port(), free_port()
    env = cli_env(home=tmp_path / "home", INFERCOST_UI_PORT=str(ui_port), INFERCOST_API_PORT=str(api_port))
    parent = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "serve"], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    ui, api = f"http://127.0.0.1:{ui_port}", f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not (_answers(ui + "/server_info") and _answers(api + "/healthz")):
            assert parent.poll() is None, parent.stdout.read()
            time.sleep(1)
        assert _answers(ui + "/server_info") and _answers(api + "/healthz")
        # both ports on loopback only; the daily schedule and the alert sensor are on in this mode
        assert listening_addresses(ui_port) == listening_addresses(api_port) == {"127.0.0.1"}
        (node,) = _graphql(ui, STATUS_QUERY)["data"]["repositoriesOrError"]["nodes"]
        assert {s["name"]: s["scheduleState"]["status"] for s in node["schedules"]} == {
            "daily_cost_job_schedule": "RUNNING"
        }
        assert {s["name"]: s["sensorState"]["status"] for s in node["sensors"]} == {"alert_sensor": "RUNNING"}
        assert "enabled: false" in (tmp_path / "home" / "dagster" / "dagster.yaml").read_text()
        tree = descendants(parent.pid)
        assert len(tree) >= 5  # webserver, daemon, API, and the two Dagster code servers
    finally:
        parent.send_signal(signal.SIGTERM)
        status = parent.wait(timeout=60)
    assert status == 0, parent.stdout.read()
    assert not [pid for pid in tree if alive(pid)]
    assert not listening_addresses(ui_port) and not listening_addresses(api_port)


@pytest.mark.parametrize("command", ["serve", "dev"])
def test_the_instance_storage_exists_with_one_schema_head_before_the_children_start(
    tmp_path, monkeypatch, request, command
):
    """`serve` and `dev` start a webserver and a daemon together; on a fresh home both would create Dagster's SQLite
    storage at once (a runs.db with two schema heads, which no Dagster process opens again). The parent creates it
    before any child starts."""
    import sqlite3

    import pipelines.serve.supervisor as supervisor
    from pipelines.cli.main import main

    home = tmp_path / "home"
    for key, value in cli_env(home=home).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    # the command sets variables of its own (DAGSTER_HOME, INFERCOST_WAREHOUSE, INFERCOST_SCHEDULE_RUNNING, ...)
    # straight into os.environ: put the environment back as it was, or they leak into the tests after this one
    before = dict(os.environ)
    request.addfinalizer(lambda: (os.environ.clear(), os.environ.update(before)))
    seen = {}

    def start(self):
        dbs = sorted((home / "dagster").rglob("*.db"))
        seen["heads"] = {
            db.name: sqlite3.connect(db).execute("SELECT count(*) FROM alembic_version").fetchone()[0] for db in dbs
        }
        raise SystemExit(0)  # no child is started

    monkeypatch.setattr(supervisor.Supervisor, "start", start)
    with pytest.raises(SystemExit):
        main([command])
    assert seen["heads"] == {"runs.db": 1, "index.db": 1, "schedules.db": 1}
