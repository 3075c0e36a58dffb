with buckets as (
    select * from {{ source('raw', 'device_energy_buckets') }}
)

select
    partition_date,
    device_id,
    bucket_start,
    span_s,
    metered_s,
    busy_s,
    unmetered_s,
    metered_energy_j,
    busy_energy_j,
    idle_energy_j
from buckets
