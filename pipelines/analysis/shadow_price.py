"""The self-hosting question: per model, what the fleet's tokens cost self-hosted beside what the same tokens would
have cost through an API at list prices the user supplies, and the utilization at which self-hosting pays.

The price file (CSV with a header; ``$INFERCOST_CONFIG_DIR/api_prices.csv`` by default):

    model,input_usd_per_1m_tokens,output_usd_per_1m_tokens,cached_input_usd_per_1m_tokens
    llama-3.1-70b-instruct,0.88,0.88,
    mixtral-8x7b-instruct,0.60,0.60,0.30

``model`` is the served model name as in fct_request_cost; the cached input price is optional (cached prompt tokens
are priced as input when it is empty).

Break-even utilization. Per device-second of the model's devices, self-hosting pays capacity (capex and overhead,
the same per second busy or idle), plus busy energy for the busy fraction u and idle power for the rest; the API
would bill the tokens a busy device-second serves. With c the capacity cost per device-second, e the busy energy
cost and i the idle energy cost per device-second, and a the API price of one busy device-second's tokens:
c + u*e + (1 - u)*i = u*a, so u* = (c + i) / (a - e + i). Above u* self-hosting is cheaper. When a <= e - i, or u*
> 1, no utilization pays at the measured throughput (null). Throughput per busy second is taken as measured, so u*
is conservative where a busier fleet would batch more. Idle power is the device types' mean over the period.

Pure Python; imports no Dagster. Reads marts only.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

PRICE_COLUMNS = ("input_usd_per_1m_tokens", "output_usd_per_1m_tokens")
OPTIONAL_COLUMNS = ("cached_input_usd_per_1m_tokens",)


class PriceFileError(ValueError):
    """An API price file that cannot be used, naming the file, row and column."""


def _price(path: Path, row_no: int, column: str, text: str | None, required: bool) -> float | None:
    text = (text or "").strip()
    if not text:
        if required:
            raise PriceFileError(f"{path}: row {row_no}: {column} is empty")
        return None
    try:
        value = float(text)
    except ValueError:
        raise PriceFileError(f"{path}: row {row_no}: {column} {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise PriceFileError(f"{path}: row {row_no}: {column} {text!r} is not a price (a number >= 0)")
    return value


def load_api_prices(path: Path) -> pd.DataFrame:
    """The price file as a DataFrame (model and the three prices), or a PriceFileError naming what is wrong."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in ("model", *PRICE_COLUMNS) if c not in header]
    if missing:
        raise PriceFileError(f"{path}: the header lacks {', '.join(missing)} (it has: {', '.join(header) or 'none'})")
    unknown = set(header) - {"model", *PRICE_COLUMNS, *OPTIONAL_COLUMNS, "provider"}
    if unknown:
        raise PriceFileError(f"{path}: unknown column(s) {', '.join(sorted(unknown))}")
    rows, seen = [], {}
    for row_no, raw in enumerate(reader, start=2):
        raw = {(k or "").strip(): v for k, v in raw.items()}
        model = (raw.get("model") or "").strip()
        if not model:
            raise PriceFileError(f"{path}: row {row_no}: model is empty")
        if model in seen:
            raise PriceFileError(f"{path}: rows {seen[model]} and {row_no} both price {model!r}")
        seen[model] = row_no
        prices = {c: _price(path, row_no, c, raw.get(c), True) for c in PRICE_COLUMNS}
        prices |= {c: _price(path, row_no, c, raw.get(c), False) for c in OPTIONAL_COLUMNS}
        rows.append({"model": model, **prices, "provider": (raw.get("provider") or "").strip() or None})
    if not rows:
        raise PriceFileError(f"{path}: no prices (a header and at least one row)")
    return pd.DataFrame(rows)


_USAGE_SQL = """
    WITH period AS (
        SELECT * FROM fct_request_cost WHERE request_date BETWEEN ? AND ? AND NOT served_from_cache
    ),
    usage AS (
        SELECT model, count(*) AS requests, sum(prompt_tokens) AS prompt_tokens,
               sum(coalesce(cached_prompt_tokens, 0)) AS cached_prompt_tokens,
               sum(completion_tokens) AS completion_tokens, sum(fully_loaded_cost_usd) AS self_hosted_cost_usd,
               sum(capex_cost_usd + overhead_cost_usd) AS capacity_cost_usd,
               sum(coalesce(energy_cost_usd, 0)) AS energy_cost_usd, sum(device_share_s) AS busy_device_s,
               count(*) FILTER (WHERE cost_caveat IS NOT NULL) AS requests_with_caveat,
               list(DISTINCT device_type) FILTER (WHERE device_type IS NOT NULL) AS device_types
        FROM period GROUP BY model
    ),
    idle_power AS (
        SELECT device_type, sum(idle_energy_cost_usd) / nullif(sum(idle_s), 0) AS idle_energy_cost_usd_per_s
        FROM agg_idle_cost WHERE partition_date BETWEEN ? AND ? GROUP BY device_type
    ),
    utilization AS (
        SELECT model, sum(utilization * devices) / nullif(sum(devices), 0) AS utilization
        FROM agg_daily_model_cost WHERE request_date BETWEEN ? AND ? GROUP BY model
    )
    SELECT usage.*, utilization.utilization,
           (SELECT avg(idle_energy_cost_usd_per_s) FROM idle_power
             WHERE list_contains(usage.device_types, idle_power.device_type)) AS idle_energy_cost_usd_per_s
    FROM usage LEFT JOIN utilization USING (model)
"""


def break_even_utilization(capacity_per_s: float, busy_energy_per_s: float, idle_per_s: float, api_per_s: float):
    """u* = (c + i) / (a - e + i): the busy fraction above which self-hosting costs less than the API; None when
    no utilization up to 1 gets there at the measured throughput."""
    denominator = api_per_s - busy_energy_per_s + idle_per_s
    if denominator <= 0:
        return None
    u = (capacity_per_s + idle_per_s) / denominator
    return u if u <= 1 else None


def _api_cost(row, prices: dict) -> float:
    cached_price = prices.get("cached_input_usd_per_1m_tokens")
    if cached_price is None or cached_price != cached_price:  # empty (None, or NaN in a DataFrame)
        cached_price = prices["input_usd_per_1m_tokens"]
    fresh_input = row.prompt_tokens - row.cached_prompt_tokens
    return (
        fresh_input * prices["input_usd_per_1m_tokens"]
        + row.cached_prompt_tokens * cached_price
        + row.completion_tokens * prices["output_usd_per_1m_tokens"]
    ) / 1e6


def shadow_prices(con: duckdb.DuckDBPyConnection, prices: pd.DataFrame, first: date, last: date) -> pd.DataFrame:
    """Per model served from ``first`` to ``last`` (inclusive): self-hosted cost beside the API's, and u*."""
    usage = con.execute(_USAGE_SQL, [first, last] * 3).df()
    by_model = {r["model"]: r for r in prices.to_dict("records")}
    out = []
    for row in usage.itertuples():
        tokens = row.prompt_tokens + row.completion_tokens
        price = by_model.get(row.model)
        api = _api_cost(row, price) if price else None
        busy = row.busy_device_s or 0.0
        idle_per_s = 0.0 if pd.isna(row.idle_energy_cost_usd_per_s) else row.idle_energy_cost_usd_per_s
        u_star = (
            break_even_utilization(row.capacity_cost_usd / busy, row.energy_cost_usd / busy, idle_per_s, api / busy)
            if api is not None and busy > 0
            else None
        )
        out.append(
            {
                "model": row.model,
                "requests": row.requests,
                "tokens": tokens,
                "self_hosted_cost_usd": row.self_hosted_cost_usd,
                "api_cost_usd": api,
                "self_hosted_usd_per_1m_tokens": 1e6 * row.self_hosted_cost_usd / tokens if tokens else None,
                "api_usd_per_1m_tokens": 1e6 * api / tokens if api is not None and tokens else None,
                # the project's savings vocabulary: negative = self-hosting is cheaper than the API
                "cost_change_pct": 100 * (row.self_hosted_cost_usd - api) / api if api else None,
                "utilization": row.utilization,
                "break_even_utilization": u_star,
                "requests_with_caveat": row.requests_with_caveat,
                "note": None if price else "no API price for this model in the price file",
            }
        )
    return pd.DataFrame(out)
