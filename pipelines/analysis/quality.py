"""Data-quality checks: Great Expectations 1.x suites kept as data in schemas/expectations/*.yaml.

Each check is a query over the warehouse for one UTC day (``$day``) whose result, a pandas DataFrame, is validated
against the check's expectations. (GX validates DataFrames pulled from DuckDB: its SQL path does not work with
DuckDB.) Results are stored in ``quality_check_results`` for analysts and returned for Dagster's asset checks.

Imports GX lazily (it takes seconds); imports no Dagster.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import yaml

from pipelines.warehouse.contracts import SCHEMAS_DIR

SUITES_DIR = SCHEMAS_DIR / "expectations"

RESULTS_DDL = """
CREATE TABLE IF NOT EXISTS quality_check_results (
    partition_date DATE, suite VARCHAR, check_name VARCHAR, success BOOLEAN, expectation VARCHAR,
    column_name VARCHAR, unexpected_count BIGINT, element_count BIGINT, unexpected_sample VARCHAR,
    description VARCHAR, evaluated_at TIMESTAMPTZ
)"""


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None
    element_count: int | None
    unexpected_sample: list


@dataclass
class CheckOutcome:
    suite: str
    name: str
    description: str
    day: date | None
    success: bool
    expectations: list[ExpectationOutcome] = field(default_factory=list)

    def failures(self) -> list[ExpectationOutcome]:
        return [e for e in self.expectations if not e.success]

    def summary(self) -> str:
        if self.success:
            return f"{self.name}: passed ({len(self.expectations)} expectations)"
        parts = [f"{e.expectation}({e.column or ''}): {e.unexpected_count} unexpected, e.g. {e.unexpected_sample[:3]}"
                 for e in self.failures()]
        return f"{self.name}: FAILED - " + "; ".join(parts)


@functools.cache
def load_suite(name: str) -> dict:
    path = SUITES_DIR / f"{name}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no expectation suite {name!r} at {path}")
    return yaml.safe_load(path.read_text())


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def check_names(suite: str) -> list[tuple[str, str]]:
    return [(c["name"], c.get("description", "")) for c in load_suite(suite)["checks"]]


@functools.cache
def _gx():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (context.data_sources.add_pandas("infercost").add_dataframe_asset(name="frame")
                        .add_batch_definition_whole_dataframe("whole"))
    return gx, batch_definition


def _expectation(gx, kind: str, kwargs: dict):
    cls_name = "".join(part.capitalize() for part in kind.split("_"))
    cls = getattr(gx.expectations, cls_name, None)
    if cls is None:
        raise ValueError(f"unknown expectation {kind!r}")
    return cls(**kwargs)


def run_suite(con: duckdb.DuckDBPyConnection, suite: str, day: date | None, *, store: bool = True
              ) -> list[CheckOutcome]:
    """Run every check of a suite for one day; store the outcomes in quality_check_results."""
    gx, batch_definition = _gx()
    spec = load_suite(suite)
    outcomes = []
    for check in spec["checks"]:
        frame_sql = check["frame"].replace("$day", f"DATE '{day.isoformat()}'" if day else "CURRENT_DATE")
        frame = con.sql(frame_sql).df()
        gx_suite = gx.ExpectationSuite(name=check["name"])
        for item in check["expectations"]:
            (kind, kwargs), = item.items()
            gx_suite.add_expectation(_expectation(gx, kind, dict(kwargs or {})))
        result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(gx_suite)
        exps = []
        for r in result.results:
            res = r.result or {}
            exps.append(ExpectationOutcome(
                expectation=r.expectation_config.type, column=r.expectation_config.kwargs.get("column"),
                success=bool(r.success), unexpected_count=res.get("unexpected_count", res.get("observed_value")
                                                                  if not r.success else 0),
                element_count=res.get("element_count"),
                unexpected_sample=[str(v) for v in (res.get("partial_unexpected_list") or [])[:5]],
            ))
        outcomes.append(CheckOutcome(suite=suite, name=check["name"], description=check.get("description", ""),
                                     day=day, success=bool(result.success), expectations=exps))
    if store:
        _store(con, outcomes, day)
    return outcomes


def _store(con: duckdb.DuckDBPyConnection, outcomes: list[CheckOutcome], day: date | None) -> None:
    con.execute(RESULTS_DDL)
    rows = [[day, o.suite, o.name, e.success, e.expectation, e.column,
             None if e.unexpected_count is None else int(e.unexpected_count) if str(e.unexpected_count).isdigit()
             else None, e.element_count, ", ".join(e.unexpected_sample), o.description]
            for o in outcomes for e in o.expectations]
    names = [o.name for o in outcomes]
    con.execute("DELETE FROM quality_check_results WHERE partition_date IS NOT DISTINCT FROM ? AND check_name IN "
                f"({', '.join('?' for _ in names)})", [day, *names])
    if rows:
        con.executemany("INSERT INTO quality_check_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())", rows)


def suite_path(suite: str) -> Path:
    return SUITES_DIR / f"{suite}.yaml"
