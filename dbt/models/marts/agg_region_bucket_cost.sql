{{ config(materialized="incremental", pre_hook="{{ delete_run_rows(in_run_days('partition_date')) }}") }}
-- what the requests of each region drew and paid in each price bucket, beside the bucket's price
with pieces as (
    select * from {{ ref('int_request_cost_pieces') }} where {{ in_run_days('partition_date') }}
)

select
    partition_date,
    region,
    bucket_start,
    any_value(price_usd_per_mwh) as price_usd_per_mwh,
    bool_or(price_filled) as price_filled,
    count(distinct request_id) as requests,
    sum(energy_j) as energy_j,
    sum(facility_energy_j) as facility_energy_j,
    sum(device_share_s) as device_share_s,
    sum(energy_cost_usd) as energy_cost_usd,
    sum(capex_cost_usd) as capex_cost_usd,
    sum(overhead_cost_usd) as overhead_cost_usd,
    sum(emissions_g_co2e) as emissions_g_co2e
from pieces
group by all
