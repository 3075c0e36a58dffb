"""Prometheus metrics of the latest day in the warehouse, per model (the allocation API's ``/metrics``).

From ``agg_daily_model_cost`` on its latest ``request_date``: the fully loaded cost per 1M output tokens and per 1M
tokens (input + output), J per output token and the idle share of the model's devices' energy; each a gauge with a
``model`` label, in the Prometheus text exposition format (version 0.0.4). The day itself is
``infercost_latest_day_timestamp_seconds`` (its midnight UTC, unix seconds), not a label, so that series stay the
same from day to day. A model whose value is undefined that day (no output tokens) has no sample for it.

Imports no Dagster.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# metric name, the agg_daily_model_cost column it reads, help text
MODEL_GAUGES = [
    (
        "infercost_cost_per_1m_output_tokens_usd",
        "cost_per_1m_output_tokens_usd",
        "Fully loaded cost (energy, capex, overhead, idle share) per 1M output tokens on the latest day, USD.",
    ),
    (
        "infercost_cost_per_1m_tokens_usd",
        "cost_per_1m_tokens_usd",
        "Fully loaded cost per 1M tokens (input + output) on the latest day, USD.",
    ),
    (
        "infercost_energy_per_output_token_joules",
        "j_per_output_token",
        "Measured accelerator energy per output token on the latest day, J.",
    ),
    (
        "infercost_idle_share_ratio",
        "idle_share",
        "Share of the model's devices' metered energy that no request used on the latest day (0 to 1).",
    ),
    ("infercost_requests", "requests", "Requests served on the latest day."),
]


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value))


def metrics_text(con: duckdb.DuckDBPyConnection) -> str:
    """The exposition text for a read-only warehouse connection (only the latest-day gauge when it is empty)."""
    columns = ", ".join(column for _, column, _ in MODEL_GAUGES)
    rows = con.execute(
        f"SELECT request_date, model, {columns} FROM agg_daily_model_cost "
        "WHERE request_date = (SELECT max(request_date) FROM agg_daily_model_cost) ORDER BY model"
    ).fetchall()
    lines = [
        "# HELP infercost_latest_day_timestamp_seconds Midnight UTC of the latest day in the warehouse, unix s.",
        "# TYPE infercost_latest_day_timestamp_seconds gauge",
    ]
    if rows:
        day = rows[0][0]
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        lines.append(f"infercost_latest_day_timestamp_seconds {_number(midnight)}")
    for i, (name, _, help_text) in enumerate(MODEL_GAUGES):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for row in rows:
            value = row[2 + i]
            if value is not None and value == value:
                lines.append(f'{name}{{model="{_label(row[1])}"}} {_number(value)}')
    return "\n".join(lines) + "\n"
