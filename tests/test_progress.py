"""What a long command shows: the quiet run's filter (summary lines through, Dagster and dbt chatter to the log
file, dbt progress with an ETA), and ingest's per-file progress."""

import sys
from types import SimpleNamespace

from pipelines.cli.progress import IngestProgress, eta, quiet_run

RUN = "2026-12-02 00:49:05 +0000 - dagster - {level} - daily_cost_job - d4a43fc1-747d-4be3-827a-dd62847eb1d0 - {step} - {msg}"


def test_eta_follows_the_pace_so_far():
    assert eta(10.0, 1, 3) == "ETA 20 s"
    assert eta(60.0, 1, 4) == "ETA 3 min"
    assert eta(5.0, 0, 3) == "" and eta(5.0, 3, 3) == ""


def test_a_quiet_run_keeps_everything_in_its_log_and_shows_the_summary(tmp_path, capsys):
    lines = [
        RUN.format(level="INFO", step="raw_requests", msg="requests 2026-11-02: 1/1 files, 129,571 rows read so far"),
        RUN.format(
            level="INFO", step="raw_requests", msg="requests 2026-11-02: 2 files, 129,571 rows read, 129,571 loaded"
        ),
        RUN.format(level="INFO", step="raw_prices", msg="prices 2026-11-02: 1 file, 1 row read, 1 loaded"),
        RUN.format(level="WARNING", step="quality", msg="3 requests quarantined"),
        "Running with dbt=1.11.16",
        *(
            f"{n} of 8 {'WARN' if n == 5 else 'OK'} created sql table model main.m{n} .... [\x1b[32mOK\x1b[0m in 0.1s]"
            for n in range(1, 9)
        ),
    ]
    with quiet_run(tmp_path, "materialize", False, print) as log:
        for line in lines:
            print(line)
        sys.stderr.write("a library's warning\n")
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == f"the run's full log: {log} (--verbose shows it here)"
    assert shown[1:] == [
        "  raw_requests: requests 2026-11-02: 2 files, 129,571 rows read, 129,571 loaded",
        "  raw_prices: prices 2026-11-02: 1 file, 1 row read, 1 loaded",
        "  WARNING: quality: 3 requests quarantined",
        "  dbt build: 2/8 models and tests done (ETA 0 s)",
        "  dbt build: 4/8 models and tests done (ETA 0 s)",
        "  dbt: 5 of 8 WARN created sql table model main.m5 .... [OK in 0.1s]",
        "  dbt build: 6/8 models and tests done (ETA 0 s)",
        "  dbt build: 8/8 models and tests done",
    ]
    kept = log.read_text()
    assert all(line in kept for line in lines) and "a library's warning" in kept
    assert sys.stdout is not None and log.parent == tmp_path / "logs"


def test_verbose_changes_nothing(tmp_path, capsys):
    with quiet_run(tmp_path, "materialize", True, print) as log:
        print(RUN.format(level="INFO", step="x", msg="anything"))
    assert log is None and " - dagster - INFO - " in capsys.readouterr().out
    assert not (tmp_path / "logs").exists()


def test_ingest_progress_says_each_file_and_an_eta(monkeypatch):
    clock = iter([0.0, 10.0, 11.0, 20.0, 30.0])
    monkeypatch.setattr("pipelines.cli.progress.time.monotonic", lambda: next(clock))
    said = []
    progress = IngestProgress("telemetry 2026-11-02", said.append, every_s=5.0)
    progress(0, 3, SimpleNamespace(rows_read=1000))  # a batch of the first file, 10 s in
    progress(0, 3, SimpleNamespace(rows_read=2000))  # 1 s later: not yet
    progress(1, 3, SimpleNamespace(rows_read=3000))  # the first file done at 20 s
    progress(3, 3, SimpleNamespace(rows_read=9000))
    assert said == [
        "  telemetry 2026-11-02: file 0/3, 1,000 rows read (10 s)",
        "  telemetry 2026-11-02: file 1/3, 3,000 rows read (20 s, ETA 40 s)",
        "  telemetry 2026-11-02: file 3/3, 9,000 rows read (30 s)",
    ]


def test_a_long_steps_progress_shows_every_few_seconds_with_an_eta(tmp_path, capsys, monkeypatch):
    clock = iter([0.0, 5.0, 12.0, 30.0])
    monkeypatch.setattr("pipelines.cli.progress.time.monotonic", lambda: next(clock))
    with quiet_run(tmp_path, "materialize", False, lambda line: None):
        for done in (1, 2, 3, 4):
            msg = f"attribution 2026-11-02: device group {done}/8, 1,000 samples and 10 request-devices so far"
            print(RUN.format(level="INFO", step="energy_attribution", msg=msg))
    shown = capsys.readouterr().out.splitlines()
    assert shown == [
        "  energy_attribution: attribution 2026-11-02: device group 3/8, 1,000 samples and 10 request-devices "
        "so far (ETA 20 s)",
        "  energy_attribution: attribution 2026-11-02: device group 4/8, 1,000 samples and 10 request-devices "
        "so far (ETA 30 s)",
    ]
