"""Loaded data is never lost by a bad run (issue #11): a reader of another feed is refused before anything is read;
a run that would replace a loaded day with no rows, or with mostly quarantine, is refused and the day stays byte for
byte as it was (unless --replace-anyway / replace_anyway); --dry-run writes nothing; formats.yaml may give each file
pattern its own reader; rows a mapping skips on purpose are counted apart from rejected ones. Each through the core
function, the CLI and (the replace guard) the Dagster ingest asset."""

import hashlib
import os
from datetime import date

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from pipelines.ingest.loader import ingest_feed, ingest_files
from pipelines.ingest.report import IngestError, IngestRefused
from tests.conftest import assert_row_identity, cli_env, run_cli
from tests.test_ingest import good_request

DAY = date(2026, 11, 2)
TABLES = ("raw_requests", "ingest_file_stats", "ingest_quarantine")


def snapshot(con_or_path) -> dict:
    """Every row (every column, loaded_at included) of the tables a requests run writes, in a fixed order (the
    requests feed's: the CLI reloads the fleet files before the feeds)."""
    con = duckdb.connect(str(con_or_path)) if not hasattr(con_or_path, "execute") else con_or_path
    try:
        return {
            t: con.execute(
                f"SELECT * FROM {t} {'' if t == 'raw_requests' else 'WHERE feed = $$requests$$'} ORDER BY ALL"
            ).fetchall()
            for t in TABLES
        }
    finally:
        if con is not con_or_path:
            con.close()


def write_requests(landing, n_good=20, n_bad=0, name="api_2026-11-02.jsonl"):
    lines = [good_request(i) for i in range(n_good)] + ["{not json"] * n_bad
    (landing / "requests" / name).write_text("\n".join(lines) + "\n")


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(home, *args):
    """`infercost ingest <args>` with its own home (and the test's config directory, when it has one)."""
    config = (
        {"INFERCOST_CONFIG_DIR": os.environ["INFERCOST_CONFIG_DIR"]} if "INFERCOST_CONFIG_DIR" in os.environ else {}
    )
    return run_cli(["ingest", *args], env=cli_env(home=home, **config), ok=False)


# -- a reader of another feed ---------------------------------------------------------------------------------


def test_a_reader_of_another_feed_is_refused_before_anything_is_touched(con, landing):
    write_requests(landing)
    ingest_feed(con, "requests", landing, DAY)
    before = snapshot(con)
    with pytest.raises(IngestError) as err:
        ingest_feed(con, "requests", landing, DAY, fmt="prometheus_range_json")
    assert not isinstance(err.value, IngestRefused)  # refused for the reader, before any file is read
    message = str(err.value)
    assert "format prometheus_range_json reads the telemetry feed, not requests" in message
    assert "readers of requests: azure_trace_csv, litellm, mooncake_jsonl, openai_jsonl, otel_genai_json" in message
    assert "\n" not in message
    assert snapshot(con) == before and len(before["raw_requests"]) == 20
    # a shipped mapping reads the feed its mapping file names
    with pytest.raises(IngestError, match="format energy_counter_csv reads the telemetry feed, not requests"):
        ingest_files(con, "requests", [landing / "requests" / "api_2026-11-02.jsonl"], DAY, fmt="energy_counter_csv")


def test_cli_refuses_a_reader_of_another_feed_in_one_line(landing, tmp_path):
    write_requests(landing)
    home = tmp_path / "home"
    args = ["--landing", str(landing), "--partition", "2026-11-02", "--feed", "requests"]
    assert cli(home, *args).returncode == 0
    digest = sha256(home / "warehouse.duckdb")
    run = cli(home, *args, "--format", "prometheus_range_json")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        (
            "infercost: format prometheus_range_json reads the telemetry feed, not requests: nothing was read or "
            "changed; readers of requests: azure_trace_csv, litellm, mooncake_jsonl, openai_jsonl, otel_genai_json "
            "(or mapped, with a mapping file of requests)"
        )
    ]
    assert sha256(home / "warehouse.duckdb") == digest  # not even the fleet files were reloaded


# -- a run that would replace a loaded day with nothing, or with mostly quarantine ------------------------------


def test_a_run_that_reads_no_file_leaves_the_loaded_day_as_it_was(con, landing):
    write_requests(landing)
    ingest_feed(con, "requests", landing, DAY)
    before = snapshot(con)
    (landing / "requests" / "api_2026-11-02.jsonl").rename(landing / "api_2026-11-02.jsonl")  # gone from landing
    with pytest.raises(IngestRefused) as err:
        ingest_feed(con, "requests", landing, DAY)
    message = str(err.value)
    assert message.startswith(
        "requests 2026-11-02 (openai_jsonl): refused to replace the loaded day (20 rows): "
        "it would load 0 rows (0 files, 0 rows of the day read). Files: no file."
    )
    assert "--replace-anyway" in message and "replace_anyway: true" in message
    assert snapshot(con) == before
    # forced: the day is replaced by what the run read (nothing)
    report = ingest_feed(con, "requests", landing, DAY, replace_anyway=True)
    assert report.written and report.rows_read == 0
    assert con.execute("SELECT count(*) FROM raw_requests").fetchall() == [(0,)]


def test_a_reader_that_quarantines_every_row_does_not_replace_the_good_ones(con, landing):
    write_requests(landing, n_good=20, n_bad=1)
    ingest_feed(con, "requests", landing, DAY)
    before = snapshot(con)
    with pytest.raises(IngestRefused) as err:  # the OpenAI-style log read as LiteLLM spend logs
        ingest_feed(con, "requests", landing, DAY, fmt="litellm")
    assert "(litellm): refused to replace the loaded day (20 rows): it would load 0 rows" in str(err.value)
    assert "api_2026-11-02.jsonl (21 read, 0 loaded, 21 quarantined)" in str(err.value)
    assert snapshot(con) == before


def test_mostly_quarantine_is_refused_where_the_loaded_day_had_far_fewer(con, landing):
    write_requests(landing, n_good=20, n_bad=1)
    ingest_feed(con, "requests", landing, DAY)
    before = snapshot(con)
    write_requests(landing, n_good=5, n_bad=20)  # the same file redelivered, mostly broken
    with pytest.raises(IngestRefused) as err:
        ingest_feed(con, "requests", landing, DAY)
    assert "it would quarantine 20 of 25 rows (80%, over 50%) where the loaded day quarantined 4.8%" in str(err.value)
    assert snapshot(con) == before
    # a day whose loaded run was as bad is not protected from an equally bad one (nothing better to keep)
    ingest_feed(con, "requests", landing, DAY, replace_anyway=True)
    write_requests(landing, n_good=4, n_bad=20)
    report = ingest_feed(con, "requests", landing, DAY)
    assert (report.rows_loaded, report.rows_quarantined) == (4, 20)
    assert_row_identity(con, "requests")


@pytest.mark.slow
def test_cli_refuses_then_replaces_anyway(landing, tmp_path):
    write_requests(landing)
    home = tmp_path / "home"
    args = ["--landing", str(landing), "--partition", "2026-11-02", "--feed", "requests"]
    assert cli(home, *args).returncode == 0
    before = snapshot(home / "warehouse.duckdb")
    run = cli(home, *args, "--format", "litellm")
    assert run.returncode == 1
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("infercost: requests 2026-11-02 (litellm): refused to replace the loaded day (20 rows)")
    assert "api_2026-11-02.jsonl (20 read, 0 loaded, 20 quarantined)" in line and "--replace-anyway" in line
    assert snapshot(home / "warehouse.duckdb") == before
    forced = cli(home, *args, "--format", "litellm", "--replace-anyway")
    assert forced.returncode == 0, forced.stderr
    assert "20 rows read, 0 loaded, 20 quarantined" in forced.stdout
    assert snapshot(home / "warehouse.duckdb")["raw_requests"] == []


@pytest.mark.slow
def test_the_dagster_asset_fails_rather_than_replace_and_takes_replace_anyway(landing, tmp_path, monkeypatch):
    write_requests(landing)
    monkeypatch.setenv("INFERCOST_LANDING", str(landing))
    from pipelines.defs.ingest import fleet_files, raw_requests
    from pipelines.defs.resources import EngineResource

    resources = {"duckdb": DuckDBResource(database=str(tmp_path / "w.duckdb")), "engine": EngineResource()}

    def rows():  # with the resource's own connection settings (a failed run's connection may still be open)
        with resources["duckdb"].get_connection() as c:
            return snapshot(c)

    assert dg.materialize([fleet_files], resources=resources).success
    assert dg.materialize([raw_requests], partition_key="2026-11-02", resources=resources).success
    before = rows()
    assert len(before["raw_requests"]) == 20
    (landing / "requests" / "api_2026-11-02.jsonl").unlink()
    failed = dg.materialize([raw_requests], partition_key="2026-11-02", resources=resources, raise_on_error=False)
    assert not failed.success
    [failure] = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
    error = failure.event_specific_data.error
    assert error.cause.cls_name == "IngestRefused"
    assert "refused to replace the loaded day (20 rows)" in error.cause.message
    assert rows() == before
    forced = dg.materialize(
        [raw_requests],
        partition_key="2026-11-02",
        resources=resources,
        run_config={"ops": {"raw_requests": {"config": {"replace_anyway": True}}}},
    )
    assert forced.success
    assert rows()["raw_requests"] == []


# -- a dry run ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_dry_run_reads_validates_and_writes_nothing(con, landing, tmp_path):
    write_requests(landing, n_good=3, n_bad=2)
    report = ingest_feed(con, "requests", landing, DAY, dry_run=True)
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined, report.written) == (5, 3, 2, False)
    assert snapshot(con) == {t: [] for t in TABLES}

    home = tmp_path / "home"
    args = ["--landing", str(landing), "--partition", "2026-11-02", "--feed", "requests"]
    run = cli(home, *args, "--dry-run")
    assert run.returncode == 0, run.stderr
    assert not (home / "warehouse.duckdb").exists()  # not even created
    assert "requests 2026-11-02: 1 file, 5 rows read, 3 loaded, 2 quarantined (dry run: nothing written)" in run.stdout
    assert "api_2026-11-02.jsonl: 5 read, 3 load, 2 quarantined, 0 skipped" in run.stdout

    assert cli(home, *args).returncode == 0
    digest = sha256(home / "warehouse.duckdb")
    (landing / "requests" / "api_2026-11-02.jsonl").unlink()
    run = cli(home, *args, "--dry-run")  # against the loaded warehouse: says it would be refused
    assert run.returncode == 0, run.stderr
    assert (
        "would be refused: requests 2026-11-02 (openai_jsonl): refused to replace the loaded day (3 rows)" in run.stdout
    )
    assert sha256(home / "warehouse.duckdb") == digest


# -- one reader per file pattern ------------------------------------------------------------------------------

EPF = "epftoolbox-dayahead/Forecasts_DE_DNN_LEAR_ensembles.csv"
GREEN = "green-dcc-prices/DE-LU_electricity_prices_2023.csv"
REGIONS = (
    "region,market,price_timezone,interval_minutes\nDE-LU,RTE-DA-DE-LU,Europe/Berlin,60\n"
    "Forecasts,EPEX-DA-DE,Europe/Berlin,60\n"
)
ROUTES = """prices:
  - {pattern: "Forecasts_*.csv", format: market_csv, options: {value_column: Real price, currency: EUR}}
  - {pattern: "*.csv", format: market_csv}
"""


@pytest.fixture
def two_source_prices(realdata, landing, tmp_path):
    """A landing whose prices folder holds an epftoolbox file and a green-dcc file (symlinks to the real files, in
    the test's tmp folder), and a warehouse with their regions."""
    from pipelines.ingest.loader import ingest_fleet_table
    from pipelines.warehouse.connection import connect
    from pipelines.warehouse.contracts import FLEET_TABLES

    for rel in (EPF, GREEN):
        (landing / "prices" / rel.split("/")[1]).symlink_to(realdata / rel)
    (landing / "fleet" / "regions.csv").write_text(REGIONS)
    c = connect(tmp_path / "prices.duckdb")
    for name in FLEET_TABLES:
        ingest_fleet_table(c, name, landing)
    yield c
    c.close()


def test_a_price_folder_of_two_sources_loads_with_a_reader_per_file_pattern(
    two_source_prices, landing, config_dir, tmp_path
):
    con = two_source_prices
    with pytest.raises(ValueError, match="names no currency"):  # one reader for both cannot read the epf file
        ingest_feed(con, "prices", landing, date(2016, 1, 4))
    (config_dir / "formats.yaml").write_text(ROUTES)
    for day, region in ((date(2016, 1, 4), "Forecasts"), (date(2023, 1, 1), "DE-LU")):
        report = ingest_feed(con, "prices", landing, day)  # the other source's file has no row of the day
        assert (report.rows_loaded, report.rows_quarantined) == (24, 0)
        got = con.execute("SELECT DISTINCT region, currency FROM raw_prices WHERE partition_date = ?", [day]).fetchall()
        assert got == [(region, "EUR")]
    epf_first = con.execute(
        "SELECT price_per_mwh FROM raw_prices WHERE region = 'Forecasts' ORDER BY interval_start LIMIT 1"
    ).fetchall()
    assert epf_first == [(12.77,)]  # 01:00 Berlin (00:00 UTC): the "Real price" column, not a forecast (6.14...)
    assert_row_identity(con, "prices")

    home = tmp_path / "home"  # the CLI reads the same formats.yaml ($INFERCOST_CONFIG_DIR)
    run = cli(home, "--landing", str(landing), "--partition", "2016-01-04", "--feed", "prices")
    assert run.returncode == 0, run.stderr
    assert "prices 2016-01-04: 1 file, 24 rows read, 24 loaded, 0 quarantined" in run.stdout


# -- rows a mapping skips on purpose --------------------------------------------------------------------------


def test_rows_a_mapping_skips_are_counted_apart_and_pass_the_quarantine_rate_check(realdata, tmp_path):
    from pipelines.analysis.quality import run_suite
    from pipelines.warehouse.connection import connect
    from tests.test_formats_mapped import RUNS, WILKINS_MAPPING, read_request_log

    run = min(RUNS)
    log = realdata / "wilkins-energy-inference" / run / RUNS[run]
    (tmp_path / "wilkins.yaml").write_text(WILKINS_MAPPING)
    con = connect(tmp_path / "w.duckdb")
    day = read_request_log(log)[0][1].date()
    report = ingest_files(
        con, "requests", [log], day, fmt="mapped", options={"mapping": str(tmp_path / "wilkins.yaml")}
    )
    assert (report.rows_quarantined, report.rows_skipped) == (0, 2)
    assert report.rows_read == report.rows_loaded + 2
    assert con.execute("SELECT rows_quarantined, rows_skipped FROM ingest_file_stats").fetchall() == [(0, 2)]
    assert_row_identity(con, "requests")
    [rate] = [o for o in run_suite(con, "requests", day, store=False) if o.name == "requests_ingest_quarantine_rate"]
    assert rate.success, rate.summary()
