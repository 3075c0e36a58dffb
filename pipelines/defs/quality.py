"""Great Expectations suites (schemas/expectations/) as Dagster asset checks on the assets they validate."""

import dagster as dg

from pipelines.analysis.quality import CheckOutcome, check_names, suite_path


def suite_check_specs(suite: str, asset_key: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            name,
            asset=asset_key,
            blocking=False,
            description=f"{description} (Great Expectations, {suite_path(suite).name})",
        )
        for name, description in check_names(suite)
    ]


def check_results(outcomes: list[CheckOutcome], asset_key: str) -> list[dg.AssetCheckResult]:
    """One result per check over all days of the run: passed when every day passed; failures are warnings."""
    by_name: dict[str, list[CheckOutcome]] = {}
    for o in outcomes:
        by_name.setdefault(o.name, []).append(o)
    results = []
    for name, items in by_name.items():
        failed = [o for o in items if not o.success]
        results.append(
            dg.AssetCheckResult(
                check_name=name,
                asset_key=asset_key,
                passed=not failed,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "days": len(items),
                    "failed_days": [str(o.day) for o in failed],
                    "summary": dg.MetadataValue.md("\n".join(f"- {o.day}: {o.summary()}" for o in items)),
                },
            )
        )
    return results
