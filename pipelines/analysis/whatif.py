"""What-if projections from the fleet's own measurements, each saying which measurements it rests on.

* technique: what a model's untreated (baseline) requests would have cost with a technique, from the measured
  change in cost per 1M output tokens and its bootstrap interval (technique_comparison);
* prices: what a region's energy would have cost under another region's hourly price curve (same UTC hours);
* device: what a model's requests would cost on another device type, from the measured cost per 1M output tokens
  of that model on both types; refused when the fleet has no such measurement.

Pure DuckDB; imports no Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb


class NoMeasurement(ValueError):
    """The fleet has not measured what the projection would need."""


@dataclass
class Projection:
    question: str
    current_usd: float
    projected_usd: float
    low_usd: float | None = None
    high_usd: float | None = None
    rests_on: list[str] = field(default_factory=list)

    @property
    def change_pct(self) -> float:
        return 100 * (self.projected_usd / self.current_usd - 1) if self.current_usd else float("nan")

    def text(self) -> str:
        interval = f" [{self.low_usd:,.2f} .. {self.high_usd:,.2f}]" if self.low_usd is not None else ""
        lines = [
            self.question,
            (
                f"  now ${self.current_usd:,.2f}; projected ${self.projected_usd:,.2f}{interval} "
                f"({self.change_pct:+.1f} %)"
            ),
            "  rests on:",
        ] + [f"    - {r}" for r in self.rests_on]
        return "\n".join(lines)


def _one(con, sql, params=()):
    return con.execute(sql, list(params)).fetchall()[0]


def technique(con: duckdb.DuckDBPyConnection, model: str, technique_name: str) -> Projection:
    found = con.execute(
        "SELECT cost_change_pct, cost_change_ci_low_pct, cost_change_ci_high_pct, requests, baseline_requests, "
        "baseline_model FROM technique_comparison WHERE model = ? AND technique = ?",
        [model, technique_name],
    ).fetchall()
    if not found:
        raise NoMeasurement(f"no measurement of {technique_name} on {model}: the fleet never ran it")
    change, low, high, n, n_base, base_model = found[0]
    if change is None:
        raise NoMeasurement(
            f"no usable measurement of {technique_name} on {model}: requests without a usable cost "
            f"were left out (see technique_comparison.summary)"
        )
    # requests whose cost is partial (a device without a usable inventory row, or before its in_service_from) or
    # that no GPU served (a cache hit) are left out, and said so
    incomplete = "coalesce(inventory_missing OR device_before_in_service OR served_from_cache, false)"
    cost, requests, first, last, left_out = _one(
        con,
        f"SELECT sum(fully_loaded_cost_usd) FILTER (WHERE NOT {incomplete}), "
        f"count(*) FILTER (WHERE NOT {incomplete}), min(request_date), max(request_date), "
        f"count(*) FILTER (WHERE {incomplete}) FROM fct_request_cost "
        "WHERE model = ? AND technique = 'baseline'",
        [model],
    )
    if not requests:
        raise NoMeasurement(f"{model} has no baseline requests to project")
    return Projection(
        question=f"What if {model}'s {requests:,} baseline requests ({first} .. {last}) had run with {technique_name}?",
        current_usd=cost,
        projected_usd=cost * (1 + change / 100),
        low_usd=cost * (1 + low / 100),
        high_usd=cost * (1 + high / 100),
        rests_on=[
            (
                f"{technique_name} on {model}: {change:+.1f} % cost per 1M output tokens [{low:+.1f} %, "
                f"{high:+.1f} %], n={n:,} requests vs {n_base:,} baseline requests of {base_model} "
                f"(technique_comparison, 95 % bootstrap interval)"
            )
        ]
        + (
            [
                f"{left_out:,} baseline requests left out: a device they ran on has no usable inventory row or was "
                "used before its in_service_from, or a cache served them"
            ]
            if left_out
            else []
        ),
    )


def prices(con: duckdb.DuckDBPyConnection, region: str, price_region: str) -> Projection:
    current, projected, unpriced, hours = _one(
        con,
        """
        WITH alt AS (
            SELECT interval_start, interval_end, price_usd_per_mwh FROM fct_electricity_prices WHERE region = ?
        )
        SELECT sum(b.energy_cost_usd), sum(b.facility_energy_j / 3.6e9 * alt.price_usd_per_mwh),
               count(*) FILTER (WHERE alt.price_usd_per_mwh IS NULL), count(DISTINCT b.bucket_start)
        FROM agg_region_bucket_cost b
        LEFT JOIN alt ON b.bucket_start >= alt.interval_start AND b.bucket_start < alt.interval_end
        WHERE b.region = ?""",
        [price_region, region],
    )
    if current is None:
        raise NoMeasurement(f"no request energy in region {region}")
    if unpriced:
        raise NoMeasurement(f"{price_region}'s prices do not cover every hour {region} used ({unpriced} price buckets)")
    return Projection(
        question=f"What if {region}'s request energy had been bought at {price_region}'s hourly prices?",
        current_usd=current,
        projected_usd=projected,
        rests_on=[
            f"attributed facility energy of {region}'s requests in {hours} price buckets (agg_region_bucket_cost)",
            f"{price_region}'s price feed for the same UTC hours (fct_electricity_prices)",
        ],
    )


def device(con: duckdb.DuckDBPyConnection, model: str, device_type: str) -> Projection:
    measured = {
        row[0]: row[1:]
        for row in con.execute(
            "SELECT device_type, sum(fully_loaded_cost_usd) / nullif(sum(completion_tokens), 0) * 1e6, count(*), "
            "sum(fully_loaded_cost_usd), sum(completion_tokens) FROM fct_request_cost WHERE model = ? GROUP BY 1",
            [model],
        ).fetchall()
    }
    if device_type not in measured:
        raise NoMeasurement(
            f"no measurement of {model} on {device_type}: the fleet never served it there "
            f"(measured on: {', '.join(sorted(map(str, measured))) or 'nothing'})"
        )
    others = {k: v for k, v in measured.items() if k != device_type}
    if not others:
        raise NoMeasurement(f"{model} runs only on {device_type} already")
    current = sum(v[2] for v in others.values())
    tokens = sum(v[3] for v in others.values())
    per_1m, n, _, _ = measured[device_type]
    return Projection(
        question=f"What if {model}'s requests on {', '.join(sorted(others))} had run on {device_type}?",
        current_usd=current,
        projected_usd=tokens / 1e6 * per_1m,
        rests_on=[f"{model} on {device_type}: ${per_1m:,.3f} per 1M output tokens over {n:,} requests"]
        + [f"{model} on {k}: ${v[0]:,.3f} per 1M output tokens over {v[1]:,} requests" for k, v in others.items()],
    )
