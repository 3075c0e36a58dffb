{{ config(materialized="view") }}
-- each request with its durations, the model's family, its defaults filled in and its technique label. A view: a
-- reader's filter on request_date reaches the raw requests' scan, so a run reads its days only, and the history
-- does not hold every request twice (stored, this table took 42 bytes a request and about 2.3 s of a 64-accelerator
-- day's dbt run to write; the readers of both request views took 0.2 s longer on day 31)
with requests as (
    select * from {{ ref('stg_requests') }}
),

models as (
    select * from {{ ref('stg_models') }}
)

select
    requests.request_id,
    requests.request_date,
    requests.started_at,
    requests.first_token_at,
    requests.ended_at,
    (epoch_us(requests.ended_at) - epoch_us(requests.started_at)) / 1e6 as duration_s,
    (epoch_us(requests.first_token_at) - epoch_us(requests.started_at)) / 1e6 as time_to_first_token_s,
    requests.model,
    models.family,
    models.model is not null as model_known,
    requests.replica_id,
    requests.device_id,
    requests.host,
    requests.prompt_tokens,
    requests.completion_tokens,
    coalesce(requests.cached_prompt_tokens, 0) as cached_prompt_tokens,
    coalesce(requests.quantization, models.baseline_precision) as precision,
    requests.speculative,
    coalesce(requests.batching, 'continuous') as batching,
    -- every technique the request used, against the model's baseline; 'baseline' when none
    coalesce(nullif(concat_ws('+',
        case when requests.quantization is not null and requests.quantization <> models.baseline_precision
            then 'quant:' || requests.quantization end,
        case when requests.speculative is not null and requests.speculative <> 'none'
            then 'spec:' || requests.speculative end,
        case when requests.batching is not null and requests.batching <> 'continuous'
            then 'batching:' || requests.batching end,
        case when models.distilled_from is not null then 'distilled' end,
        case when models.is_moe then 'moe' end
    ), ''), 'baseline') as technique,
    coalesce(models.baseline_model, requests.model) as baseline_model,
    requests.tenant,
    requests.labels,
    requests.status,
    requests.estimated_fields
from requests
left join models on requests.model = models.model
