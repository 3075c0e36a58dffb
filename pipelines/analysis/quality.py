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
from pipelines.warehouse.tables import create_tables

SUITES_DIR = SCHEMAS_DIR / "expectations"


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None
    element_count: int | None
    unexpected_sample: list
    """The offending rows in words, named by the frame's label columns: ``model=foo-13b (model_known=False)``."""
    rule: str = ""
    """What the expectation asks, in words: ``hours_before_day_end must be between 0 and 3``."""

    def explain(self) -> str:
        """One line a person can act on: the rule, how many rows broke it, and which."""
        if self.success:
            return f"{self.rule}: ok"
        of = f" of {self.element_count}" if self.element_count is not None else ""
        count = f"{self.unexpected_count}{of} rows" if self.unexpected_count is not None else "failed"
        named = f": {'; '.join(self.unexpected_sample)}" if self.unexpected_sample else ""
        return f"{self.rule} - {count}{named}"


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
        return f"{self.name}: FAILED - " + "; ".join(e.explain() for e in self.failures())


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
    batch_definition = (
        context.data_sources.add_pandas("infercost")
        .add_dataframe_asset(name="frame")
        .add_batch_definition_whole_dataframe("whole")
    )
    return gx, batch_definition


def _expectation(gx, kind: str, kwargs: dict):
    cls_name = "".join(part.capitalize() for part in kind.split("_"))
    cls = getattr(gx.expectations, cls_name, None)
    if cls is None:
        raise ValueError(f"unknown expectation {kind!r}")
    return cls(**kwargs)


def run_suite(
    con: duckdb.DuckDBPyConnection, suite: str, day: date | None, *, store: bool = True
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
            ((kind, kwargs),) = item.items()
            gx_suite.add_expectation(_expectation(gx, kind, dict(kwargs or {})))
        result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(gx_suite)
        exps = [_outcome(r, frame, check.get("identify_by")) for r in result.results]
        outcomes.append(
            CheckOutcome(
                suite=suite,
                name=check["name"],
                description=check.get("description", ""),
                day=day,
                success=bool(result.success),
                expectations=exps,
            )
        )
    if store:
        _store(con, outcomes, day)
    return outcomes


SAMPLE_ROWS = 5  # offending rows named in a failure (the count says how many there are in all)


def _rule(kind: str, kwargs: dict) -> str:
    """An expectation in words."""
    column = kwargs.get("column", "rows")
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if kind.endswith("_to_be_between"):
        subject = "the row count" if kind.startswith("expect_table") else column
        if lo is not None and hi is not None:
            return f"{subject} must be between {lo:g} and {hi:g}"
        return f"{subject} must be at least {lo:g}" if lo is not None else f"{subject} must be at most {hi:g}"
    if kind.endswith("_to_be_in_set"):
        return f"{column} must be one of {list(kwargs.get('value_set', []))}"
    if kind.endswith("_to_be_unique"):
        return f"{column} must be unique"
    if kind.endswith("_to_not_be_null"):
        return f"{column} must not be empty"
    return kind.replace("expect_", "").replace("_", " ")


def _offending(frame, kind: str, kwargs: dict):
    """The rows of ``frame`` that break an expectation on a column (None for table-level expectations)."""
    column = kwargs.get("column")
    if column is None or column not in frame:
        return None
    values = frame[column]
    if kind.endswith("_to_be_between"):
        bad = values.isna()
        if kwargs.get("min_value") is not None:
            bad |= values < kwargs["min_value"]
        if kwargs.get("max_value") is not None:
            bad |= values > kwargs["max_value"]
        return frame[bad.fillna(True)]
    if kind.endswith("_to_be_in_set"):
        return frame[values.notna() & ~values.isin(list(kwargs.get("value_set", [])))]
    if kind.endswith("_to_be_unique"):
        return frame[values.notna() & values.duplicated(keep=False)]
    if kind.endswith("_to_not_be_null"):
        return frame[values.isna()]
    return None


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _label_columns(frame, column: str | None, identify_by: list[str] | None) -> list[str]:
    """The columns that say what a row is: the check's ``identify_by``, else its text and date columns."""
    if identify_by:
        return [c for c in identify_by if c in frame]
    return [c for c in frame.columns if c != column and frame[c].dtype.kind not in "biufc"][:3]


def _describe(rows, column: str | None, identify_by: list[str] | None) -> list[str]:
    labels = _label_columns(rows, column, identify_by)
    out = []
    for _, row in rows.head(SAMPLE_ROWS).iterrows():
        named = ", ".join(f"{c}={_value(row[c])}" for c in labels)
        value = f"{column}={_value(row[column])}" if column else ""
        out.append(f"{named} ({value})" if named and value else named or value)
    return out


def _outcome(r, frame, identify_by: list[str] | None) -> ExpectationOutcome:
    kind, kwargs = r.expectation_config.type, dict(r.expectation_config.kwargs)
    column = kwargs.get("column")
    res = r.result or {}
    rows = None if r.success else _offending(frame, kind, kwargs)
    if rows is not None:
        count, sample = len(rows), _describe(rows, column, identify_by)
    elif r.success:
        count, sample = 0, []
    else:
        observed = res.get("observed_value")
        count, sample = None, [] if observed is None else [f"observed {_value(observed)}"]
    return ExpectationOutcome(
        expectation=kind,
        column=column,
        success=bool(r.success),
        unexpected_count=count,
        element_count=res.get("element_count", len(frame)),
        unexpected_sample=sample,
        rule=_rule(kind, kwargs),
    )


def _store(con: duckdb.DuckDBPyConnection, outcomes: list[CheckOutcome], day: date | None) -> None:
    create_tables(con, "quality_check_results")
    rows = [
        [
            day,
            o.suite,
            o.name,
            e.success,
            e.expectation,
            e.column,
            e.unexpected_count,
            e.element_count,
            "" if e.success else e.explain(),
            o.description,
        ]
        for o in outcomes
        for e in o.expectations
    ]
    names = [o.name for o in outcomes]
    con.execute(
        "DELETE FROM quality_check_results WHERE partition_date IS NOT DISTINCT FROM ? AND check_name IN "
        f"({', '.join('?' for _ in names)})",
        [day, *names],
    )
    if rows:
        con.executemany("INSERT INTO quality_check_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())", rows)


def suite_path(suite: str) -> Path:
    return SUITES_DIR / f"{suite}.yaml"
