"""`infercost materialize` and `report` on a tiny generated fleet dated 2023 (before INFERCOST_START_DATE's
default): the partitions follow the data, a run whose inputs are unusable is one line that touches no table, and
every section of the report honours its period."""

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO

DAYS = ["2023-03-01", "2023-03-02"]


def _cli(args, env, check=False):
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, check=check
    )


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFERCOST_", "DAGSTER_"))}
    env.update(INFERCOST_HOME=str(home), GX_ANALYTICS_ENABLED="false")
    return env


def _one_line_error(run) -> str:
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("infercost: "), run.stderr
    return lines[0]


@pytest.fixture(scope="module")
def fleet_2023(tmp_path_factory):
    root = tmp_path_factory.mktemp("fleet2023")
    landing, home = root / "landing", root / "home"
    env = _env(home)
    _cli(
        ["generate", "--devices", "8", "--days", "2", "--start", DAYS[0], "--load", "0.05", "--out", str(landing)],
        env,
        check=True,
    )
    run = _cli(["materialize", "--landing", str(landing), "--from", DAYS[0], "--to", DAYS[1]], env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"partitions start at {DAYS[0]}" in run.stdout
    return landing, home, env


def test_materialize_before_the_default_start_date(fleet_2023):
    _, home, _ = fleet_2023
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        days = [
            str(d)
            for (d,) in con.execute("SELECT DISTINCT request_date FROM agg_daily_model_cost ORDER BY 1").fetchall()
        ]
        requests = con.execute("SELECT count(*) FROM raw_requests").fetchall()[0][0]
    assert days == DAYS and requests > 0


def _table_counts(home: Path) -> dict:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("raw_requests", "raw_telemetry", "raw_inventory", "fct_request_cost")
        }


def _bad_landing(tmp_path, landing: Path, case: str) -> Path:
    bad = tmp_path / "bad"
    subprocess.run(["cp", "-r", str(landing), str(bad)], check=True)
    if case == "formats":  # the config directory's formats.yaml names a reader that does not exist
        (tmp_path / "config").mkdir()
        (tmp_path / "config" / "formats.yaml").write_text("requests: {format: no_such_reader}\n")
    elif case == "fleet":
        (bad / "fleet" / "inventory.csv").unlink()
    return bad


@pytest.mark.parametrize(
    "case,days,expected",
    [
        (
            "nodata",
            ["--partition", "2023-06-01"],
            r"no request logs for 2023-06-01 \.\. 2023-06-01 in .*/requests; it has data for 2023-03-01, 2023-03-02",
        ),
        (
            "formats",
            ["--partition", DAYS[0]],
            r"unknown format 'no_such_reader' for requests.*\(fix .*/config/formats\.yaml",
        ),
        ("fleet", ["--partition", DAYS[0]], r".*/fleet/inventory\.csv: fleet file for inventory is missing"),
        ("missing", ["--partition", DAYS[0]], r"no landing directory at .*/nowhere \(give --landing DIR"),
        ("future", ["--partition", "2999-01-01"], r"2999-01-01 is not a complete UTC day yet"),
    ],
)
def test_unusable_inputs_are_one_line_and_touch_nothing(fleet_2023, tmp_path, case, days, expected):
    landing, home, env = fleet_2023
    target = tmp_path / "nowhere" if case == "missing" else _bad_landing(tmp_path, landing, case)
    before = _table_counts(home)
    mtime = (home / "warehouse.duckdb").stat().st_mtime_ns
    env = {**env, "INFERCOST_CONFIG_DIR": str(tmp_path / "config")}
    line = _one_line_error(_cli(["materialize", "--landing", str(target), *days], env))
    assert re.search(expected, line), line
    assert (home / "warehouse.duckdb").stat().st_mtime_ns == mtime
    assert _table_counts(home) == before


def test_report_of_a_period_without_data_is_refused(fleet_2023, tmp_path):
    _, _, env = fleet_2023
    out = tmp_path / "r.html"
    line = _one_line_error(_cli(["report", "--from", "2024-01-01", "--to", "2024-01-31", "--out", str(out)], env))
    assert "no requests from 2024-01-01 to 2024-01-31; data exists for 2023-03-01, 2023-03-02" in line
    assert not out.exists()


def _comparison_requests(html: str) -> dict:
    import json

    data = json.loads(
        re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.DOTALL)
        .group(1)
        .replace("<\\/", "</")
    )
    # the period's requests of each technique: those compared and those left out (cost incomplete)
    return data, {(r["model"], r["technique"]): r["requests"] + r["requests_excluded"] for r in data["comparison"]}


def test_every_report_section_honours_its_period(fleet_2023, tmp_path):
    _, home, env = fleet_2023
    with duckdb.connect(str(home / "published" / "warehouse.duckdb"), read_only=True) as con:
        expected = {
            (m, t, str(d)): n
            for m, t, d, n in con.execute(
                "SELECT model, technique, request_date, requests FROM agg_daily_technique_cost "
                "WHERE technique <> 'baseline'"
            ).fetchall()
        }
    assert expected, "the generated fleet has no technique to compare"
    for start, end in [(DAYS[0], DAYS[0]), (DAYS[1], DAYS[1]), (DAYS[0], DAYS[1])]:
        out = tmp_path / f"{start}_{end}.html"
        run = _cli(["report", "--from", start, "--to", end, "--out", str(out)], env)
        assert run.returncode == 0, run.stderr
        data, got = _comparison_requests(out.read_text())
        want = {}
        for (m, t, d), n in expected.items():
            if start <= d <= end:
                want[(m, t)] = want.get((m, t), 0) + n
        assert got == want
        assert {r["day"] for r in data["cost_by_model_day"]} <= {d for d in DAYS if start <= d <= end}
        assert f"Over {start} .. {end}" in out.read_text()
