-- Prices per region and interval (in the market's currency), with missing intervals filled by a documented rule:
-- every interval of a day that has any price in the region is priced; an interval no file published takes the
-- price of the nearest published interval before it (else after it) at most price_fill_max_hours away, and is
-- flagged price_filled with the interval it came from. Intervals farther from any price stay unpriced.
-- Duplicates never reach here: the ingest keeps the first (by file name, then line) and quarantines the others.
with prices as (
    select * from {{ ref('stg_prices') }}
),

regions as (
    select * from {{ ref('stg_regions') }}
),

published as (
    select region, market, interval_start, interval_end, currency, price_per_mwh
    from prices
),

region_days as (
    select
        published.region,
        regions.interval_minutes,
        timezone('UTC', date_trunc('day', timezone('UTC', min(published.interval_start)))) as first_day,
        timezone('UTC', date_trunc('day', timezone('UTC', max(published.interval_start))))
            + interval 1 day as end_day
    from published
    inner join regions on published.region = regions.region
    group by all
),

slots as (
    select
        region,
        interval_minutes,
        unnest(generate_series(first_day, end_day - to_minutes(interval_minutes), to_minutes(interval_minutes)))
            as interval_start
    from region_days
),

missing_slots as (
    select
        slots.region,
        slots.interval_start,
        slots.interval_start + to_minutes(slots.interval_minutes) as interval_end
    from slots
    where not exists (
        select 1 from published
        where published.region = slots.region
          and published.interval_start < slots.interval_start + to_minutes(slots.interval_minutes)
          and published.interval_end > slots.interval_start
    )
),

nearest_published as (
    select
        missing_slots.region,
        missing_slots.interval_start,
        missing_slots.interval_end,
        before.interval_start as before_start,
        before.interval_end as before_end,
        after.interval_start as after_start
    from missing_slots
    asof left join published as before
        on missing_slots.region = before.region and missing_slots.interval_start >= before.interval_start
    asof left join published as after
        on missing_slots.region = after.region and missing_slots.interval_start <= after.interval_start
),

filled as (
    select
        nearest_published.region,
        source.market,
        nearest_published.interval_start,
        nearest_published.interval_end,
        source.currency,
        source.price_per_mwh,
        true as price_filled,
        source.interval_start as price_filled_from
    from nearest_published
    inner join published as source
        on source.region = nearest_published.region
        and source.interval_start = case
            when nearest_published.interval_start - nearest_published.before_end
                 <= to_minutes(cast({{ var('price_fill_max_hours') }} * 60 as bigint))
                then nearest_published.before_start
            when nearest_published.after_start - nearest_published.interval_end
                 <= to_minutes(cast({{ var('price_fill_max_hours') }} * 60 as bigint))
                then nearest_published.after_start
        end
),

all_intervals as (
    select *, false as price_filled, null::timestamptz as price_filled_from from published
    union all by name
    select * from filled
)

select
    region,
    market,
    interval_start,
    interval_end,
    currency,
    price_per_mwh,
    price_filled,
    price_filled_from
from all_intervals
