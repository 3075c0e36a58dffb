"""Every infercost command answers --help, and bad arguments fail with a clear message."""

import os
import signal
import subprocess
import sys
import time

import pytest

from pipelines.cli.helpers import UserError
from pipelines.cli.main import main
from pipelines.cli.runlock import LOCK_NAME, run_lock
from tests.conftest import REPO, cli_env, run_cli

COMMANDS = [
    "demo",
    "generate",
    "ingest",
    "materialize",
    "sql",
    "compare",
    "whatif",
    "report",
    "export",
    "docs",
    "validate-energy",
    "alerts",
    "bench",
    "dev",
    "serve",
    "api",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command, capsys):
    from pipelines.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith(f"usage: infercost {command}")


def test_the_module_entry_point_answers_help():
    assert run_cli(["--help"]).stdout.startswith("usage: infercost")


def test_bad_dates_are_refused_clearly():
    run = run_cli(["materialize", "--partition", "2026-13-01"], ok=False)
    assert run.returncode != 0 and "not a date" in run.stderr
    run = run_cli(["materialize"], ok=False)
    assert run.returncode != 0 and "--partition" in run.stderr


def _no_home(tmp_path, monkeypatch):
    monkeypatch.setenv("INFERCOST_HOME", str(tmp_path / "home"))
    for name in ("INFERCOST_WAREHOUSE", "INFERCOST_PUBLISHED", "INFERCOST_IDLE_SHARING_POLICY"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["sql", "SELECT 1"], "no published warehouse at {home}/published/warehouse.duckdb: run `infercost demo`"),
        (["sql", "--live", "SELECT 1"], "no warehouse at {home}/warehouse.duckdb: run `infercost demo`"),
        (["compare"], "no published warehouse at {home}/published/warehouse.duckdb"),
        (["alerts", "list"], "no published warehouse at {home}/published/warehouse.duckdb"),
        (
            ["report", "--from", "2026-11-02", "--to", "2026-11-0x", "--out", "r.html"],
            "not a date (YYYY-MM-DD): '2026-11-0x'",
        ),
        (["materialize", "--from", "2026-11-03", "--to", "2026-11-02"], "--to 2026-11-02 is before --from 2026-11-03"),
        (
            ["ingest", "--partition", "2026-11-02", "--feed", "requests", "--option", "model"],
            "--option takes KEY=VALUE",
        ),
        (["validate-energy", "--ground-truth", "nope.csv"], "no ground-truth file at nope.csv"),
    ],
)
def test_user_errors_are_one_line_without_a_traceback(argv, expected, tmp_path, monkeypatch, capsys):
    _no_home(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 1
    assert err.startswith("infercost: " + expected.format(home=tmp_path / "home")), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path, monkeypatch, capsys):
    _no_home(tmp_path, monkeypatch)
    for argv in (["--debug", "sql", "SELECT 1"], ["sql", "--debug", "SELECT 1"]):
        with pytest.raises(UserError, match="no published warehouse"):
            main(argv)
    run = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "--debug", "compare"],
        cwd=tmp_path,
        env={**os.environ, "INFERCOST_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1 and "Traceback (most recent call last)" in run.stderr and "UserError" in run.stderr


def test_a_bad_setting_and_an_unexpected_error_name_their_cause(tmp_path, monkeypatch, capsys):
    _no_home(tmp_path, monkeypatch)
    monkeypatch.setenv("INFERCOST_IDLE_SHARING_POLICY", "sometimes")
    with pytest.raises(SystemExit):
        main(["compare"])
    assert capsys.readouterr().err == (
        "infercost: INFERCOST_IDLE_SHARING_POLICY='sometimes': use one of none, proportional, even\n"
    )
    monkeypatch.delenv("INFERCOST_IDLE_SHARING_POLICY")
    published = tmp_path / "home" / "published" / "warehouse.duckdb"
    published.parent.mkdir(parents=True)
    published.write_text("not a database")
    with pytest.raises(SystemExit) as exit_:
        main(["compare"])
    err = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 1 and len(err) == 2
    assert err[0].startswith("infercost: IOException: ") and str(published) in err[0]
    assert err[1] == "  (run `infercost --debug ...` for the traceback)"


@pytest.mark.parametrize(
    "setting, expected",
    [
        ("INFERCOST_RAW_TELEMETRY_RETENTION_DAYS=1", "INFERCOST_RAW_TELEMETRY_RETENTION_DAYS='1': use a whole number"),
        ("INFERCOST_ENGINE=foo", "INFERCOST_ENGINE='foo': use one of duckdb, spark"),
    ],
)
def test_a_bad_setting_read_when_the_commands_load_is_one_line(tmp_path, setting, expected):
    """Settings read while the command modules are imported (the schemas' folder): still one line, in a fresh
    process (where the modules are not imported yet), and the traceback with --debug."""
    name, value = setting.split("=")
    env = {**cli_env(home=tmp_path / "home"), name: value}
    run = run_cli(["sql", "select 1"], env=env, ok=False)
    assert run.returncode == 1 and run.stderr.splitlines() == [run.stderr.strip()], run.stderr
    assert run.stderr.startswith("infercost: " + expected)
    debug = run_cli(["--debug", "sql", "select 1"], env=env, ok=False)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr


def test_a_second_run_on_one_home_is_refused_and_a_killed_run_blocks_nothing(tmp_path):
    home = tmp_path / "home"
    env = cli_env(home=home, landing=REPO / "sample_logs", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "pipelines.cli", "materialize", "--partition", "2026-11-02"]
    first = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        lock = home / LOCK_NAME
        deadline = time.time() + 60
        while not (lock.exists() and f"PID {first.pid}" in lock.read_text()):
            assert time.time() < deadline and first.poll() is None, "the first run never took the lock"
            time.sleep(0.1)
        t0 = time.time()
        for second in (cmd, [*cmd[:3], "ingest", "--partition", "2026-11-02"]):
            run = subprocess.run(second, cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=60)
            assert run.returncode == 1 and "Traceback" not in run.stderr
            assert run.stderr.startswith(
                f"infercost: another run is writing to {home}: PID {first.pid} "
                "(infercost materialize 2026-11-02..2026-11-02"
            ), run.stderr
        assert time.time() - t0 < 20  # refused at once, not after waiting for the first
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the run and any dbt it started
        first.wait()
    with run_lock(home, "test"):  # the kernel dropped the killed run's lock
        assert f"PID {os.getpid()} (infercost test" in (home / LOCK_NAME).read_text()
