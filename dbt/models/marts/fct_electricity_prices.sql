-- every priced interval of every region in USD: published, or filled in (flagged)
with prices as (
    select * from {{ ref('int_prices_usd') }}
)

select
    region,
    market,
    interval_start,
    interval_end,
    currency,
    price_per_mwh,
    price_usd_per_mwh,
    price_filled,
    price_filled_from
from prices
