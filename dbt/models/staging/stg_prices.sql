with prices as (
    select * from {{ source('raw', 'raw_prices') }}
),

fx_rates as (
    select * from {{ ref('stg_fx_rates') }}
)

select
    prices.region,
    prices.market,
    prices.interval_start,
    prices.interval_end,
    prices.currency,
    prices.price_per_mwh,
    prices.price_per_mwh * fx_rates.usd_per_unit as price_usd_per_mwh
from prices
left join fx_rates on prices.currency = fx_rates.currency
