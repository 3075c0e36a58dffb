"""Export inference cost as FinOps FOCUS 1.2 cost and usage rows.

One row per UTC day, region, device type, model, technique and tenant: a Usage charge whose consumed quantity is
tokens (input + output). The fleet is self-hosted, so there is no invoice discount between list and billed cost:
BilledCost = EffectiveCost = ListCost = ContractedCost = the fully loaded cost (energy, capex, overhead and the
idle share), in USD. Energy, the cost components and the model go into ``x_`` columns, as FOCUS asks of
provider-specific data. Provider and account names come from INFERCOST_FOCUS_PROVIDER and
INFERCOST_FOCUS_BILLING_ACCOUNT.

Pure DuckDB; imports no Dagster.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from pipelines.settings import current

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


# each exported column and the SQL that fills it from one row of ``usage`` (a day, region, device type, model,
# technique and tenant); {account} and {provider} are the settings' names, quoted
_SELECT = [
    ("BilledCost", "cost_usd"),
    ("BillingAccountId", "{account}"),
    ("BillingAccountName", "{account}"),
    ("BillingAccountType", "'Internal'"),
    ("BillingCurrency", "'USD'"),
    ("BillingPeriodEnd", "(date_trunc('month', request_date) + INTERVAL 1 MONTH)::TIMESTAMPTZ"),
    ("BillingPeriodStart", "date_trunc('month', request_date)::TIMESTAMPTZ"),
    ("ChargeCategory", "'Usage'"),
    ("ChargeClass", "NULL::VARCHAR"),
    (
        "ChargeDescription",
        "model || ' inference (' || technique || ') on ' || device_type || ' in ' || region || ' for ' || tenant",
    ),
    ("ChargeFrequency", "'Usage-Based'"),
    ("ChargePeriodEnd", "(request_date + INTERVAL 1 DAY)::TIMESTAMPTZ"),
    ("ChargePeriodStart", "request_date::TIMESTAMPTZ"),
    ("ConsumedQuantity", "(input_tokens + output_tokens)::DECIMAL(38, 0)"),
    ("ConsumedUnit", "'Tokens'"),
    ("ContractedCost", "cost_usd"),
    ("ContractedUnitPrice", "cost_usd / nullif(input_tokens + output_tokens, 0)"),
    ("EffectiveCost", "cost_usd"),
    ("InvoiceIssuerName", "{provider}"),
    ("ListCost", "cost_usd"),
    ("ListUnitPrice", "cost_usd / nullif(input_tokens + output_tokens, 0)"),
    ("PricingCategory", "'Standard'"),
    ("PricingCurrency", "'USD'"),
    ("PricingQuantity", "(input_tokens + output_tokens)::DECIMAL(38, 0)"),
    ("PricingUnit", "'Tokens'"),
    ("ProviderName", "{provider}"),
    ("PublisherName", "{provider}"),
    ("RegionId", "region"),
    ("RegionName", "region"),
    ("ResourceId", "region || '/' || device_type || '/' || model"),
    ("ResourceName", "model || ' on ' || device_type"),
    ("ResourceType", "device_type"),
    ("ServiceCategory", "'AI and Machine Learning'"),
    ("ServiceName", "'LLM Inference'"),
    ("ServiceSubcategory", "'Generative AI'"),
    ("SkuId", "model"),
    ("SkuPriceId", "model || ':' || technique"),
    ("SubAccountId", "tenant"),
    ("SubAccountName", "tenant"),
    ("SubAccountType", "'Tenant'"),
    # the request labels (INFERCOST_REQUEST_LABELS), then model, technique and tenant, which win a clash of keys
    (
        "Tags",
        "json_merge_patch(coalesce(labels, '{{}}'), to_json(map(['model', 'technique', 'tenant'], "
        "[model, technique, tenant])))::VARCHAR",
    ),
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

_USAGE_SQL = """
    WITH requests AS (
        SELECT f.* REPLACE (coalesce(f.region, 'unknown') AS region)
        FROM fct_request_cost f
        {where}
    ),
    usage AS (
        SELECT request_date, region, coalesce(device_type, 'unknown') AS device_type, model, family, technique,
               coalesce(tenant, 'unassigned') AS tenant,
               labels,
               count(*) AS requests, sum(prompt_tokens) AS input_tokens, sum(completion_tokens) AS output_tokens,
               sum(coalesce(fully_loaded_cost_usd, 0)) AS cost_usd, sum(coalesce(energy_j, 0)) / 3.6e6 AS energy_kwh,
               sum(coalesce(facility_energy_j, 0)) / 3.6e6 AS facility_energy_kwh,
               sum(coalesce(energy_cost_usd, 0)) AS energy_cost_usd, sum(coalesce(capex_cost_usd, 0)) AS capex_usd,
               sum(coalesce(overhead_cost_usd, 0)) AS overhead_usd, sum(idle_cost_allocated_usd) AS idle_usd
        FROM requests GROUP BY ALL
    )
"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def focus_sql(start: date | None = None, end: date | None = None) -> str:
    """The FOCUS rows for the days from ``start`` to ``end`` (inclusive; either open)."""
    settings = current()
    names = {"account": _literal(settings.focus_billing_account), "provider": _literal(settings.focus_provider)}
    where = [f"f.request_date >= DATE '{start.isoformat()}'"] if start else []
    where += [f"f.request_date <= DATE '{end.isoformat()}'"] if end else []
    columns = ",\n        ".join(f"{expr.format(**names)} AS {name}" for name, expr in _SELECT)
    return (
        _USAGE_SQL.format(where="WHERE " + " AND ".join(where) if where else "")
        + f"    SELECT\n        {columns}\n    FROM usage\n"
        + "    ORDER BY ChargePeriodStart, RegionId, ResourceType, SkuId, x_Technique, SubAccountId, Tags\n"
    )


def export_focus(con: duckdb.DuckDBPyConnection, out: Path, start: date | None = None, end: date | None = None) -> int:
    """Write FOCUS rows to ``out`` (.csv or .parquet). Returns the row count."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fmt = "PARQUET" if out.suffix == ".parquet" else "CSV, HEADER"
    sql = focus_sql(start, end)
    con.execute(f"COPY ({sql}) TO {_literal(str(out))} (FORMAT {fmt})")
    return con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0]
