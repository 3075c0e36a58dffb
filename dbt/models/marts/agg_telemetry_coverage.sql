{{ config(materialized="incremental", pre_hook="{{ delete_run_rows(in_run_days('partition_date')) }}") }}
-- how much of each device-day the telemetry covered, and which requests ran in its gaps
with device_days as (
    select * from {{ ref('int_device_days') }} where {{ in_run_days('partition_date') }}
),

pieces as (
    select * from {{ ref('int_request_cost_pieces') }} where {{ in_run_days('partition_date') }}
),

gap_requests as (
    select
        partition_date,
        device_id,
        count(distinct request_id) as requests_partly_unmetered,
        sum(unmetered_s) as request_unmetered_s
    from pieces
    where unmetered_s > 0
    group by all
)

select
    device_days.partition_date,
    device_days.device_id,
    device_days.host,
    device_days.device_type,
    device_days.metered_s,
    device_days.unmetered_s,
    device_days.metered_s / device_days.day_s as coverage,
    device_days.requests,
    coalesce(gap_requests.requests_partly_unmetered, 0) as requests_partly_unmetered,
    coalesce(gap_requests.request_unmetered_s, 0) as request_unmetered_s
from device_days
left join gap_requests
    on device_days.partition_date = gap_requests.partition_date
    and device_days.device_id = gap_requests.device_id
