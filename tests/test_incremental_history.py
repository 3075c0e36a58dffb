"""Daily runs touch their day: an incremental history of daily runs, a re-run and late data for a past day end
with the same marts as one from-scratch build of the same days; the re-run leaves the other days' rows in place."""

import gzip
import json
import math
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.devtools.marts_digest import RUN_TIME_COLUMNS
from pipelines.warehouse import lake

from .conftest import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FIRST = date(2026, 11, 2)
DAYS = [FIRST, FIRST + timedelta(days=1)]
MARTS = [
    "fct_request_cost",
    "agg_daily_model_cost",
    "agg_daily_technique_cost",
    "agg_daily_device_type_cost",
    "agg_idle_cost",
    "agg_telemetry_coverage",
    "agg_region_bucket_cost",
    "fct_electricity_prices",
    "technique_savings",
    "technique_comparison",
    "cost_anomalies",
    "int_request_idle_allocation",
]


def _late_requests(landing: Path, day: date, n: int = 200) -> int:
    """A file of n more requests of ``day`` (copies of the day's requests that end before 22:00, new ids)."""
    late = []
    with gzip.open(next((landing / "requests").glob(f"{day}*")), "rt") as f:
        for line in f:
            r = json.loads(line)
            if r["started_at"].startswith(str(day)) and r["ended_at"] < f"{day}T22:00":
                r["id"] = "late-" + r["id"]
                late.append(json.dumps(r))
            if len(late) == n:
                break
    (landing / "requests" / f"{day}-late.jsonl").write_text("\n".join(late) + "\n")
    return len(late)


def _rows(published: Path, table: str, where: str) -> list:
    con = duckdb.connect(str(published), read_only=True)
    try:
        return con.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY ALL").fetchall()
    finally:
        con.close()


def _marts(published: Path) -> dict:
    """Every mart's rows in a fixed order (floats rounded for the ordering only), run-time columns left out."""
    con = duckdb.connect(str(published), read_only=True)
    try:
        out = {}
        for t in MARTS:
            cols = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                "ORDER BY ordinal_position",
                [t],
            ).fetchall()
            kept = [f'"{c}"' for c, _ in cols if c not in RUN_TIME_COLUMNS]
            order = [f'round("{c}", 6)' if ty == "DOUBLE" else f'"{c}"' for c, ty in cols if c not in RUN_TIME_COLUMNS]
            out[t] = con.execute(f"SELECT {', '.join(kept)} FROM {t} ORDER BY {', '.join(order)}").fetchall()
        return out
    finally:
        con.close()


def _same(a: list, b: list) -> bool:
    """Equal rows, floats within 1e-12 relative (the order of a parallel sum moves the last digits)."""
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb):
            if isinstance(x, float) and isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-15):
                    return False
            elif x != y:
                return False
    return True


def test_incremental_history_equals_a_rebuild(tmp_path):
    landing = tmp_path / "landing"
    run_cli(["generate", "--devices", 8, "--days", len(DAYS), "--start", FIRST, "--out", landing], timeout=900)
    daily = tmp_path / "daily"
    # day by day: the second run rebuilds the first day's requests that ran past midnight with it
    for day in DAYS:
        run_cli(["materialize", "--partition", day], home=daily, landing=landing, timeout=1800)
    published = daily / "published" / "warehouse.duckdb"
    # the newest two days of raw telemetry stay in the warehouse (test_archive.py moves older ones)
    assert lake.list_days("raw_telemetry", daily / "lake") == []

    # late requests for the first day, then a re-run of that day alone
    late_day = DAYS[0]
    assert _late_requests(landing, late_day) == 200
    other_day = {
        "fct_request_cost": f"request_date = DATE '{DAYS[1]}'",
        "agg_daily_model_cost": f"request_date = DATE '{DAYS[1]}'",
        "agg_idle_cost": f"partition_date = DATE '{DAYS[1]}'",
        "agg_region_bucket_cost": f"partition_date = DATE '{DAYS[1]}'",
    }
    before = {t: _rows(published, t, where) for t, where in other_day.items()}
    late_before = _rows(published, "agg_daily_model_cost", f"request_date = DATE '{late_day}'")
    run_cli(["materialize", "--partition", late_day], home=daily, landing=landing, timeout=1800)
    # the other day's rows are as they were (row ids are no witness: a checkpoint compacts them); the late day's
    # rollups changed
    assert {t: _rows(published, t, where) for t, where in other_day.items()} == before
    assert _rows(published, "agg_daily_model_cost", f"request_date = DATE '{late_day}'") != late_before
    con = duckdb.connect(str(published), read_only=True)
    late_loaded = con.execute("SELECT count(*) FROM fct_request_cost WHERE request_id LIKE 'late-%'").fetchall()
    con.close()
    assert late_loaded == [(200,)]

    # the same days built from scratch in one run, over the same landing files
    rebuilt = tmp_path / "rebuilt"
    run_cli(["materialize", "--from", DAYS[0], "--to", DAYS[-1]], home=rebuilt, landing=landing, timeout=1800)
    incremental, scratch = _marts(published), _marts(rebuilt / "published" / "warehouse.duckdb")
    assert all(len(rows) > 0 for t, rows in scratch.items() if t != "cost_anomalies")
    differing = [t for t in MARTS if not _same(incremental[t], scratch[t])]
    assert not differing, differing
    shutil.rmtree(tmp_path / "rebuilt")
