"""LiteLLM cache hits on the sample fleet: answered from the gateway's cache, no GPU served them, so the kernel never
sees them; fct_request_cost gives them 0 J and no device cost with a caveat, the rollups count them apart, and the
requests a GPU served still share all of the device's metered energy."""

import gzip
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta

import duckdb
import pytest

from tests.conftest import REPO, sample_landing, sample_telemetry_hour

DAY = "2026-11-02"
REPLICA = "us-west-h100-small-001-r0"
DEVICE = "GPU-7f6c8da4-4135-41b5-a575-f21de76186b1"  # the replica's one GPU
SERVED = 30  # the replica's first requests of the sample day, as LiteLLM spend-log rows


def _spend_log_rows() -> tuple[list[dict], list[str]]:
    """The replica's first SERVED sample requests as LiteLLM rows, plus two cache hits: one during a request the
    GPU served (it would take part of that request's energy), one in the GPU's idle time after it."""
    rows = []
    with gzip.open(REPO / "sample_logs" / "requests" / f"{DAY}.jsonl.gz", "rt") as f:
        for line in f:
            r = json.loads(line)
            if r.get("replica_id") != REPLICA:
                continue
            rows.append(
                {
                    "request_id": r["id"],
                    "startTime": r["started_at"],
                    "endTime": r["ended_at"],
                    "completionStartTime": r["first_token_at"],
                    "model_group": r["model"],
                    "api_base": REPLICA,
                    "prompt_tokens": r["usage"]["prompt_tokens"],
                    "completion_tokens": r["usage"]["completion_tokens"],
                    "team_id": "team-a",
                    "cache_hit": False,
                    "status": "success",
                }
            )
            if len(rows) == SERVED:
                break
    hits = []
    for i, anchor in enumerate((rows[1]["startTime"], rows[-1]["endTime"])):
        t = datetime.fromisoformat(anchor) + timedelta(seconds=0.5)
        hits.append(f"cache-hit-{i}")
        rows.append(
            {
                "request_id": hits[-1],
                "startTime": t.isoformat(),
                "endTime": (t + timedelta(seconds=2)).isoformat(),
                "model_group": rows[0]["model_group"],
                "api_base": REPLICA,
                "prompt_tokens": 900,
                "completion_tokens": 300,
                "team_id": "team-a",
                "cache_hit": True,
                "status": "success",
            }
        )
    return rows, hits


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache_hits")
    landing = sample_landing(root, linked=("prices", "carbon"))
    config = root / "config"  # the reader is configuration, kept out of the landing folder
    config.mkdir()
    (config / "formats.yaml").write_text("requests: {format: litellm}\n")
    rows, hits = _spend_log_rows()
    (landing / "requests" / "spend.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # the host's telemetry for the first hour of the day (what the requests need, and quick)
    sample_telemetry_hour(landing, "us-west-h100-small-001", DAY)
    env = {
        **os.environ,
        "INFERCOST_HOME": str(root / "home"),
        "INFERCOST_LANDING": str(landing),
        "INFERCOST_CONFIG_DIR": str(config),
    }
    env.pop("INFERCOST_WAREHOUSE", None)
    env.pop("DAGSTER_HOME", None)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "materialize", "--partition", DAY],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    con = duckdb.connect(str(root / "home" / "warehouse.duckdb"), read_only=True)
    yield con, hits
    con.close()


def test_cache_hits_load_and_cost_nothing(run):
    con, hits = run
    got = con.execute(
        "SELECT request_id, energy_j, facility_energy_j, device_share_s, energy_cost_usd, "
        "capex_cost_usd, overhead_cost_usd, fully_loaded_cost_usd, cost_caveat, served_from_cache "
        "FROM fct_request_cost WHERE status = 'cache_hit' ORDER BY request_id"
    ).fetchall()
    assert [r[0] for r in got] == hits
    for r in got:
        assert r[1:8] == (0, 0, 0, 0, 0, 0, 0), r
        assert r[8].startswith("served from cache") and r[9] is True
    # the kernel never saw them
    assert con.execute("SELECT count(*) FROM request_energy_pieces WHERE request_id LIKE 'cache-hit-%'").fetchall() == [
        (0,)
    ]
    assert con.execute("SELECT count(*) FROM unattributed_requests").fetchall() == [(0,)]


def test_served_requests_still_share_all_of_the_metered_energy(run):
    con, _ = run
    served, n, n_flagged = con.execute(
        "SELECT sum(energy_j), count(*) FILTER (WHERE energy_j > 0), count(*) FILTER (WHERE served_from_cache) "
        "FROM fct_request_cost"
    ).fetchall()[0]
    metered, idle = con.execute(
        "SELECT sum(metered_energy_j), sum(idle_energy_j) FROM device_energy_buckets WHERE device_id = ?", [DEVICE]
    ).fetchall()[0]
    assert n == SERVED and n_flagged == 2
    assert served > 0 and served == pytest.approx(metered - idle, rel=1e-9)


def test_the_rollups_count_them_apart(run):
    con, _ = run
    for rollup in ("agg_daily_model_cost", "agg_daily_technique_cost", "agg_daily_device_type_cost"):
        cached, requests = con.execute(f"SELECT sum(requests_from_cache), sum(requests) FROM {rollup}").fetchall()[0]
        assert (cached, requests) == (2, SERVED + 2), rollup
    (excluded,) = con.execute("SELECT sum(requests_excluded) FROM technique_savings").fetchall()[0]
    assert excluded == 2
