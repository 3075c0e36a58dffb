"""Rows of another day in a file a run reads: the run loads its own day's rows and says which rows of other days the
warehouse does not hold, and how to load them (pipelines/ingest/other_days.py), never silently."""

from datetime import date

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipelines.ingest.loader import ingest_feed
from tests.conftest import cli_env, run_cli
from tests.test_ingest import good_request

NOV2, NOV3 = date(2026, 11, 2), date(2026, 11, 3)


def requests_of(day: date, ids) -> list[str]:
    stamp = f"{day.isoformat()}T10:00:0"
    return [good_request(i, started_at=f"{stamp}0Z", first_token_at=f"{stamp}1Z", ended_at=f"{stamp}3Z") for i in ids]


def write(landing, name, lines):
    (landing / "requests" / name).write_text("\n".join(lines) + "\n")


def loaded(con, day) -> int:
    return con.execute("SELECT count(*) FROM raw_requests WHERE partition_date = ?", [day]).fetchall()[0][0]


def test_late_rows_in_the_next_days_file_are_named_until_their_day_is_run_again(con, landing):
    write(landing, "api_2026-11-02.jsonl", requests_of(NOV2, range(20)))
    assert ingest_feed(con, "requests", landing, NOV2).other_days == []
    # delivered after 11-02's run: 5 late requests of 11-02 in the file of 11-03
    late = landing / "requests" / "2026-11-03-delivery.jsonl"
    write(landing, late.name, requests_of(NOV2, range(100, 105)) + requests_of(NOV3, range(200, 210)))
    report = ingest_feed(con, "requests", landing, NOV3)
    assert report.rows_loaded == 10 and loaded(con, NOV2) == 20
    [other] = report.other_days
    assert (other.source_file, other.rows_by_day, other.never_run) == (str(late), {NOV2: 5}, set())
    text = other.warning()
    assert "5 rows of 2026-11-02 are not in the warehouse" in text and str(late) in text
    assert "the run of that day came before them" in text
    assert text.endswith("`infercost materialize --partition 2026-11-02`")
    # the command's day loads them; then nothing is left to say
    assert ingest_feed(con, "requests", landing, NOV2).rows_loaded == 25
    assert ingest_feed(con, "requests", landing, NOV3).other_days == []


def test_a_later_day_not_run_yet_is_left_to_its_own_run_an_earlier_one_is_named(con, landing):
    # rows of the next day in a day's file: that day's own run, still to come, loads them
    write(landing, "api_2026-11-02.jsonl", requests_of(NOV2, range(30, 40)) + requests_of(NOV3, range(40, 44)))
    assert ingest_feed(con, "requests", landing, NOV2).other_days == []
    # rows of the day before, which has not been loaded: named
    write(landing, "api_2026-11-03.jsonl", requests_of(date(2026, 11, 4), range(60, 63)) + requests_of(NOV3, range(10)))
    report = ingest_feed(con, "requests", landing, date(2026, 11, 4))
    [other] = report.other_days
    assert other.rows == 10 and other.never_run == {NOV3} and "that day has not been loaded yet" in other.warning()
    assert ingest_feed(con, "requests", landing, NOV3).rows_loaded == 14
    # once 11-03 has run, rows of it that appear later in 11-02's file are named
    write(landing, "api_2026-11-02.jsonl", requests_of(NOV2, range(30, 40)) + requests_of(NOV3, range(40, 46)))
    [other] = ingest_feed(con, "requests", landing, NOV2).other_days
    assert other.rows_by_day == {NOV3: 2} and other.never_run == set()


def test_rows_already_loaded_from_another_file_are_not_owed(con, landing):
    """A loaded day's file compressed after its run (logrotate), or a redelivered copy of loaded rows, holds no row
    the warehouse lacks: nothing is said. A copy with one new row says one."""
    import gzip

    day_file = landing / "requests" / "2026-11-02.jsonl"
    write(landing, day_file.name, requests_of(NOV2, range(20)))
    assert ingest_feed(con, "requests", landing, NOV2).rows_loaded == 20
    (landing / "requests" / "2026-11-02.jsonl.gz").write_bytes(gzip.compress(day_file.read_bytes()))
    day_file.unlink()
    write(landing, "2026-11-03-redelivered.jsonl", requests_of(NOV2, range(5, 10)) + requests_of(NOV3, range(50, 60)))
    report = ingest_feed(con, "requests", landing, NOV3)
    assert report.rows_loaded == 10 and report.other_days == []
    write(
        landing,
        "2026-11-03-redelivered.jsonl",
        requests_of(NOV2, [*range(5, 10), 99]) + requests_of(NOV3, range(50, 60)),
    )
    [other] = ingest_feed(con, "requests", landing, NOV3).other_days
    assert other.rows_by_day == {NOV2: 1} and other.source_file.endswith("2026-11-03-redelivered.jsonl")


def test_a_range_run_does_not_name_its_own_days_and_counts_each_day(con, landing):
    from pipelines.ingest.report import IngestReport

    write(landing, "api_2026-11-02.jsonl", requests_of(NOV2, range(10)))
    write(landing, "api_2026-11-03.jsonl", requests_of(NOV3, range(20, 30)))
    for day in (NOV2, NOV3):
        ingest_feed(con, "requests", landing, day)
    # a late file of 11-04 with rows of 11-03 (3) and, within a day of its name, nothing older: then one of 11-03
    # holding 2 more of 11-02 and 4 more of 11-04
    write(
        landing,
        "late_2026-11-03.jsonl",
        requests_of(NOV2, range(90, 92)) + requests_of(date(2026, 11, 4), range(80, 84)),
    )
    ingest_feed(con, "requests", landing, date(2026, 11, 4))
    report = ingest_feed(con, "requests", landing, NOV3)
    [other] = report.other_days
    assert other.rows_by_day == {NOV2: 2}  # 11-04 has run since and read the file: it holds its rows
    # 11-02 and 11-03 in one run: 11-02's own rows are not owed to it by 11-03's step
    assert report.other_days_outside([NOV2, NOV3]) == []
    both = IngestReport("requests", NOV3, other_days=[type(other)("f", {NOV2: 2, date(2026, 11, 4): 3})])
    text = both.other_days[0].warning("infercost materialize --landing /x")
    assert "5 rows of 2 days (2 of 2026-11-02, 3 of 2026-11-04)" in text
    assert text.endswith("`infercost materialize --landing /x --from 2026-11-02 --to 2026-11-04`")
    assert both.other_days_outside([NOV2])[0].rows_by_day == {date(2026, 11, 4): 3}


def test_rows_quarantined_as_far_from_the_files_date_are_not_counted_as_owed(con, landing):
    """A row more than a day from its file's date is quarantined by the file's own day's run (no other run opens
    the file for that day): it is not also named as owed to its day."""
    write(landing, "api_2026-11-03.jsonl", requests_of(NOV3, range(5)) + requests_of(date(2026, 11, 1), [9]))
    report = ingest_feed(con, "requests", landing, NOV3)
    assert report.other_days == [] and report.rows_quarantined == 1


def test_the_cli_and_the_dagster_asset_say_it(landing, tmp_path, monkeypatch):
    from pipelines.defs.ingest import fleet_files, raw_requests
    from pipelines.defs.resources import EngineResource

    monkeypatch.setenv("INFERCOST_LANDING", str(landing))
    resources = {"duckdb": DuckDBResource(database=str(tmp_path / "w.duckdb")), "engine": EngineResource()}
    home = tmp_path / "home"
    args = ["ingest", "--landing", str(landing), "--feed", "requests", "--partition"]
    write(landing, "api_2026-11-02.jsonl", requests_of(NOV2, range(20)))
    assert run_cli([*args, "2026-11-02"], env=cli_env(home=home)).returncode == 0
    assert dg.materialize([fleet_files], resources=resources).success
    assert dg.materialize([raw_requests], partition_key="2026-11-02", resources=resources).success

    write(landing, "2026-11-03-delivery.jsonl", requests_of(NOV2, range(100, 104)) + requests_of(NOV3, range(300, 309)))
    run = run_cli([*args, "2026-11-03"], env=cli_env(home=home))
    assert "warning: " in run.stdout and "4 rows of 2026-11-02 are not in the warehouse" in run.stdout
    assert f"`infercost materialize --landing {landing} --partition 2026-11-02`" in run.stdout
    dry = run_cli([*args, "2026-11-03", "--dry-run"], env=cli_env(home=home))
    assert "4 rows of 2026-11-02 are not in the warehouse" in dry.stdout
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([raw_requests], partition_key="2026-11-03", resources=resources, instance=instance)
    [materialized] = result.asset_materializations_for_node("raw_requests")
    assert materialized.metadata["rows_of_other_days_not_loaded"].value == 4
    warnings = [
        e.message
        for e in instance.all_logs(result.run_id)  # the run's log, as the UI shows it
        if e.level >= 30 and "rows of 2026-11-02 are not in the warehouse" in (e.message or "")
    ]
    assert warnings
    # a file dated 11-01 that came after the runs beside it: no run of 11-03 opens it, the asset names it
    write(landing, "2026-11-01-late.jsonl", requests_of(date(2026, 11, 1), range(500, 503)))
    result = dg.materialize([raw_requests], partition_key="2026-11-03", resources=resources, instance=instance)
    [materialized] = result.asset_materializations_for_node("raw_requests")
    assert materialized.metadata["late_files_never_read"].value == 1
    assert any(
        "2026-11-01-late.jsonl: dated 2026-11-01, was never read" in (e.message or "")
        for e in instance.all_logs(result.run_id)
        if e.level >= 30
    )


def test_late_telemetry_samples_are_named_by_device_and_time(con, landing):
    """Telemetry loads every sample (no duplicate key) and goes straight into its raw table: late samples of a
    loaded day are named; a compressed copy of the day's loaded file is not."""
    import gzip

    header = "timestamp, index, uuid, name, power.draw [W], utilization.gpu [%], memory.used [MiB]"
    uuid = "GPU-500320d4-f8f2-4545-b2d7-e6de5793354a"

    def samples(day: date, seconds) -> list[str]:
        return [f"{day:%Y/%m/%d} 10:00:{s:02d}.000, 0, {uuid}, NVIDIA H100 80GB HBM3, 100.00, 5, 100" for s in seconds]

    day_file = landing / "telemetry" / "node-1_2026-11-02.csv"
    day_file.write_text("\n".join([header, *samples(NOV2, range(10))]) + "\n")
    assert ingest_feed(con, "telemetry", landing, NOV2).rows_loaded == 10
    (landing / "telemetry" / "node-1_2026-11-02.csv.gz").write_bytes(gzip.compress(day_file.read_bytes()))
    day_file.unlink()
    late = landing / "telemetry" / "node-1_2026-11-03.csv"
    late.write_text("\n".join([header, *samples(NOV2, range(5, 15)), *samples(NOV3, range(20))]) + "\n")
    report = ingest_feed(con, "telemetry", landing, NOV3)
    assert report.rows_loaded == 20
    [other] = report.other_days
    assert other.source_file == str(late) and other.rows_by_day == {NOV2: 5}  # seconds 10-14; 5-9 are loaded


def test_the_commands_landing_folder_is_quoted_for_the_shell(monkeypatch, tmp_path):
    import shlex

    from pipelines.cli import ingest as cli_ingest
    from pipelines.ingest.report import IngestReport, OtherDayRows

    said = []
    monkeypatch.setattr(cli_ingest, "say", said.append)
    landing = tmp_path / "team logs" / "it's here"
    report = IngestReport("requests", NOV3, other_days=[OtherDayRows("f.jsonl", {NOV2: 3})])
    cli_ingest._say_other_days(report, [NOV3], landing)
    [line] = said
    command = line.split("`")[1]
    assert shlex.split(command) == ["infercost", "materialize", "--landing", str(landing), "--partition", "2026-11-02"]


def test_rows_added_to_a_file_with_bad_lines_are_all_named(con, landing):
    """Found by a stranger: 11-02's run quarantined 3 bad lines of a file (filed to 11-02, after its last valid
    row); 5 rows of 11-02 added to the file later were named as 2, and with 5 bad lines not at all: the count was
    held against every line the run read, bad ones included, not against its valid rows."""
    for bad_lines in (3, 5):
        late = landing / "requests" / f"2026-11-03-{bad_lines}.jsonl"
        body = requests_of(NOV2, range(10)) + ["{not json"] * bad_lines + requests_of(NOV3, range(100, 110))
        write(landing, late.name, body)
        ingest_feed(con, "requests", landing, NOV2)
        assert ingest_feed(con, "requests", landing, NOV3).other_days == []
        write(landing, late.name, body + requests_of(NOV2, range(200 + 10 * bad_lines, 205 + 10 * bad_lines)))
        [other] = ingest_feed(con, "requests", landing, NOV3).other_days
        assert (other.source_file, other.rows_by_day) == (str(late), {NOV2: 5})
        assert ingest_feed(con, "requests", landing, NOV2).rows_loaded == loaded(con, NOV2)
        assert ingest_feed(con, "requests", landing, NOV3).other_days == []
        late.unlink()


def test_repeats_a_day_quarantined_are_not_named_as_owed(con, landing):
    """A file's valid rows of 11-02 that 11-02's run quarantined as repeats of a key count as read: nothing owed."""
    write(landing, "api_2026-11-02.jsonl", requests_of(NOV2, range(10)))
    write(landing, "2026-11-03-repeats.jsonl", requests_of(NOV2, range(5)) + requests_of(NOV3, range(100, 103)))
    ingest_feed(con, "requests", landing, NOV2)
    report = ingest_feed(con, "requests", landing, NOV3)
    assert report.other_days == [] and report.rows_loaded == 3


def test_the_command_a_warning_gives_passes_the_runs_checks(con, landing):
    """Found by a stranger: rows of 11-01 (never run) in a file named for 11-02 were named with `materialize
    --partition 2026-11-01`, which its check of the days refused ("no request logs for 2026-11-01"): a run reads the
    files dated a day either side, so the check counts them too; a day farther from every file is still refused."""
    import pytest

    from pipelines.cli.helpers import UserError
    from pipelines.cli.run_checks import check_days

    write(landing, "2026-11-02-late.jsonl", requests_of(date(2026, 11, 1), range(20)))
    [other] = ingest_feed(con, "requests", landing, NOV2).other_days
    assert other.never_run == {date(2026, 11, 1)} and "--partition 2026-11-01" in other.warning()
    today = date(2026, 12, 1)
    check_days(landing, date(2026, 11, 1), date(2026, 11, 1), today)
    with pytest.raises(UserError, match="no request logs for 2026-10-31"):
        check_days(landing, date(2026, 10, 31), date(2026, 10, 31), today)
    assert ingest_feed(con, "requests", landing, date(2026, 11, 1)).rows_loaded == 20


def test_a_file_dated_two_days_back_that_came_after_its_runs_is_named(con, landing):
    """Found by a stranger: a late file named for its own day, delivered after the runs of that day and the next,
    is opened by no later run (a run opens the files dated a day either side of its own), so its rows were lost
    without a word. The next run names the file and the command that loads it; a file whose days never ran is left
    to them."""
    write(landing, "api_2026-11-02.jsonl", requests_of(NOV2, range(10)))
    write(landing, "api_2026-11-03.jsonl", requests_of(NOV3, range(10, 20)))
    for day in (NOV2, NOV3):
        ingest_feed(con, "requests", landing, day)
    late = landing / "requests" / "2026-11-02-late.jsonl"
    write(landing, late.name, requests_of(NOV2, range(100, 130)))
    write(landing, "history_2026-10-01.jsonl", requests_of(date(2026, 10, 1), range(200, 205)))  # never run
    nov4 = date(2026, 11, 4)
    [other] = ingest_feed(con, "requests", landing, nov4).other_days
    assert (other.source_file, other.never_read, other.days) == (str(late), True, [NOV2])
    text = other.warning("infercost materialize")
    assert "was never read" in text and text.endswith("`infercost materialize --partition 2026-11-02`")
    assert ingest_feed(con, "requests", landing, NOV2).rows_loaded == 40
    assert ingest_feed(con, "requests", landing, nov4).other_days == []


def test_rows_replaced_by_as_many_others_in_a_changed_file_are_named(con, landing):
    """A file of 11-03 held 10 rows of 11-02, which 11-02's run loaded; they were then replaced by 10 other rows of
    11-02. The count is the same, but the file's bytes changed since a run read it (file_days): its rows of 11-02
    are looked up by key, and the 10 new ones named. An unchanged file's rows are counted, not looked up."""
    late = landing / "requests" / "2026-11-03-delivery.jsonl"
    write(landing, late.name, requests_of(NOV2, range(10)) + requests_of(NOV3, range(100, 105)))
    for day in (NOV2, NOV3):
        ingest_feed(con, "requests", landing, day)
    assert ingest_feed(con, "requests", landing, NOV3).other_days == []
    write(landing, late.name, requests_of(NOV2, range(50, 60)) + requests_of(NOV3, range(100, 105)))
    [other] = ingest_feed(con, "requests", landing, NOV3).other_days
    assert (other.source_file, other.rows_by_day) == (str(late), {NOV2: 10})
    ingest_feed(con, "requests", landing, NOV2)
    assert ingest_feed(con, "requests", landing, NOV3).other_days == []
