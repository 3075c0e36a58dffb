"""Monthly budgets per tenant, model or label, in USD, kWh or kg CO2e: month-to-date spend, a burn-rate forecast to
the month's end, and a status an alert can be raised on.

A budget file (``$INFERCOST_CONFIG_DIR/budgets.yaml``) lists budgets:

    budgets:
      - name: search-team          # unique; names the budget in alerts
        tenant: search             # the scope: tenant, model or label ({key: value}); none of them = the whole fleet
        limit: 1500                # per calendar month (UTC), in the unit
        unit: usd                  # usd | kwh | kg_co2e
        warn_at_pct: 90            # optional: alert when the forecast crosses this % of the limit (default 100)

What counts: a scoped budget sums its requests' ``fully_loaded_cost_usd`` (direct cost plus the idle cost the
idle policy shares to them), ``energy_j`` (metered GPU energy) or ``emissions_g_co2e`` from fct_request_cost. A
fleet budget (no scope) adds the idle cost and idle energy of agg_idle_cost, so it is the fleet's whole cost under
every idle policy; idle energy's emissions are not in the marts, which the status says in ``caveat``.

The forecast: month-to-date spend plus the mean daily spend of the last seven days (fewer at the month's start;
a day with no spend counts as zero) times the days left in the month after ``as_of``.

Pure Python; imports no Dagster. Reads marts only.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import yaml

from pipelines.warehouse.tables import create_tables

UNITS = {"usd": "USD", "kwh": "kWh", "kg_co2e": "kg CO2e"}
SCOPES = ("tenant", "model", "label")
BURN_DAYS = 7
_REQUEST_MEASURE = {
    "usd": "fully_loaded_cost_usd",
    "kwh": "energy_j / 3.6e6",
    "kg_co2e": "emissions_g_co2e / 1000.0",
}
_IDLE_MEASURE = {"usd": "idle_cost_usd", "kwh": "idle_energy_kwh"}
_LABEL_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class BudgetError(ValueError):
    """A budget file that cannot be used, in words naming the file and the entry."""


@dataclass(frozen=True)
class Budget:
    name: str
    limit: float
    unit: str
    scope: str | None = None  # tenant | model | label | None (the fleet)
    scope_value: str | None = None
    label_key: str | None = None
    warn_at_pct: float = 100.0

    @property
    def scope_text(self) -> str:
        if self.scope is None:
            return "fleet"
        if self.scope == "label":
            return f"label {self.label_key}={self.scope_value}"
        return f"{self.scope} {self.scope_value}"


def _entry(path: Path, i: int, raw) -> Budget:
    where = f"{path}: budget {i + 1}"
    if not isinstance(raw, dict):
        raise BudgetError(f"{where}: expected a mapping with name, limit and unit")
    unknown = set(raw) - {"name", "limit", "unit", "warn_at_pct", *SCOPES}
    if unknown:
        raise BudgetError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BudgetError(f"{where}: 'name' is missing")
    where = f"{path}: budget {name!r}"
    unit = raw.get("unit")
    if unit not in UNITS:
        raise BudgetError(f"{where}: unit {unit!r} is not one of {', '.join(UNITS)}")
    limit, warn = raw.get("limit"), raw.get("warn_at_pct", 100)
    for key, value in (("limit", limit), ("warn_at_pct", warn)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise BudgetError(f"{where}: {key} {value!r} is not a positive number")
    scopes = [s for s in SCOPES if s in raw]
    if len(scopes) > 1:
        raise BudgetError(f"{where}: give one scope, not {' and '.join(scopes)}")
    scope = scopes[0] if scopes else None
    value, key = (raw[scope] if scope else None), None
    if scope == "label":
        if not (isinstance(value, dict) and len(value) == 1):
            raise BudgetError(f"{where}: label must be one key: value pair, e.g. label: {{project: search}}")
        ((key, value),) = value.items()
        if not _LABEL_KEY.match(str(key)):
            raise BudgetError(f"{where}: label key {key!r} is not a plain name")
    if scope and not isinstance(value, (str, int)):
        raise BudgetError(f"{where}: {scope} must be a name, not {value!r}")
    return Budget(name.strip(), float(limit), unit, scope, None if value is None else str(value), key, float(warn))


def load_budgets(path: Path) -> list[Budget]:
    """The budgets in ``path``; a clear BudgetError for anything unusable (never a budget silently ignored)."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as exc:
        raise BudgetError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    entries = (doc or {}).get("budgets") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise BudgetError(f"{path}: expected a top-level 'budgets:' list with at least one budget")
    budgets = [_entry(Path(path), i, raw) for i, raw in enumerate(entries)]
    names = [b.name for b in budgets]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise BudgetError(f"{path}: budget name(s) used twice: {', '.join(dupes)}")
    return budgets


def _scope_filter(budget: Budget) -> tuple[str, list]:
    if budget.scope in ("tenant", "model"):
        return f"{budget.scope} = ?", [budget.scope_value]
    if budget.scope == "label":
        return "json_extract_string(labels, ?) = ?", [f'$."{budget.label_key}"', budget.scope_value]
    return "true", []


def daily_spend(con: duckdb.DuckDBPyConnection, budget: Budget, first: date, last: date) -> pd.Series:
    """The budget's spend per UTC day from ``first`` to ``last`` inclusive, zero on days with none."""
    where, params = _scope_filter(budget)
    rows = con.execute(
        f"SELECT request_date AS day, sum({_REQUEST_MEASURE[budget.unit]}) AS spend FROM fct_request_cost "
        f"WHERE request_date BETWEEN ? AND ? AND {where} GROUP BY 1",
        [first, last, *params],
    ).fetchall()
    spend = {d: float(s or 0) for d, s in rows}
    if budget.scope is None and budget.unit in _IDLE_MEASURE:
        # the fleet pays for idle too: the part no request carries (all of it under policy none)
        idle = con.execute(
            f"SELECT partition_date, sum({_IDLE_MEASURE[budget.unit]}) FROM agg_idle_cost "
            "WHERE partition_date BETWEEN ? AND ? GROUP BY 1",
            [first, last],
        ).fetchall()
        shared = _idle_shared(con, budget.unit, first, last)
        for d, v in idle:
            spend[d] = spend.get(d, 0.0) + float(v or 0) - shared.get(d, 0.0)
    days = pd.date_range(first, last, freq="D").date
    return pd.Series([spend.get(d, 0.0) for d in days], index=days, dtype="float64")


def _idle_shared(con, unit: str, first: date, last: date) -> dict:
    """Idle already inside fully_loaded_cost_usd (what the idle policy shared to requests), so it is not counted
    twice; energy is never shared (energy_j is the request's own)."""
    if unit != "usd":
        return {}
    rows = con.execute(
        "SELECT request_date, sum(idle_cost_allocated_usd) FROM fct_request_cost "
        "WHERE request_date BETWEEN ? AND ? GROUP BY 1",
        [first, last],
    ).fetchall()
    return {d: float(v or 0) for d, v in rows}


def latest_day(con: duckdb.DuckDBPyConnection) -> date | None:
    return con.execute("SELECT max(request_date) FROM fct_request_cost").fetchall()[0][0]


def evaluate(con: duckdb.DuckDBPyConnection, budgets: list[Budget], as_of: date | None = None) -> pd.DataFrame:
    """One row per budget for the month of ``as_of`` (default: the latest day with requests)."""
    as_of = as_of or latest_day(con)
    if as_of is None:
        raise BudgetError("the warehouse has no requests yet: run `infercost materialize` first")
    month_start = as_of.replace(day=1)
    month_days = calendar.monthrange(as_of.year, as_of.month)[1]
    days_left = month_days - as_of.day
    rows = []
    for b in budgets:
        spend = daily_spend(con, b, month_start, as_of)
        recent = spend.iloc[-BURN_DAYS:]
        burn = float(recent.mean())
        to_date = float(spend.sum())
        forecast = to_date + burn * days_left
        status = "over" if to_date > b.limit else "forecast_over" if forecast > b.limit * b.warn_at_pct / 100 else "ok"
        rows.append(
            {
                "budget": b.name,
                "scope": b.scope_text,
                "unit": b.unit,
                "month": month_start,
                "as_of": as_of,
                "limit_amount": b.limit,
                "spent_to_date": to_date,
                "daily_burn_rate": burn,
                "burn_days": len(recent),
                "forecast_month_end": forecast,
                "forecast_pct_of_limit": 100.0 * forecast / b.limit,
                "warn_at_pct": b.warn_at_pct,
                "status": status,
                "caveat": "idle energy's emissions are not counted"
                if b.scope is None and b.unit == "kg_co2e"
                else None,
            }
        )
    return pd.DataFrame(rows)


def evaluate_and_store(con: duckdb.DuckDBPyConnection, budgets: list[Budget], as_of: date) -> pd.DataFrame:
    """Evaluate ``budgets`` as of ``as_of`` and replace that day's rows of budget_status."""
    create_tables(con, "budget_status")
    status = evaluate(con, budgets, as_of)
    con.execute("DELETE FROM budget_status WHERE as_of = ?", [as_of])
    con.register("_status", status)
    con.execute("INSERT INTO budget_status BY NAME SELECT *, now() AS evaluated_at FROM _status")
    con.unregister("_status")
    return status
