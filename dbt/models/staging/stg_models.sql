with models as (
    select * from {{ source('raw', 'raw_models') }}
)

select
    model,
    family,
    params_b,
    active_params_b,
    is_moe,
    distilled_from,
    baseline_precision,
    baseline_model
from models
