-- each piece of a request (device x price bucket) priced at its own interval's price
with pieces as (
    select * from {{ ref('stg_request_energy_pieces') }}
),

inventory as (
    select * from {{ ref('stg_inventory') }}
),

prices as (
    select * from {{ ref('stg_prices') }}
),

pieces_on_devices as (
    select
        pieces.*,
        inventory.region,
        inventory.device_type,
        inventory.pue,
        inventory.device_id is not null as device_known,
        case
            when pieces.partition_date >= inventory.in_service_from
                and pieces.partition_date < inventory.amortized_until
                then inventory.capex_usd_per_s
            else 0
        end as capex_usd_per_s,
        inventory.overhead_usd_per_s
    from pieces
    left join inventory on pieces.device_id = inventory.device_id
),

priced_pieces as (
    select
        pieces_on_devices.*,
        prices.price_usd_per_mwh
    from pieces_on_devices
    left join prices
        on pieces_on_devices.region = prices.region
        and pieces_on_devices.bucket_start >= prices.interval_start
        and pieces_on_devices.bucket_start < prices.interval_end
)

select
    partition_date,
    request_id,
    device_id,
    bucket_start,
    region,
    device_type,
    device_known,
    price_usd_per_mwh is not null as priced,
    energy_j,
    energy_j * pue as facility_energy_j,
    device_share_s,
    unmetered_s,
    price_usd_per_mwh,
    -- J -> MWh is / 3.6e9
    energy_j * pue / 3.6e9 * price_usd_per_mwh as energy_cost_usd,
    device_share_s * capex_usd_per_s as capex_cost_usd,
    device_share_s * overhead_usd_per_s as overhead_cost_usd
from priced_pieces
