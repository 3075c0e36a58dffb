with prices as (
    select * from {{ source('raw', 'raw_prices') }}
)

select
    region,
    market,
    interval_start,
    interval_end,
    currency,
    price_per_mwh
from prices
