with carbon as (
    select * from {{ source('raw', 'raw_carbon') }}
)

select
    region,
    interval_start,
    interval_end,
    g_co2e_per_kwh
from carbon
