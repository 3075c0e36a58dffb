-- each accelerator's ownership and running cost per second in USD (capex at the rate of its in_service_from)
with inventory as (
    select * from {{ ref('stg_inventory') }}
),

fx_rate_periods as (
    select * from {{ ref('int_fx_rate_periods') }}
)

select
    inventory.device_id,
    inventory.host,
    inventory.region,
    inventory.device_type,
    inventory.currency,
    inventory.purchase_cost,
    inventory.purchase_cost * fx_rate_periods.usd_per_unit as purchase_cost_usd,
    inventory.in_service_from,
    inventory.amortization_years,
    cast(inventory.in_service_from + to_days(cast(round(inventory.amortization_years * 365.25) as integer)) as date)
        as amortized_until,
    -- straight-line amortization over the period, per second of wall time
    inventory.purchase_cost * fx_rate_periods.usd_per_unit / (inventory.amortization_years * 365.25 * 86400)
        as capex_usd_per_s,
    inventory.overhead_per_hour * fx_rate_periods.usd_per_unit / 3600 as overhead_usd_per_s,
    inventory.tdp_w,
    inventory.idle_w,
    inventory.pue
from inventory
left join fx_rate_periods
    on inventory.currency = fx_rate_periods.currency
    and inventory.in_service_from >= fx_rate_periods.valid_from
    and inventory.in_service_from < fx_rate_periods.valid_to
