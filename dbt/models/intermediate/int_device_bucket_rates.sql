{{ config(materialized="incremental", pre_hook="{{ delete_run_rows(in_run_days('partition_date')) }}") }}
-- what one device-second and one joule cost on each device in each price bucket
with buckets as (
    select * from {{ ref('stg_device_energy_buckets') }} where {{ in_run_days('partition_date') }}
),

inventory as (
    select * from {{ ref('int_inventory_usd') }}
),

prices as (
    select * from {{ ref('int_prices_usd') }}
),

carbon as (
    select * from {{ ref('stg_carbon_intensity') }}
)

select
    buckets.partition_date,
    buckets.device_id,
    buckets.bucket_start,
    -- a device costs only with a usable inventory row: present (not missing or quarantined) and in USD
    coalesce(inventory.capex_usd_per_s is not null and inventory.overhead_usd_per_s is not null
        and inventory.pue is not null, false) as inventory_usable,
    inventory.region,
    inventory.device_type,
    inventory.pue,
    prices.price_usd_per_mwh,
    coalesce(prices.price_filled, false) as price_filled,
    carbon.g_co2e_per_kwh,
    -- outside its service window a device costs no capex: before in_service_from is a data error, after
    -- amortized_until a paid-off device (fct_request_cost says which, with the date)
    coalesce(buckets.partition_date < inventory.in_service_from, false) as before_in_service,
    coalesce(buckets.partition_date >= inventory.amortized_until, false) as amortization_ended,
    inventory.in_service_from,
    inventory.amortized_until,
    {{ capex_usd_per_s_on('buckets.partition_date') }} as capex_usd_per_s,
    inventory.overhead_usd_per_s
from buckets
left join inventory on buckets.device_id = inventory.device_id
left join prices
    on inventory.region = prices.region
    and buckets.bucket_start >= prices.interval_start
    and buckets.bucket_start < prices.interval_end
left join carbon
    on inventory.region = carbon.region
    and buckets.bucket_start >= carbon.interval_start
    and buckets.bucket_start < carbon.interval_end
