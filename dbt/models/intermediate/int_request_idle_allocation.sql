{{ config(materialized="incremental", pre_hook="{{ delete_run_rows(in_run_days('partition_date')) }}") }}
-- idle cost of each device-day handed to the requests that ran on it, by the idle_sharing_policy var; one row per
-- day and request (a request that runs past midnight takes a share on both days: fct_request_cost adds them)
{% set policy = var('idle_sharing_policy') %}
{% if policy not in ['none', 'proportional', 'even'] %}
    {{ exceptions.raise_compiler_error("idle_sharing_policy must be none, proportional or even, not " ~ policy) }}
{% endif %}

with pieces as (
    select * from {{ ref('int_request_cost_pieces') }} where {{ in_run_days('partition_date') }}
),

device_days as (
    select * from {{ ref('int_device_days') }} where {{ in_run_days('partition_date') }}
),

-- each request's share of each device-day it ran on, beside that device-day's idle cost (macros/idle_shares.sql)
{% if policy == 'proportional' %}
-- a share proportional to direct cost is the sum of its pieces' shares, so each piece takes its own (its direct cost
-- over its device-day's: int_device_days) and the pieces are grouped once, by day and request, below. Summed by (day,
-- device, request) first, every piece was grouped twice: on a 1,000-accelerator day (15.9M pieces) 9.1 to 9.7 s
-- against 5.6 to 6.2 s, the same allocations within 1e-14. fct_request_cost takes the same shares piece by piece
shares as (
    select
        pieces.partition_date,
        pieces.request_id,
        {{ proportional_idle_share('pieces.', 'device_days.') }} as idle_share,
        {{ device_day_idle_cost_usd('device_days.') }} as idle_cost_usd
    from pieces
    inner join device_days
        on pieces.partition_date = device_days.partition_date
        and pieces.device_id = device_days.device_id
)
{% else %}
request_device_days as (
    select
        partition_date,
        device_id,
        request_id
    from pieces
    group by all
),

shares as (
    select
        request_device_days.partition_date,
        request_device_days.request_id,
        -- a device-day's rows are all joined or none (the join's key is the window's partition)
        {% if policy == 'even' %}
        1.0 / count(*) over (partition by request_device_days.partition_date, request_device_days.device_id)
        {% else %}
        0.0
        {% endif %} as idle_share,
        {{ device_day_idle_cost_usd('device_days.') }} as idle_cost_usd
    from request_device_days
    inner join device_days
        on request_device_days.partition_date = device_days.partition_date
        and request_device_days.device_id = device_days.device_id
)
{% endif %}

select
    partition_date,
    request_id,
    sum(coalesce(idle_share, 0) * idle_cost_usd) as idle_cost_allocated_usd
from shares
group by all
