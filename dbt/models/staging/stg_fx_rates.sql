with fx_rates as (
    select * from {{ source('raw', 'raw_fx_rates') }}
)

select
    currency,
    usd_per_unit,
    valid_from
from fx_rates
