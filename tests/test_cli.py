"""Every infercost command answers --help, and bad arguments fail with a clear message."""

import subprocess
import sys

import pytest

from tests.conftest import REPO

COMMANDS = ["demo", "generate", "ingest", "materialize", "sql", "compare", "whatif", "report", "export", "docs", "validate-energy", "alerts",
            "bench", "dev"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command):
    run = subprocess.run([sys.executable, "-m", "pipelines.cli", command, "--help"], cwd=REPO, capture_output=True,
                         text=True)
    assert run.returncode == 0 and run.stdout.startswith(f"usage: infercost {command}")


def test_bad_dates_are_refused_clearly():
    run = subprocess.run([sys.executable, "-m", "pipelines.cli", "materialize", "--partition", "2026-13-01"],
                         cwd=REPO, capture_output=True, text=True)
    assert run.returncode != 0 and "not a date" in run.stderr
    run = subprocess.run([sys.executable, "-m", "pipelines.cli", "materialize"], cwd=REPO, capture_output=True,
                         text=True)
    assert run.returncode != 0 and "--partition" in run.stderr
