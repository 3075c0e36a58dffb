with regions as (
    select * from {{ source('raw', 'raw_regions') }}
)

select
    region,
    interval_minutes
from regions
