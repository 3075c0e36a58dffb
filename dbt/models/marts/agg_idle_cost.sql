{{ config(materialized="incremental", pre_hook="{{ delete_run_rows(in_run_days('partition_date')) }}") }}
-- what each device cost on each day while no request used it
with device_days as (
    select * from {{ ref('int_device_days') }} where {{ in_run_days('partition_date') }}
)

select
    partition_date,
    device_id,
    host,
    region,
    device_type,
    '{{ var("idle_sharing_policy") }}' as idle_sharing_policy,
    requests,
    busy_s,
    idle_s,
    metered_s,
    unmetered_s,
    metered_energy_j / 3.6e6 as metered_energy_kwh,
    idle_energy_j / 3.6e6 as idle_energy_kwh,
    idle_energy_j / nullif(metered_energy_j, 0) as idle_energy_share,
    idle_energy_cost_usd,
    idle_capex_cost_usd,
    idle_overhead_cost_usd,
    {{ device_day_idle_cost_usd() }} as idle_cost_usd,
    request_energy_cost_usd + request_capex_cost_usd + request_overhead_cost_usd as request_cost_usd
from device_days
