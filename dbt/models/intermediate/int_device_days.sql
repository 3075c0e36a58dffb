{{ config(materialized="incremental", pre_hook="{{ delete_run_rows(in_run_days('partition_date')) }}") }}
-- every inventory device on every loaded day: what it measured, what requests used, and what stayed idle
with inventory as (
    select * from {{ ref('int_inventory_usd') }}
),

buckets as (
    select * from {{ ref('stg_device_energy_buckets') }} where {{ in_run_days('partition_date') }}
),

rates as (
    select * from {{ ref('int_device_bucket_rates') }} where {{ in_run_days('partition_date') }}
),

pieces as (
    select * from {{ ref('int_request_cost_pieces') }} where {{ in_run_days('partition_date') }}
),

loaded_days as (
    select distinct partition_date from buckets
    union
    select distinct partition_date from pieces
),

priced_buckets as (
    select
        buckets.*,
        buckets.idle_energy_j * rates.pue / 3.6e9 * rates.price_usd_per_mwh as idle_energy_cost_usd
    from buckets
    inner join rates
        on buckets.device_id = rates.device_id
        and buckets.bucket_start = rates.bucket_start
    where rates.inventory_usable
),

bucket_totals as (
    select
        partition_date,
        device_id,
        sum(metered_s) as metered_s,
        sum(busy_s) as busy_s,
        sum(unmetered_s) as unmetered_s,
        sum(metered_energy_j) as metered_energy_j,
        sum(busy_energy_j) as busy_energy_j,
        sum(idle_energy_j) as idle_energy_j,
        sum(idle_energy_cost_usd) as idle_energy_cost_usd
    from priced_buckets
    group by all
),

request_totals as (
    select
        partition_date,
        device_id,
        count(distinct request_id) as requests,
        sum(energy_j) as request_energy_j,
        sum(device_share_s) as request_share_s,
        sum(energy_cost_usd) as request_energy_cost_usd,
        sum(capex_cost_usd) as request_capex_cost_usd,
        sum(overhead_cost_usd) as request_overhead_cost_usd,
        -- what the proportional idle shares are proportional to (macros/idle_shares.sql)
        sum({{ piece_direct_cost_usd() }}) as request_direct_cost_usd
    from pieces
    group by all
),

device_days as (
    select
        loaded_days.partition_date,
        inventory.device_id,
        inventory.host,
        inventory.region,
        inventory.device_type,
        {{ capex_usd_per_s_on('loaded_days.partition_date') }} as capex_usd_per_s,
        inventory.overhead_usd_per_s
    from inventory
    cross join loaded_days
)

select
    device_days.partition_date,
    device_days.device_id,
    device_days.host,
    device_days.region,
    device_days.device_type,
    86400.0 as day_s,
    coalesce(bucket_totals.metered_s, 0) as metered_s,
    coalesce(bucket_totals.busy_s, 0) as busy_s,
    86400.0 - coalesce(bucket_totals.metered_s, 0) as unmetered_s,
    coalesce(request_totals.requests, 0) as requests,
    coalesce(bucket_totals.metered_energy_j, 0) as metered_energy_j,
    coalesce(request_totals.request_energy_j, 0) as request_energy_j,
    coalesce(bucket_totals.idle_energy_j, 0) as idle_energy_j,
    coalesce(request_totals.request_share_s, 0) as request_share_s,
    86400.0 - coalesce(request_totals.request_share_s, 0) as idle_s,
    coalesce(request_totals.request_energy_cost_usd, 0) as request_energy_cost_usd,
    coalesce(request_totals.request_capex_cost_usd, 0) as request_capex_cost_usd,
    coalesce(request_totals.request_overhead_cost_usd, 0) as request_overhead_cost_usd,
    coalesce(request_totals.request_direct_cost_usd, 0) as request_direct_cost_usd,
    coalesce(bucket_totals.idle_energy_cost_usd, 0) as idle_energy_cost_usd,
    (86400.0 - coalesce(request_totals.request_share_s, 0)) * device_days.capex_usd_per_s as idle_capex_cost_usd,
    (86400.0 - coalesce(request_totals.request_share_s, 0)) * device_days.overhead_usd_per_s
        as idle_overhead_cost_usd,
    86400.0 * device_days.capex_usd_per_s as day_capex_cost_usd,
    86400.0 * device_days.overhead_usd_per_s as day_overhead_cost_usd
from device_days
left join bucket_totals
    on device_days.partition_date = bucket_totals.partition_date
    and device_days.device_id = bucket_totals.device_id
left join request_totals
    on device_days.partition_date = request_totals.partition_date
    and device_days.device_id = request_totals.device_id
