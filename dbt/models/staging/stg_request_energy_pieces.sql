with pieces as (
    select * from {{ source('raw', 'request_energy_pieces') }}
)

select
    partition_date,
    request_id,
    device_id,
    bucket_start,
    energy_j,
    device_share_s,
    unmetered_s,
    energy_uncertainty_j,
    prefill_energy_j,
    decode_energy_j
from pieces
