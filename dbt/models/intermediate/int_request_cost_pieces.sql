{{ config(materialized="view") }}
-- each piece of a request (device x price bucket) priced at its own interval's price. A view: it is the kernel's
-- pieces beside their bucket's rates, so storing it held every piece twice (86 bytes a piece, the warehouse's second
-- largest table) and took about 1.6 s of a 64-accelerator day's dbt run to write. A reader's filter on
-- partition_date reaches both scans through the join's partition_date (a piece and its bucket are stored under the
-- same day by the attribution's one test of "inside the day": pipelines/attribution/day.py)
with pieces as (
    select * from {{ ref('stg_request_energy_pieces') }}
),

rates as (
    select * from {{ ref('int_device_bucket_rates') }}
)

select
    pieces.partition_date,
    pieces.request_id,
    pieces.device_id,
    pieces.bucket_start,
    rates.region,
    rates.device_type,
    coalesce(rates.inventory_usable, false) as inventory_usable,
    rates.price_usd_per_mwh is not null as priced,
    coalesce(rates.price_filled, false) as price_filled,
    coalesce(rates.before_in_service, false) as before_in_service,
    coalesce(rates.amortization_ended, false) as amortization_ended,
    rates.in_service_from,
    rates.amortized_until,
    pieces.energy_j,
    pieces.energy_j * rates.pue as facility_energy_j,
    pieces.prefill_energy_j,
    pieces.decode_energy_j,
    pieces.device_share_s,
    pieces.unmetered_s,
    pieces.energy_uncertainty_j,
    rates.price_usd_per_mwh,
    -- J -> MWh is / 3.6e9
    pieces.energy_j * rates.pue / 3.6e9 * rates.price_usd_per_mwh as energy_cost_usd,
    pieces.device_share_s * rates.capex_usd_per_s as capex_cost_usd,
    pieces.device_share_s * rates.overhead_usd_per_s as overhead_cost_usd,
    -- facility energy in kWh x grid intensity
    pieces.energy_j * rates.pue / 3.6e6 * rates.g_co2e_per_kwh as emissions_g_co2e
from pieces
left join rates
    on pieces.partition_date = rates.partition_date
    and pieces.device_id = rates.device_id
    and pieces.bucket_start = rates.bucket_start
