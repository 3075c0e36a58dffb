with inventory as (
    select * from {{ source('raw', 'raw_inventory') }}
)

select
    device_id,
    host,
    region,
    device_type,
    currency,
    purchase_cost,
    in_service_from,
    amortization_years,
    overhead_per_hour,
    tdp_w,
    idle_w,
    pue,
    power_draw_window_s
from inventory
