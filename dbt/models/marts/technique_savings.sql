-- each technique's cost per 1M output tokens against its baseline model's untreated requests; negative changes are
-- savings. Requests without a usable cost (unknown, or partial: a device without a usable inventory row, or used
-- before its in_service_from) and requests served from cache (no GPU ran them) are left out and counted.
-- Over the trailing comparison_days days (var, INFERCOST_COMPARISON_DAYS) up to the last loaded day, so that a
-- run reads a window, not the whole history.
with last_day as (
    select max(request_date) as request_date from {{ ref('agg_daily_model_cost') }}
),

requests as (
    select
        *,
        fully_loaded_cost_usd is not null and not inventory_missing and not device_before_in_service
            and not served_from_cache as cost_usable
    from {{ ref('fct_request_cost') }}
    where request_date > (select request_date from last_day) - {{ var('comparison_days') }}
),

by_technique as (
    select
        family,
        model,
        technique,
        baseline_model,
        count(*) filter (where cost_usable) as requests,
        count(*) filter (where not cost_usable) as requests_excluded,
        sum(completion_tokens) filter (where cost_usable) as completion_tokens,
        sum(fully_loaded_cost_usd) filter (where cost_usable) as fully_loaded_cost_usd,
        sum(energy_j) filter (where cost_usable) as energy_j,
        median(time_to_first_token_s) filter (where cost_usable) as p50_time_to_first_token_s,
        quantile_cont(duration_s, 0.95) filter (where cost_usable) as p95_duration_s
    from requests
    group by all
),

measures as (
    select
        *,
        1e6 * fully_loaded_cost_usd / nullif(completion_tokens, 0) as cost_per_1m_output_tokens_usd,
        energy_j / nullif(completion_tokens, 0) as j_per_output_token
    from by_technique
),

baselines as (
    select * from measures where technique = 'baseline'
)

select
    measures.family,
    measures.model,
    measures.technique,
    measures.baseline_model,
    measures.requests,
    baselines.requests as baseline_requests,
    measures.requests_excluded,
    measures.cost_per_1m_output_tokens_usd,
    baselines.cost_per_1m_output_tokens_usd as baseline_cost_per_1m_output_tokens_usd,
    100 * (measures.cost_per_1m_output_tokens_usd / baselines.cost_per_1m_output_tokens_usd - 1)
        as cost_change_pct,
    measures.j_per_output_token,
    baselines.j_per_output_token as baseline_j_per_output_token,
    100 * (measures.j_per_output_token / baselines.j_per_output_token - 1) as energy_change_pct,
    measures.p50_time_to_first_token_s,
    baselines.p50_time_to_first_token_s as baseline_p50_time_to_first_token_s,
    measures.p95_duration_s,
    baselines.p95_duration_s as baseline_p95_duration_s
from measures
left join baselines on measures.baseline_model = baselines.model
