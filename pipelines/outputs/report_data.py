"""The report's numbers: every section's rows for one period [start, end], read from the marts.

Each query takes the period's first and last UTC day; nothing here reads outside it. The technique comparison is
recomputed over the period's requests with the same bootstrap as `infercost compare` (pipelines/analysis/compare),
so its intervals belong to the period too. Pure DuckDB and Python; imports no Dagster.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb

from pipelines.analysis.compare import compare_sides
from pipelines.analysis.compare_store import period_sides
from pipelines.warehouse.connection import table_exists


class EmptyPeriod(ValueError):
    """The period asked for has no requests in the warehouse; the message names the days that do."""


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params=()) -> list[dict]:
    rel = con.execute(sql, list(params))
    cols = [d[0] for d in rel.description]
    # DECIMAL columns as floats: as text (json's default=str) a chart would draw them as categories
    return [{c: float(v) if isinstance(v, Decimal) else v for c, v in zip(cols, r)} for r in rel.fetchall()]


def has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    return table_exists(con, table) and column in {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}


def data_days(con: duckdb.DuckDBPyConnection) -> list[date]:
    """The days agg_daily_model_cost has requests for."""
    return [
        d
        for (d,) in con.execute(
            "SELECT DISTINCT request_date FROM agg_daily_model_cost WHERE requests > 0 ORDER BY 1"
        ).fetchall()
    ]


def check_period(con: duckdb.DuckDBPyConnection, start: date, end: date) -> None:
    """Raise EmptyPeriod when no day of [start, end] has requests."""
    days = data_days(con)
    if any(start <= d <= end for d in days):
        return
    if not days:
        have = "the warehouse has no requests at all"
    elif len(days) <= 4:
        have = "data exists for " + ", ".join(d.isoformat() for d in days)
    else:
        have = f"data exists for {len(days)} days from {days[0]} to {days[-1]}"
    raise EmptyPeriod(f"no requests from {start} to {end}; {have}")


# a cost_caveat names dates and devices; its kind is the text with those taken out
_CAVEAT_KIND = r"regexp_replace(regexp_replace(cost_caveat, '\d{4}-\d{2}-\d{2}', '<date>', 'g'), ':.*$', '')"

# each section's rows for the period [?, ?]
SECTION_SQL = {
    "totals": """
        SELECT count(*) AS requests, sum(fully_loaded_cost_usd) AS cost_usd, sum(energy_j) / 3.6e6 AS energy_kwh,
        sum(completion_tokens) AS output_tokens, sum(emissions_g_co2e) / 1000 AS emissions_kg,
        count(cost_caveat) AS requests_with_caveat
        FROM fct_request_cost WHERE request_date BETWEEN ? AND ?""",
    "tenant_cost": """
        SELECT coalesce(tenant, '(no tenant)') AS tenant, count(*) AS requests,
        sum(completion_tokens) AS output_tokens, sum(energy_j) / 3.6e6 AS energy_kwh,
        sum(coalesce(energy_cost_usd, 0)) AS energy_usd, sum(capex_cost_usd) AS capex_usd,
        sum(overhead_cost_usd) AS overhead_usd, sum(idle_cost_allocated_usd) AS idle_usd,
        sum(fully_loaded_cost_usd) AS cost_usd, count(cost_caveat) AS requests_with_caveat
        FROM fct_request_cost WHERE request_date BETWEEN ? AND ? GROUP BY ALL ORDER BY cost_usd DESC NULLS LAST""",
    "cost_by_model_day": """
        SELECT request_date::VARCHAR AS day, model, cost_per_1m_output_tokens_usd AS usd_per_1m_output_tokens,
        requests FROM agg_daily_model_cost WHERE request_date BETWEEN ? AND ? ORDER BY 1, 2""",
    "technique_cost": """
        SELECT model, technique, 1e6 * sum(fully_loaded_cost_usd) / nullif(sum(completion_tokens), 0)
            AS usd_per_1m_output_tokens,
        3.6e6 * sum(energy_kwh) / nullif(sum(completion_tokens), 0) AS j_per_output_token, sum(requests) AS requests
        FROM agg_daily_technique_cost WHERE request_date BETWEEN ? AND ? GROUP BY ALL ORDER BY 1, 2""",
    "cost_split": """
        SELECT model, sum(energy_cost_usd) AS energy_usd, sum(capex_cost_usd) AS capex_usd,
        sum(overhead_cost_usd) AS overhead_usd, sum(idle_cost_allocated_usd) AS idle_usd
        FROM agg_daily_model_cost WHERE request_date BETWEEN ? AND ? GROUP BY 1 ORDER BY 1""",
    "idle_share": """
        SELECT device_type, sum(idle_energy_kwh) / nullif(sum(metered_energy_kwh), 0) AS idle_energy_share,
        sum(idle_cost_usd) AS idle_cost_usd FROM agg_idle_cost WHERE partition_date BETWEEN ? AND ?
        GROUP BY 1 ORDER BY 1""",
    "coverage": """
        SELECT partition_date::VARCHAR AS day, device_type, sum(metered_s) / nullif(sum(metered_s + unmetered_s), 0)
            AS coverage, count(*) AS devices, sum(requests) AS requests,
        sum(requests_partly_unmetered) AS requests_partly_unmetered
        FROM agg_telemetry_coverage WHERE partition_date BETWEEN ? AND ? GROUP BY ALL ORDER BY 1, 2""",
    "caveats": f"""
        SELECT {_CAVEAT_KIND} AS caveat, count(*) AS requests
        FROM fct_request_cost WHERE request_date BETWEEN ? AND ? AND cost_caveat IS NOT NULL
        GROUP BY 1 ORDER BY 2 DESC""",
    "metered_time": """
        SELECT model, sum(device_share_s - coalesce(unmetered_s, 0)) AS metered_device_s,
        sum(coalesce(unmetered_s, 0)) AS unmetered_device_s
        FROM fct_request_cost WHERE request_date BETWEEN ? AND ? GROUP BY 1 ORDER BY 1""",
    "prices": """
        SELECT strftime(bucket_start, '%Y-%m-%d %H:%M') AS bucket_start, region,
        any_value(price_usd_per_mwh) AS price_usd_per_mwh, sum(energy_cost_usd) AS energy_cost_usd,
        sum(energy_j) / 3.6e6 AS energy_kwh
        FROM agg_region_bucket_cost WHERE partition_date BETWEEN ? AND ? GROUP BY ALL ORDER BY 1, 2""",
}

# when the accuracy work's per-request uncertainty is in fct_request_cost: energy measured vs placed per model
UNCERTAINTY_SQL = """
    SELECT model, sum(energy_j) / 3.6e6 AS energy_kwh, sum(energy_uncertainty_j) / 3.6e6 AS energy_uncertainty_kwh
    FROM fct_request_cost WHERE request_date BETWEEN ? AND ? GROUP BY 1 ORDER BY 1"""

ANOMALY_SQL = """
    SELECT day::VARCHAR AS day, dimension, series_key, metric, expected, observed, effect_pct, likely_cause
    FROM cost_anomalies WHERE day BETWEEN ? AND ? ORDER BY day DESC, abs(score) DESC LIMIT 20"""

COMPARISON_COLUMNS = [
    "model",
    "technique",
    "baseline_model",
    "requests",
    "baseline_requests",
    "requests_excluded",
    "cost_per_1m_output_tokens_usd",
    "baseline_cost_per_1m_output_tokens_usd",
    "cost_change_pct",
    "cost_change_ci_low_pct",
    "cost_change_ci_high_pct",
    "p95_duration_change_pct",
]


def period_comparison(con: duckdb.DuckDBPyConnection, start: date, end: date, n_boot: int = 1000) -> list[dict]:
    """Each technique against its baseline over the period's requests, with 95 % bootstrap intervals."""
    result = compare_sides(period_sides(con, start, end), n_boot=n_boot, seed=0)
    if not len(result):
        return []
    result = result.astype(object).where(result.notna(), None)
    return [{c: r.get(c) for c in COMPARISON_COLUMNS + ["summary"]} for r in result.to_dict("records")]


def report_data(con: duckdb.DuckDBPyConnection, start: date, end: date) -> dict:
    """Every section's data for [start, end]; EmptyPeriod when no day of it has requests."""
    check_period(con, start, end)
    p = [start, end]
    data = {"period": [start.isoformat(), end.isoformat()]}
    for name, sql in SECTION_SQL.items():
        data[name] = _rows(con, sql, p)
    data["totals"] = data["totals"][0]
    data["uncertainty"] = (
        _rows(con, UNCERTAINTY_SQL, p) if has_column(con, "fct_request_cost", "energy_uncertainty_j") else []
    )
    data["anomalies"] = _rows(con, ANOMALY_SQL, p) if table_exists(con, "cost_anomalies") else []
    data["comparison"] = period_comparison(con, start, end)
    return data
