-- each currency's rate over the days it holds: an undated rate holds from the start, each rate until the next
with fx_rates as (
    select * from {{ ref('stg_fx_rates') }}
),

dated_rates as (
    select
        currency,
        usd_per_unit,
        coalesce(valid_from, date '1900-01-01') as valid_from
    from fx_rates
)

select
    currency,
    usd_per_unit,
    valid_from,
    lead(valid_from, 1, date '9999-12-31') over (partition by currency order by valid_from) as valid_to
from dated_rates
