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
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingAccountType", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription",
    "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart", "ConsumedQuantity", "ConsumedUnit",
    "ContractedCost", "ContractedUnitPrice", "EffectiveCost", "InvoiceIssuerName", "ListCost", "ListUnitPrice",
    "PricingCategory", "PricingCurrency", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName",
    "RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType", "ServiceCategory", "ServiceName",
    "ServiceSubcategory", "SkuId", "SkuPriceId", "SubAccountId", "SubAccountName", "SubAccountType", "Tags",
]
CUSTOM_COLUMNS = [
    "x_Model", "x_ModelFamily", "x_Technique", "x_InputTokens", "x_OutputTokens", "x_Requests", "x_EnergyKwh",
    "x_FacilityEnergyKwh", "x_EnergyCostUsd", "x_CapexCostUsd", "x_OverheadCostUsd", "x_IdleCostUsd",
]


def focus_sql(start: date | None = None, end: date | None = None) -> str:
    settings = current()
    provider = settings.focus_provider.replace("'", "''")
    account = settings.focus_billing_account.replace("'", "''")
    where = []
    if start:
        where.append(f"f.request_date >= DATE '{start.isoformat()}'")
    if end:
        where.append(f"f.request_date <= DATE '{end.isoformat()}'")
    return f"""
    WITH requests AS (
        SELECT f.* REPLACE (coalesce(f.region, 'unknown') AS region)
        FROM fct_request_cost f
        {"WHERE " + " AND ".join(where) if where else ""}
    ),
    usage AS (
        SELECT request_date, region, coalesce(device_type, 'unknown') AS device_type, model, family, technique,
               coalesce(tenant, 'unassigned') AS tenant,
               count(*) AS requests, sum(prompt_tokens) AS input_tokens, sum(completion_tokens) AS output_tokens,
               sum(coalesce(fully_loaded_cost_usd, 0)) AS cost_usd, sum(coalesce(energy_j, 0)) / 3.6e6 AS energy_kwh,
               sum(coalesce(facility_energy_j, 0)) / 3.6e6 AS facility_energy_kwh,
               sum(coalesce(energy_cost_usd, 0)) AS energy_cost_usd, sum(coalesce(capex_cost_usd, 0)) AS capex_usd,
               sum(coalesce(overhead_cost_usd, 0)) AS overhead_usd, sum(idle_cost_allocated_usd) AS idle_usd
        FROM requests GROUP BY ALL
    )
    SELECT
        cost_usd AS BilledCost,
        '{account}' AS BillingAccountId,
        '{account}' AS BillingAccountName,
        'Internal' AS BillingAccountType,
        'USD' AS BillingCurrency,
        (date_trunc('month', request_date) + INTERVAL 1 MONTH)::TIMESTAMPTZ AS BillingPeriodEnd,
        date_trunc('month', request_date)::TIMESTAMPTZ AS BillingPeriodStart,
        'Usage' AS ChargeCategory,
        NULL::VARCHAR AS ChargeClass,
        model || ' inference (' || technique || ') on ' || device_type || ' in ' || region || ' for ' || tenant
            AS ChargeDescription,
        'Usage-Based' AS ChargeFrequency,
        (request_date + INTERVAL 1 DAY)::TIMESTAMPTZ AS ChargePeriodEnd,
        request_date::TIMESTAMPTZ AS ChargePeriodStart,
        (input_tokens + output_tokens)::DECIMAL(38, 0) AS ConsumedQuantity,
        'Tokens' AS ConsumedUnit,
        cost_usd AS ContractedCost,
        cost_usd / nullif(input_tokens + output_tokens, 0) AS ContractedUnitPrice,
        cost_usd AS EffectiveCost,
        '{provider}' AS InvoiceIssuerName,
        cost_usd AS ListCost,
        cost_usd / nullif(input_tokens + output_tokens, 0) AS ListUnitPrice,
        'Standard' AS PricingCategory,
        'USD' AS PricingCurrency,
        (input_tokens + output_tokens)::DECIMAL(38, 0) AS PricingQuantity,
        'Tokens' AS PricingUnit,
        '{provider}' AS ProviderName,
        '{provider}' AS PublisherName,
        region AS RegionId,
        region AS RegionName,
        region || '/' || device_type || '/' || model AS ResourceId,
        model || ' on ' || device_type AS ResourceName,
        device_type AS ResourceType,
        'AI and Machine Learning' AS ServiceCategory,
        'LLM Inference' AS ServiceName,
        'Generative AI' AS ServiceSubcategory,
        model AS SkuId,
        model || ':' || technique AS SkuPriceId,
        tenant AS SubAccountId,
        tenant AS SubAccountName,
        'Tenant' AS SubAccountType,
        to_json(map(['model', 'technique', 'tenant'], [model, technique, tenant]))::VARCHAR AS Tags,
        model AS x_Model,
        family AS x_ModelFamily,
        technique AS x_Technique,
        input_tokens AS x_InputTokens,
        output_tokens AS x_OutputTokens,
        requests AS x_Requests,
        energy_kwh AS x_EnergyKwh,
        facility_energy_kwh AS x_FacilityEnergyKwh,
        energy_cost_usd AS x_EnergyCostUsd,
        capex_usd AS x_CapexCostUsd,
        overhead_usd AS x_OverheadCostUsd,
        idle_usd AS x_IdleCostUsd
    FROM usage
    ORDER BY ChargePeriodStart, RegionId, ResourceType, SkuId, x_Technique, SubAccountId
    """


def export_focus(con: duckdb.DuckDBPyConnection, out: Path, start: date | None = None,
                 end: date | None = None) -> int:
    """Write FOCUS rows to ``out`` (.csv or .parquet). Returns the row count."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fmt = "PARQUET" if out.suffix == ".parquet" else "CSV, HEADER"
    sql = focus_sql(start, end)
    con.execute(f"COPY ({sql}) TO '{out}' (FORMAT {fmt})")
    return con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0]
