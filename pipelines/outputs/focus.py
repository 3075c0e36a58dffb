"""Export inference cost as FinOps FOCUS 1.2 cost and usage rows.

One row per UTC day, region, device type, model, technique and tenant: a Usage charge whose consumed quantity is
tokens (input + output). Idle capacity that no request was charged for (all of it under the idle policy ``none``;
device-days without requests under the others) is its own Usage row per day, region and device type (SubAccountId
``unallocated``, consumed unit ``Hours`` of idle device time), so the export always sums to the fleet's cost:
every device-day's request cost plus its idle cost (agg_idle_cost). The fleet is self-hosted, so there is no invoice discount between list and billed cost:
BilledCost = EffectiveCost = ListCost = ContractedCost = the fully loaded cost (energy, capex, overhead and the
idle share), in USD. Energy, the cost components and the model go into ``x_`` columns, as FOCUS asks of
provider-specific data. Provider and account names come from INFERCOST_FOCUS_PROVIDER and
INFERCOST_FOCUS_BILLING_ACCOUNT.

Timestamps are written as the spec writes them, ``YYYY-MM-DDTHH:MM:SSZ`` (UTC), in CSV and JSON; Parquet holds
them as UTC timestamps. The file's extension picks the format (.csv, .json, .parquet); any other is refused. The
file is written by Python (pipelines/outputs/table_files.py), whole or not at all.

Pure DuckDB and pyarrow; imports no Dagster.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from pipelines.outputs.table_files import write_batches
from pipelines.settings import current
from pipelines.warehouse.connection import sql_str

FOCUS_VERSION = "1.2"

# the FOCUS 1.2 columns this export fills (the spec's mandatory columns, plus conditional ones that apply)
FOCUS_COLUMNS = [
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingAccountType",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingCurrency",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
]
CUSTOM_COLUMNS = [
    "x_Model",
    "x_ModelFamily",
    "x_Technique",
    "x_InputTokens",
    "x_OutputTokens",
    "x_Requests",
    "x_EnergyKwh",
    "x_FacilityEnergyKwh",
    "x_EnergyCostUsd",
    "x_CapexCostUsd",
    "x_OverheadCostUsd",
    "x_IdleCostUsd",
]


# each exported column and the SQL that fills it from one row of ``charges`` (a day, region, device type, model,
# technique and tenant; or a day, region and device type's unallocated idle capacity); {account} and {provider} are
# the settings' names, quoted. The four *Period* columns are UTC timestamps (see _timestamp).
_SELECT = [
    ("BilledCost", "cost_usd"),
    ("BillingAccountId", "{account}"),
    ("BillingAccountName", "{account}"),
    ("BillingAccountType", "'Internal'"),
    ("BillingCurrency", "'USD'"),
    ("BillingPeriodEnd", "date_trunc('month', request_date) + INTERVAL 1 MONTH"),
    ("BillingPeriodStart", "date_trunc('month', request_date)"),
    ("ChargeCategory", "'Usage'"),
    ("ChargeClass", "NULL::VARCHAR"),
    ("ChargeDescription", "description"),
    ("ChargeFrequency", "'Usage-Based'"),
    ("ChargePeriodEnd", "request_date + INTERVAL 1 DAY"),
    ("ChargePeriodStart", "request_date::TIMESTAMP"),
    ("ConsumedQuantity", "quantity::DECIMAL(38, 6)"),
    ("ConsumedUnit", "unit"),
    ("ContractedCost", "cost_usd"),
    ("ContractedUnitPrice", "cost_usd / nullif(quantity, 0)"),
    ("EffectiveCost", "cost_usd"),
    ("InvoiceIssuerName", "{provider}"),
    ("ListCost", "cost_usd"),
    ("ListUnitPrice", "cost_usd / nullif(quantity, 0)"),
    ("PricingCategory", "'Standard'"),
    ("PricingCurrency", "'USD'"),
    ("PricingQuantity", "quantity::DECIMAL(38, 6)"),
    ("PricingUnit", "unit"),
    ("ProviderName", "{provider}"),
    ("PublisherName", "{provider}"),
    ("RegionId", "region"),
    ("RegionName", "region"),
    ("ResourceId", "resource_id"),
    ("ResourceName", "resource_name"),
    ("ResourceType", "device_type"),
    ("ServiceCategory", "'AI and Machine Learning'"),
    ("ServiceName", "'LLM Inference'"),
    ("ServiceSubcategory", "'Generative AI'"),
    ("SkuId", "sku"),
    ("SkuPriceId", "sku_price"),
    ("SubAccountId", "tenant"),
    ("SubAccountName", "tenant"),
    ("SubAccountType", "'Tenant'"),
    # requests: their labels (INFERCOST_REQUEST_LABELS), then model, technique and tenant, which win a clash of keys
    ("Tags", "tags"),
    ("x_Model", "model"),
    ("x_ModelFamily", "family"),
    ("x_Technique", "technique"),
    ("x_InputTokens", "input_tokens"),
    ("x_OutputTokens", "output_tokens"),
    ("x_Requests", "requests"),
    ("x_EnergyKwh", "energy_kwh"),
    ("x_FacilityEnergyKwh", "facility_energy_kwh"),
    ("x_EnergyCostUsd", "energy_cost_usd"),
    ("x_CapexCostUsd", "capex_usd"),
    ("x_OverheadCostUsd", "overhead_usd"),
    ("x_IdleCostUsd", "idle_usd"),
]
_TIMESTAMPS = {"BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart"}
# the SubAccountId of idle capacity no request was charged for
UNALLOCATED = "unallocated"
# an unallocated idle cost below this (USD per day, region and device type) is the rounding of the allocation
_UNALLOCATED_MIN_USD = 1e-9

_CHARGES_SQL = """
    WITH requests AS (
        SELECT f.* REPLACE (coalesce(f.region, 'unknown') AS region, coalesce(f.device_type, 'unknown') AS device_type)
        FROM fct_request_cost f
        {where_requests}
    ),
    usage AS (
        SELECT request_date, region, device_type, model, family, technique,
               coalesce(tenant, 'unassigned') AS tenant,
               labels,
               count(*) AS requests, sum(prompt_tokens) AS input_tokens, sum(completion_tokens) AS output_tokens,
               -- as DOUBLE: a union of DECIMALs of different scales would round to the coarser one
               sum(coalesce(fully_loaded_cost_usd, 0))::DOUBLE AS cost_usd,
               sum(coalesce(energy_j, 0))::DOUBLE / 3.6e6 AS energy_kwh,
               sum(coalesce(facility_energy_j, 0))::DOUBLE / 3.6e6 AS facility_energy_kwh,
               sum(coalesce(energy_cost_usd, 0))::DOUBLE AS energy_cost_usd,
               sum(coalesce(capex_cost_usd, 0))::DOUBLE AS capex_usd,
               sum(coalesce(overhead_cost_usd, 0))::DOUBLE AS overhead_usd, sum(idle_cost_allocated_usd)::DOUBLE AS idle_usd
        FROM requests GROUP BY ALL
    ),
    allocated AS (
        SELECT request_date, region, device_type, sum(idle_cost_allocated_usd)::DOUBLE AS allocated_usd
        FROM requests GROUP BY ALL
    ),
    idle AS (
        SELECT partition_date AS request_date, coalesce(region, 'unknown') AS region,
               coalesce(device_type, 'unknown') AS device_type, sum(idle_cost_usd)::DOUBLE AS idle_cost_usd,
               sum(idle_s)::DOUBLE / 3600 AS idle_hours, sum(idle_energy_kwh)::DOUBLE AS idle_energy_kwh
        FROM agg_idle_cost {where_idle} GROUP BY ALL
    ),
    unallocated AS (
        SELECT i.*, i.idle_cost_usd - coalesce(a.allocated_usd, 0) AS unallocated_usd,
               (i.idle_cost_usd - coalesce(a.allocated_usd, 0)) / nullif(i.idle_cost_usd, 0) AS unallocated_share
        FROM idle i LEFT JOIN allocated a USING (request_date, region, device_type)
        WHERE i.idle_cost_usd - coalesce(a.allocated_usd, 0) > {min_usd}
    ),
    charges AS (
        SELECT *, 'Tokens' AS unit, input_tokens + output_tokens AS quantity,
               model || ' inference (' || technique || ') on ' || device_type || ' in ' || region || ' for ' || tenant
                   AS description,
               region || '/' || device_type || '/' || model AS resource_id, model || ' on ' || device_type
                   AS resource_name, model AS sku, model || ':' || technique AS sku_price,
               json_merge_patch(coalesce(labels, '{{}}'),
                                to_json(map(['model', 'technique', 'tenant'], [model, technique, tenant])))::VARCHAR
                   AS tags
        FROM usage
        UNION ALL BY NAME
        SELECT request_date, region, device_type, '{unallocated}' AS tenant, 0 AS requests, 0 AS input_tokens,
               0 AS output_tokens, unallocated_usd AS cost_usd, unallocated_share * idle_energy_kwh AS energy_kwh,
               unallocated_usd AS idle_usd, 'Hours' AS unit, unallocated_share * idle_hours AS quantity,
               'idle capacity of ' || device_type || ' in ' || region || ' that no request was charged for'
                   AS description,
               region || '/' || device_type || '/idle' AS resource_id, device_type || ' idle capacity' AS resource_name,
               'idle:' || device_type AS sku, 'idle:' || device_type AS sku_price,
               to_json(map(['idle', 'device_type'], ['{unallocated}', device_type]))::VARCHAR AS tags
        FROM unallocated
    )
"""


def _timestamp(expr: str, text: bool) -> str:
    """A UTC timestamp as FOCUS writes it in text (2026-11-02T00:00:00Z), or as a UTC TIMESTAMPTZ."""
    return f"strftime({expr}, '%Y-%m-%dT%H:%M:%SZ')" if text else f"timezone('UTC', {expr})"


def focus_sql(start: date | None = None, end: date | None = None, text_timestamps: bool = True) -> str:
    """The FOCUS rows for the days from ``start`` to ``end`` (inclusive; either open)."""
    settings = current()
    names = {"account": sql_str(settings.focus_billing_account), "provider": sql_str(settings.focus_provider)}

    def where(column: str) -> str:
        conds = [f"{column} >= DATE '{start.isoformat()}'"] if start else []
        conds += [f"{column} <= DATE '{end.isoformat()}'"] if end else []
        return "WHERE " + " AND ".join(conds) if conds else ""

    columns = ",\n        ".join(
        f"{_timestamp(expr, text_timestamps) if name in _TIMESTAMPS else expr.format(**names)} AS {name}"
        for name, expr in _SELECT
    )
    return (
        _CHARGES_SQL.format(
            where_requests=where("f.request_date"),
            where_idle=where("partition_date"),
            min_usd=_UNALLOCATED_MIN_USD,
            unallocated=UNALLOCATED,
        )
        + f"    SELECT\n        {columns}\n    FROM charges\n"
        + "    ORDER BY ChargePeriodStart, RegionId, ResourceType, SkuId, x_Technique, SubAccountId, Tags\n"
    )


FORMATS = {".csv": "csv", ".json": "json", ".parquet": "parquet"}


def export_focus(con: duckdb.DuckDBPyConnection, out: Path, start: date | None = None, end: date | None = None) -> int:
    """Write FOCUS rows to ``out`` (.csv, .json or .parquet; ValueError for any other). Returns the row count."""
    out = Path(out)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot write FOCUS to {out.name}: name the file .csv, .json or .parquet")
    out.parent.mkdir(parents=True, exist_ok=True)
    reader = con.sql(focus_sql(start, end, text_timestamps=fmt != "parquet")).to_arrow_reader(batch_size=100_000)
    return write_batches(reader.schema, reader, fmt, out)
