-- one row per request: its energy and what it cost, by component
with requests as (
    select * from {{ ref('int_requests') }}
),

pieces as (
    select * from {{ ref('int_request_cost_pieces') }}
),

idle_allocation as (
    select * from {{ ref('int_request_idle_allocation') }}
),

unattributed as (
    select request_id, any_value(reason) as reason
    from {{ source('raw', 'unattributed_requests') }}
    group by all
),

request_totals as (
    select
        request_id,
        count(distinct device_id) as devices,
        any_value(device_type) as device_type,
        any_value(region) as region,
        sum(energy_j) as energy_j,
        sum(facility_energy_j) as facility_energy_j,
        sum(device_share_s) as device_share_s,
        sum(unmetered_s) as unmetered_s,
        sum(energy_cost_usd) as energy_cost_usd,
        sum(capex_cost_usd) as capex_cost_usd,
        sum(overhead_cost_usd) as overhead_cost_usd,
        sum(emissions_g_co2e) as emissions_g_co2e,
        bool_and(priced) as priced,
        bool_or(price_filled) as price_filled,
        bool_and(inventory_usable) as inventory_usable
    from pieces
    group by all
),

measured as (
    -- no telemetry covered any of the request: its energy is unknown (null), not zero
    select
        *,
        unmetered_s >= duration_s * devices - 1e-6 and duration_s > 0 as fully_unmetered
    from request_totals
    inner join (select request_id, duration_s from requests) using (request_id)
),

costed as (
    select
        requests.*,
        measured.devices,
        measured.device_type,
        measured.region,
        case when not measured.fully_unmetered then measured.energy_j end as energy_j,
        case when not measured.fully_unmetered then measured.facility_energy_j end as facility_energy_j,
        measured.device_share_s,
        measured.unmetered_s,
        case when not measured.fully_unmetered then measured.energy_cost_usd end as energy_cost_usd,
        case when not measured.fully_unmetered then measured.emissions_g_co2e end as emissions_g_co2e,
        measured.capex_cost_usd,
        measured.overhead_cost_usd,
        case when not measured.fully_unmetered then measured.energy_cost_usd else 0 end
            + measured.capex_cost_usd + measured.overhead_cost_usd as total_cost_usd,
        coalesce(idle_allocation.idle_cost_allocated_usd, 0) as idle_cost_allocated_usd,
        case
            when measured.request_id is null then coalesce(unattributed.reason, 'not attributed yet')
            when not measured.inventory_usable
                then 'device missing from inventory (or its row unusable): cost is partial'
            when measured.fully_unmetered then 'unmetered: no telemetry covered the request; energy unknown'
            when not measured.priced then 'no price for part of the request'
            when measured.unmetered_s > 0 then 'partly unmetered: energy is a lower bound'
            when measured.price_filled then 'priced partly at a filled-in price (an interval no price file published)'
        end as cost_caveat,
        -- the weight the kernel split by: output tokens + prompt_token_weight x prompt tokens
        {{ var('prompt_token_weight') }} * requests.prompt_tokens
            / nullif(requests.completion_tokens + {{ var('prompt_token_weight') }} * requests.prompt_tokens, 0)
            as input_weight_share,
        coalesce(not measured.inventory_usable, false) as inventory_missing
    from requests
    left join measured on requests.request_id = measured.request_id
    left join idle_allocation on requests.request_id = idle_allocation.request_id
    left join unattributed on requests.request_id = unattributed.request_id
)

select
    request_id,
    request_date,
    started_at,
    ended_at,
    duration_s,
    time_to_first_token_s,
    model,
    family,
    technique,
    baseline_model,
    precision,
    speculative,
    batching,
    tenant,
    status,
    replica_id,
    device_type,
    region,
    devices,
    prompt_tokens,
    completion_tokens,
    cached_prompt_tokens,
    energy_j,
    facility_energy_j,
    energy_j / nullif(completion_tokens, 0) as energy_j_per_output_token,
    emissions_g_co2e,
    device_share_s,
    unmetered_s,
    energy_cost_usd,
    capex_cost_usd,
    overhead_cost_usd,
    total_cost_usd,
    idle_cost_allocated_usd,
    total_cost_usd + idle_cost_allocated_usd as fully_loaded_cost_usd,
    1000 * (total_cost_usd + idle_cost_allocated_usd) * input_weight_share / nullif(prompt_tokens, 0)
        as cost_per_1k_input_tokens_usd,
    1000 * (total_cost_usd + idle_cost_allocated_usd) * (1 - coalesce(input_weight_share, 0))
        / nullif(completion_tokens, 0) as cost_per_1k_output_tokens_usd,
    cost_caveat,
    inventory_missing,
    estimated_fields
from costed
