"""The spark engine against the duckdb engine on a real multi-process cluster (conftest's ``spark`` fixture):
the same rows loaded and quarantined, the same energy on every request, device and bucket, and a re-run day that
replaces itself instead of counting twice.

A small two-day fleet written here: a 4-way tensor-parallel replica and a 2-way one on two hosts (an H100 host
whose power.draw is a 1 s average, an A100 host whose reading is instantaneous), requests running over midnight,
a redelivered file repeating requests, bad lines, and a replica with no deployment."""

import gzip
import json
import shutil
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from pipelines.attribution.day import attribute_day
from pipelines.ingest.loader import ingest_feed, ingest_fleet_table
from pipelines.warehouse import lake
from pipelines.warehouse.connection import connect
from pipelines.warehouse.contracts import FLEET_TABLES
from tests.conftest import REPO, cli_env, run_cli

DAYS = [date(2026, 11, 1), date(2026, 11, 2)]
START = datetime(2026, 11, 1, 23, 30, tzinfo=UTC)
SECONDS = 3600  # 23:30 to 00:30, over midnight
REPLICAS = ["us-west-h100-large-000-r0", "eu-central-a100-002-r0"]
# the tables both engines write, compared row for row (run times left out)
COMPARED = {
    "raw_requests": "request_id, source_file, source_line",
    "raw_telemetry": "device_id, ts, source_file, source_line",
    "ingest_quarantine": "feed, source_file, source_line",
    "ingest_file_stats": "feed, partition_date, source_file",
    "request_energy_pieces": "partition_date, request_id, device_id, bucket_start",
    "device_energy_buckets": "partition_date, device_id, bucket_start",
    "unattributed_requests": "partition_date, request_id",
    "clock_skew_checks": "partition_date, host",
}


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _devices(replica: str) -> list[str]:
    lines = (REPO / "sample_logs" / "fleet" / "deployments.csv").read_text().splitlines()[1:]
    return [line.split(",")[1] for line in lines if line.startswith(replica + ",")]


def _requests(rng) -> list[str]:
    lines = []
    for replica in [*REPLICAS, "no-such-replica"]:
        for k in range(150 if replica != "no-such-replica" else 3):
            start = START + timedelta(seconds=float(rng.uniform(0, SECONDS - 200)))
            if k % 10 == 0:  # over midnight
                start = datetime(2026, 11, 2, tzinfo=UTC) - timedelta(seconds=float(rng.uniform(1, 60)))
            end = start + timedelta(seconds=float(rng.uniform(0.5, 120)))
            obj = {
                "id": f"{replica}-{k}",
                "model": "llama-3.1-8b-instruct",
                "started_at": _ts(start),
                "ended_at": _ts(end),
                "replica_id": replica,
                "host": replica.rsplit("-", 1)[0],
                "status": "ok",
                "usage": {"prompt_tokens": int(rng.integers(10, 2000)), "completion_tokens": int(rng.integers(1, 500))},
            }
            lines.append(json.dumps(obj))
    return lines


def _telemetry(host: str, devices: list[str], day: date) -> str:
    rows = ["timestamp, index, uuid, name, power.draw [W], utilization.gpu [%], memory.used [MiB]"]
    for s in range(0, SECONDS, 2):
        t = START + timedelta(seconds=s, milliseconds=7)
        if t.date() != day:
            continue
        for i, d in enumerate(devices):
            power = 80 + 300 * (1 + np.sin(s / 97 + i)) / 2
            rows.append(f"{t:%Y/%m/%d %H:%M:%S}.007, {i}, {d}, GPU, {power:.2f}, 50, 1000")
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def small_landing(tmp_path_factory):
    land = tmp_path_factory.mktemp("spark") / "landing"
    shutil.copytree(REPO / "sample_logs" / "fleet", land / "fleet")
    for sub in ("requests", "telemetry", "prices"):
        (land / sub).mkdir(parents=True)
    lines = _requests(np.random.default_rng(14))
    by_day = {d: [x for x in lines if json.loads(x)["started_at"].startswith(d.isoformat())] for d in DAYS}
    for d, day_lines in by_day.items():
        bad = [
            '{"id": "broken',
            json.dumps(
                {**json.loads(day_lines[0]), "id": "neg", "usage": {"prompt_tokens": -1, "completion_tokens": 3}}
            ),
        ]
        with gzip.open(land / "requests" / f"{d}.jsonl.gz", "wt") as f:
            f.write("\n".join(day_lines + bad) + "\n")
    # a redelivered file: its requests repeat ids already delivered, so they are quarantined naming the first
    (land / "requests" / f"{DAYS[1]}-redelivered.jsonl").write_text("\n".join(by_day[DAYS[1]][:5]) + "\n")
    for replica in REPLICAS:
        host = replica.rsplit("-", 1)[0]
        for d in DAYS:
            (land / "telemetry" / f"{host}_{d}.csv").write_text(_telemetry(host, _devices(replica), d))
    for region in ("us-west", "eu-central"):
        unit = "USD" if region == "us-west" else "EUR"
        hours = [f"{d} {h:02d}:00:00,{40 + h}" for d in DAYS for h in range(24)]
        (land / "prices" / f"{region}_2026-11.csv").write_text(
            f"Datetime,Price ({unit}/MWh)\n" + "\n".join(hours) + "\n"
        )
    return land


def _duckdb_engine(home, landing):
    con = connect(home / "warehouse.duckdb")
    for name in FLEET_TABLES:
        ingest_fleet_table(con, name, landing)
    for day in DAYS:
        for feed in ("prices", "requests", "telemetry"):
            ingest_feed(con, feed, landing, day)
    for day in DAYS:
        attribute_day(con, day)
    return con


def _spark_engine(spark, home, landing):
    from pipelines.spark.attribution import attribute_day_spark
    from pipelines.spark.ingest import ingest_feed_spark

    con = connect(home / "warehouse.duckdb")
    for name in FLEET_TABLES:
        ingest_fleet_table(con, name, landing)
    root = home / "lake"
    for day in DAYS:
        ingest_feed(con, "prices", landing, day)
        for feed in ("requests", "telemetry"):
            ingest_feed_spark(spark, con, feed, landing, day, root=root)
    for day in DAYS:
        attribute_day_spark(spark, con, day, root=root)
    return con


def _rows(con, name: str, order: str) -> list[tuple]:
    return con.execute(
        f"SELECT * EXCLUDE (loaded_at) FROM {name} ORDER BY {order}"
        if name.startswith(("raw_", "ingest_"))
        else f"SELECT * FROM {name} ORDER BY {order}"
    ).fetchall()


def assert_same_rows(a: list[tuple], b: list[tuple], name: str, rel: float = 1e-9) -> None:
    assert len(a) == len(b), f"{name}: {len(a)} rows on duckdb, {len(b)} on spark"
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb):
            if isinstance(x, float) and isinstance(y, float):
                assert y == pytest.approx(x, rel=rel, abs=1e-9), f"{name}: {ra} != {rb}"
            else:
                assert x == y, f"{name}: {ra} != {rb}"


@pytest.fixture(scope="module")
def both_engines(spark, small_landing, tmp_path_factory):
    duck = _duckdb_engine(tmp_path_factory.mktemp("duckdb"), small_landing)
    home = tmp_path_factory.mktemp("sparkhome")
    return duck, _spark_engine(spark, home, small_landing), home


@pytest.mark.slow
def test_both_engines_write_the_same_rows(both_engines):
    duck, spark_con, _ = both_engines
    for name, order in COMPARED.items():
        assert_same_rows(_rows(duck, name, order), _rows(spark_con, name, order), name)
    reasons = [r[0] for r in spark_con.execute("SELECT reason FROM ingest_quarantine").fetchall()]
    # the cases are there: bad lines, repeats named by where they first loaded, requests over midnight
    assert any("duplicate request_id" in r for r in reasons) and len(reasons) >= 9
    over_midnight = spark_con.execute(
        "SELECT count(DISTINCT request_id) FROM request_energy_pieces GROUP BY request_id HAVING count(DISTINCT partition_date) = 2"
    ).fetchall()
    assert len(over_midnight) > 10
    unplaced = spark_con.execute("SELECT count(*) FROM unattributed_requests").fetchall()[0][0]
    assert unplaced == 3


@pytest.mark.slow
def test_a_rerun_day_replaces_itself(spark, both_engines):
    from pipelines.spark.attribution import attribute_day_spark

    _, con, home = both_engines
    total = "SELECT count(*), sum(energy_j) FROM request_energy_pieces WHERE partition_date = ?"
    before = con.execute(total, [DAYS[1]]).fetchall()[0]
    result = attribute_day_spark(spark, con, DAYS[1], root=home / "lake")
    after = con.execute(total, [DAYS[1]]).fetchall()[0]
    assert after[0] == before[0] and after[1] == pytest.approx(before[1], rel=1e-12)
    assert result.attributed_energy_j == pytest.approx(before[1], rel=1e-9)
    assert lake.list_days("request_energy_pieces", home / "lake") == DAYS
    # nothing of a staging directory is left for a reader's glob
    assert not [p for p in (home / "lake" / "request_energy_pieces").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_infercost_ingest_follows_the_engine_setting(both_engines, small_landing, tmp_path):
    # the CLI's ingest alone, as `materialize` and the assets do: requests to the lake on Spark, the same rows
    duck, _, _ = both_engines
    home = tmp_path / "home"
    env = cli_env(home=home, landing=small_landing, INFERCOST_ENGINE="spark", INFERCOST_SPARK_MASTER="local[1]")
    done = run_cli(["ingest", "--from", DAYS[0], "--to", DAYS[-1], "--feed", "requests"], env=env, timeout=900)
    assert "engine: spark (local[1])" in done.stdout + done.stderr
    assert lake.list_days("raw_requests", home / "lake") == DAYS
    con = connect(home / "warehouse.duckdb", read_only=True)
    name = "raw_requests"
    assert_same_rows(_rows(duck, name, COMPARED[name]), _rows(con, name, COMPARED[name]), name)
    for name in ("ingest_quarantine", "ingest_file_stats"):
        query = f"SELECT * EXCLUDE (loaded_at) FROM {name} WHERE feed = 'requests' ORDER BY {COMPARED[name]}"
        assert_same_rows(duck.execute(query).fetchall(), con.execute(query).fetchall(), name)
    con.close()


@pytest.mark.slow
def test_an_undated_file_without_valid_rows_is_quarantined_once_on_spark(spark, tmp_path):
    # as on one machine (test_ingest_hostile): the first day that reads it keeps its lines, the next day skips them
    from pipelines.spark.ingest import ingest_feed_spark

    land = tmp_path / "landing"
    shutil.copytree(REPO / "sample_logs" / "fleet", land / "fleet")
    (land / "requests").mkdir()
    (land / "requests" / "notes.jsonl").write_text("\n".join("{broken" for _ in range(20)) + "\n")
    con = connect(tmp_path / "warehouse.duckdb")
    for name in FLEET_TABLES:
        ingest_fleet_table(con, name, land)
    for day in DAYS:
        ingest_feed_spark(spark, con, "requests", land, day, root=tmp_path / "lake")
    rows = con.execute("SELECT partition_date, count(*) FROM ingest_quarantine GROUP BY ALL").fetchall()
    assert rows == [(DAYS[0], 20)]
    con.close()


def _requests_on_both_engines(spark, tmp_path):
    """A landing with the sample fleet and an empty requests folder, a warehouse per engine, and
    ``run(engine, day)``: that engine's ingest of the day's requests."""
    from pipelines.spark.ingest import ingest_feed_spark

    land = tmp_path / "landing"
    shutil.copytree(REPO / "sample_logs" / "fleet", land / "fleet")
    (land / "requests").mkdir()
    cons = {}
    for engine in ("duckdb", "spark"):
        cons[engine] = connect(tmp_path / f"{engine}.duckdb")
        for name in FLEET_TABLES:
            ingest_fleet_table(cons[engine], name, land)

    def run(engine, day):
        if engine == "duckdb":
            return ingest_feed(cons[engine], "requests", land, day)
        return ingest_feed_spark(spark, cons[engine], "requests", land, day, root=tmp_path / "lake")

    return land, cons, run


def named(report):
    """The late rows a report names: (file, rows by day, days never run)."""
    return [(o.source_file, o.rows_by_day, o.never_run) for o in report.other_days]


@pytest.mark.slow
def test_late_rows_are_named_on_spark_as_on_one_machine(spark, tmp_path):
    """Rows of 11-02 delivered in a file of 11-03 after 11-02's run: both engines load 11-03's rows and name the
    5 rows of 11-02 the warehouse does not hold (pipelines/ingest/other_days.py); a redelivered copy of rows 11-02's
    run loaded is not named (the spark engine looks them up in the lake)."""
    from tests.test_ingest_other_days import requests_of, write

    nov2, nov3 = date(2026, 11, 2), date(2026, 11, 3)
    land, cons, run = _requests_on_both_engines(spark, tmp_path)
    write(land, "api_2026-11-02.jsonl", requests_of(nov2, range(20)))
    for engine in cons:
        assert named(run(engine, nov2)) == []
    late = land / "requests" / "2026-11-03-delivery.jsonl"
    write(land, late.name, requests_of(nov2, [*range(5, 10), *range(100, 105)]) + requests_of(nov3, range(200, 210)))
    reports = {engine: run(engine, nov3) for engine in cons}
    assert named(reports["spark"]) == named(reports["duckdb"]) == [(str(late), {nov2: 5}, set())]
    assert reports["spark"].rows_loaded == reports["duckdb"].rows_loaded == 10
    for con in cons.values():
        con.close()


@pytest.mark.slow
def test_a_remembered_file_is_not_opened_on_spark_and_a_swap_in_it_is_named(spark, tmp_path):
    """The file memory on both engines (pipelines/ingest/file_days.py): 11-03's run does not open 11-02's file,
    remembered holding only rows that 11-02's run read. Once 5 of its rows are replaced by 5 others (the same
    count), the file is opened again and the 5 rows are named, on both engines alike."""
    from tests.test_ingest_other_days import requests_of, write

    nov2, nov3 = date(2026, 11, 2), date(2026, 11, 3)
    land, cons, run = _requests_on_both_engines(spark, tmp_path)
    nov2_file = land / "requests" / "api_2026-11-02.jsonl"
    write(land, nov2_file.name, requests_of(nov2, range(20)))
    write(land, "api_2026-11-03.jsonl", requests_of(nov3, range(100, 110)))
    for engine in cons:
        assert run(engine, nov2).files_not_opened == []
    reports = {engine: run(engine, nov3) for engine in cons}
    assert reports["spark"].files_not_opened == reports["duckdb"].files_not_opened == [str(nov2_file)]
    assert reports["spark"].rows_loaded == reports["duckdb"].rows_loaded == 10
    write(land, nov2_file.name, requests_of(nov2, [*range(5, 20), *range(300, 305)]))  # 5 rows swapped
    reports = {engine: run(engine, nov3) for engine in cons}
    assert reports["spark"].files_not_opened == reports["duckdb"].files_not_opened == []
    assert named(reports["spark"]) == named(reports["duckdb"]) == [(str(nov2_file), {nov2: 5}, set())]
    # the loader does not take the spark engine's memory for its own (a spark task counts no keys shared by files)
    spark_memory = cons["spark"].execute("SELECT DISTINCT reader FROM ingest_file_days").fetchall()
    duckdb_memory = cons["duckdb"].execute("SELECT DISTINCT reader FROM ingest_file_days").fetchall()
    assert spark_memory != duckdb_memory and '"spark"' in spark_memory[0][0]
    for con in cons.values():
        con.close()


@pytest.mark.slow
def test_a_swap_whose_lookup_failed_is_named_by_the_next_spark_run(spark, tmp_path, monkeypatch):
    """The spark driver keeps a changed file's new fingerprint only once its rows of other days are named: a run
    that fails in that lookup (after writing its day) leaves the old memory, so the next run opens the file again and
    names the 5 swapped rows (kept first, the next run would skip the file as unchanged and name nothing)."""
    from pipelines.spark import ingest as spark_ingest
    from tests.test_ingest_other_days import requests_of, write

    nov2, nov3 = date(2026, 11, 2), date(2026, 11, 3)
    land, cons, run = _requests_on_both_engines(spark, tmp_path)
    nov2_file = land / "requests" / "api_2026-11-02.jsonl"
    write(land, nov2_file.name, requests_of(nov2, range(20)))
    write(land, "api_2026-11-03.jsonl", requests_of(nov3, range(100, 110)))
    run("spark", nov2)
    assert run("spark", nov3).files_not_opened == [str(nov2_file)]
    write(land, nov2_file.name, requests_of(nov2, [*range(5, 20), *range(300, 305)]))  # 5 rows swapped

    def lookup_fails(*args, **kwargs):
        raise RuntimeError("the lake could not be read")

    with monkeypatch.context() as patched:
        patched.setattr(spark_ingest, "_other_days", lookup_fails)
        with pytest.raises(RuntimeError, match="lake could not be read"):
            run("spark", nov3)
    report = run("spark", nov3)
    assert report.files_not_opened == []
    assert named(report) == [(str(nov2_file), {nov2: 5}, set())]
    for con in cons.values():
        con.close()
