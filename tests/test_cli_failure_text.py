"""A failed materialize says what its failed step raised (a refused ingest's own words), not only that it failed."""

import dagster as dg

from pipelines.cli.run import _failure_text


def test_a_failed_step_is_reported_with_the_error_it_raised():
    @dg.asset
    def raw_telemetry() -> None:
        raise RuntimeError("telemetry 2026-11-04: refused to replace the loaded day (691,192 rows): it would load 0")

    result = dg.materialize([raw_telemetry], raise_on_error=False)
    assert not result.success
    failures = [_failure_text(e) for e in result.all_events if e.is_failure]
    assert any(
        t.startswith("raw_telemetry: ") and "refused to replace the loaded day (691,192 rows)" in t for t in failures
    ), failures
