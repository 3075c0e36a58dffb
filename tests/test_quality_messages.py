"""A failed data-quality check names what failed: the model, device or file, the rule in words, and counts."""

import json
from datetime import date

import pandas as pd
import pytest

from pipelines.analysis.quality import run_suite
from pipelines.ingest.loader import ingest_feed
from pipelines.outputs.alerts import collect

DAY = date(2026, 11, 2)


@pytest.fixture
def loaded(con, landing):
    """The sample fleet plus a day of requests where one request names a model models.csv does not know."""
    lines = [
        json.dumps(
            {
                "id": f"r{i}",
                "created": 1793613600,
                "model": model,
                "replica_id": "us-west-h100-small-001-r0",
                "usage": {"prompt_tokens": 10, "completion_tokens": 5},
                "started_at": f"2026-11-02T10:00:0{i}Z",
                "ended_at": f"2026-11-02T10:00:0{i + 1}Z",
            }
        )
        for i, model in enumerate(["llama-3.1-8b-instruct"] * 3 + ["mystery-13b"])
    ]
    (landing / "requests" / "2026-11-02.jsonl").write_text("\n".join(lines) + "\n")
    ingest_feed(con, "requests", landing, DAY)
    return con


def test_unknown_model_is_named_with_counts(loaded):
    if not loaded.execute("SELECT count(*) FROM raw_requests").fetchall()[0][0]:
        pytest.fail(
            "the fixture's requests did not load: "
            + str(loaded.execute("SELECT reason FROM ingest_quarantine LIMIT 3").fetchall())
        )
    outcomes = {o.name: o for o in run_suite(loaded, "requests", DAY)}
    models = outcomes["requests_known_models"]
    assert not models.success
    text = models.summary()
    assert "mystery-13b" in text and "model_known must be one of [True]" in text and "1 of 2 rows" in text
    assert "['False']" not in text


def test_freshness_says_how_many_hours(loaded):
    outcome = {o.name: o for o in run_suite(loaded, "requests", DAY)}["requests_freshness"]
    assert not outcome.success
    text = outcome.summary()
    assert "hours_before_day_end must be between 0 and 3" in text
    assert "hours_before_day_end=14" in text  # the last request started at 10:00, 14 h before the day's end


def test_stored_results_and_alert_text_name_the_offender(loaded):
    run_suite(loaded, "requests", DAY)
    stored = loaded.execute(
        "SELECT unexpected_sample FROM quality_check_results WHERE check_name = 'requests_known_models' AND NOT success"
    ).fetchall()
    assert stored and "mystery-13b" in stored[0][0]
    alert = next(a for a in collect(loaded) if a.details.get("check") == "requests_known_models")
    assert "mystery-13b" in alert.text and "1 of 2 rows" in alert.text


def test_rules_read_as_words_for_each_expectation_kind():
    from pipelines.analysis.quality import _describe, _offending, _rule

    frame = pd.DataFrame({"device_id": ["gpu-1", "gpu-2", "gpu-3"], "power_w": [100.0, 2000.0, None]})
    kwargs = {"column": "power_w", "min_value": 0, "max_value": 1400}
    rows = _offending(frame, "expect_column_values_to_be_between", kwargs)
    assert list(rows.device_id) == ["gpu-2", "gpu-3"]
    assert _describe(rows, "power_w", None) == ["device_id=gpu-2 (power_w=2000)", "device_id=gpu-3 (power_w=nan)"]
    assert _rule("expect_column_values_to_be_between", kwargs) == "power_w must be between 0 and 1400"
    assert _rule("expect_table_row_count_to_be_between", {"min_value": 1}) == "the row count must be at least 1"


def test_a_repeated_request_id_fails_the_valid_values_check_in_its_hour(loaded):
    """The ingest keeps request ids unique; the check is defence in depth against rows written around it. Its
    repeated ids are counted over the rows whose id hash repeats: a repeat in one hour fails that hour only, and
    the same id in two hours is not a repeat within either (the check counts per hour)."""
    outcomes = {o.name: o for o in run_suite(loaded, "requests", DAY, store=False)}
    assert outcomes["requests_valid_values"].success
    loaded.execute("INSERT INTO raw_requests SELECT * FROM raw_requests WHERE request_id IN ('r1', 'r2')")
    loaded.execute(
        "INSERT INTO raw_requests SELECT * REPLACE (started_at + INTERVAL 2 HOUR AS started_at, "
        "ended_at + INTERVAL 2 HOUR AS ended_at) FROM raw_requests WHERE request_id = 'r3'"
    )
    check = {o.name: o for o in run_suite(loaded, "requests", DAY, store=False)}["requests_valid_values"]
    (failure,) = check.failures()
    assert failure.column == "repeated_ids" and failure.unexpected_count == 1 and failure.element_count == 2
    assert "repeated_ids=2" in " ".join(failure.unexpected_sample)
