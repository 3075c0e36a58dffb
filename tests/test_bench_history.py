"""The history benchmark builds its history in backfill runs it can resume: a bench killed during an hour of backfill
loses one run's work, a finished history is reused, and one longer than asked for is built again."""

from datetime import date, timedelta

import pytest

from pipelines.devtools.bench import history as bench_history
from pipelines.devtools.bench.history import BACKFILL_CHUNK_DAYS, FIRST_DAY, build_history, built_through


def _day(n: int) -> date:
    """Day n of the generated fleet (day 1 is FIRST_DAY)."""
    return FIRST_DAY + timedelta(days=n - 1)


@pytest.fixture
def runs(monkeypatch):
    """The materialize runs the history asks for, recorded instead of run (a run of ``fail_at`` raises, as a
    killed child does)."""
    calls, fail = [], {"at": None}

    def materialize_days(landing, home, first, last, extra_env=None):
        home.mkdir(parents=True, exist_ok=True)
        if fail["at"] is not None and first <= fail["at"] <= last:
            raise RuntimeError("materialize killed")
        calls.append((first, last))
        return 1.0, {}

    monkeypatch.setattr(bench_history, "materialize_days", materialize_days)
    return calls, fail


def test_history_is_built_in_runs_of_a_bounded_number_of_days(tmp_path, runs):
    calls, _ = runs
    build_history(tmp_path / "landing", tmp_path / "home", _day(89), say=lambda _: None)
    assert calls[0] == (_day(1), _day(BACKFILL_CHUNK_DAYS))
    assert calls[-1][1] == _day(89)
    assert all((b - a).days < BACKFILL_CHUNK_DAYS for a, b in calls)
    assert all(calls[i + 1][0] == calls[i][1] + timedelta(days=1) for i in range(len(calls) - 1))
    assert built_through(tmp_path / "home") == _day(89)


def test_a_killed_backfill_resumes_after_its_last_finished_run(tmp_path, runs):
    calls, fail = runs
    home = tmp_path / "home"
    fail["at"] = _day(BACKFILL_CHUNK_DAYS + 5)  # the second run is killed
    with pytest.raises(RuntimeError):
        build_history(tmp_path / "landing", home, _day(89), say=lambda _: None)
    assert built_through(home) == _day(BACKFILL_CHUNK_DAYS)
    (home / "warehouse.duckdb").write_text("the first run's days")
    fail["at"], done = None, len(calls)
    build_history(tmp_path / "landing", home, _day(89), say=lambda _: None)
    assert calls[done][0] == _day(BACKFILL_CHUNK_DAYS + 1)  # not day 1 again
    assert (home / "warehouse.duckdb").read_text() == "the first run's days"
    assert built_through(home) == _day(89)


def test_a_finished_history_is_reused_and_a_longer_one_rebuilt(tmp_path, runs):
    calls, _ = runs
    home = tmp_path / "home"
    build_history(tmp_path / "landing", home, _day(9), say=lambda _: None)
    n = len(calls)
    (home / bench_history.BUILT_THROUGH).write_text(_day(10).isoformat())  # day 10 was timed on it
    build_history(tmp_path / "landing", home, _day(9), say=lambda _: None)
    assert len(calls) == n  # reused: timing day 10 again re-runs it
    (home / "marker").write_text("x")
    build_history(tmp_path / "landing", home, _day(4), say=lambda _: None)  # a history past day 5: built again
    assert calls[n:] == [(_day(1), _day(4))]
    assert not (home / "marker").exists()


def test_a_history_that_reaches_past_yesterday_is_refused_before_anything_is_generated(monkeypatch, runs):
    calls, _ = runs
    generated = []
    monkeypatch.setattr(bench_history, "fleet_landing", lambda *a, **k: generated.append(a))
    days = (date.today() - FIRST_DAY).days + 2  # its last day would be tomorrow
    with pytest.raises(ValueError, match="not a complete UTC day yet"):
        bench_history.history(days=days, say=lambda _: None)
    assert generated == [] and calls == []
    assert FIRST_DAY + timedelta(days=89) < date(2026, 12, 4)  # day 90 runs on the day this was written
