-- every priced interval in USD, at the rate of the interval's UTC day
with prices as (
    select * from {{ ref('int_prices_filled') }}
),

fx_rate_periods as (
    select * from {{ ref('int_fx_rate_periods') }}
)

select
    prices.region,
    prices.market,
    prices.interval_start,
    prices.interval_end,
    prices.currency,
    prices.price_per_mwh,
    prices.price_per_mwh * fx_rate_periods.usd_per_unit as price_usd_per_mwh,
    prices.price_filled,
    prices.price_filled_from
from prices
left join fx_rate_periods
    on prices.currency = fx_rate_periods.currency
    and cast(timezone('UTC', prices.interval_start) as date) >= fx_rate_periods.valid_from
    and cast(timezone('UTC', prices.interval_start) as date) < fx_rate_periods.valid_to
