with requests as (
    select * from {{ source('raw', 'raw_requests') }}
)

select
    request_id,
    partition_date as request_date,
    started_at,
    first_token_at,
    ended_at,
    model,
    replica_id,
    device_id,
    host,
    prompt_tokens,
    completion_tokens,
    cached_prompt_tokens,
    quantization,
    speculative,
    batching,
    tenant,
    labels,
    status,
    estimated_fields
from requests
