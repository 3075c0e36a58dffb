{{ config(materialized="incremental", pre_hook="{{ delete_run_rows(in_run_requests()) }}") }}
-- one row per request: its energy and what it cost, by component. A run rebuilds the requests of its days and the
-- earlier requests that have energy in them (they ran past midnight): see macros/run_days.sql
-- depends_on: {{ ref('stg_request_energy_pieces') }}
-- a full build reads int_requests whole: not materialized, each use reads only the columns it needs (a materialized
-- CTE holds every column of every request: on a 1,000-accelerator day it spilled twice as much and took 1.8x as
-- long). A run of some days filters with subqueries, evaluated once into a materialized CTE (inlined into its five
-- uses it took 1.5x as long on a 64-accelerator day 10).
with requests as {{ 'materialized' if run_days_limited() else 'not materialized' }} (
    select * from {{ ref('int_requests') }} where {{ in_run_requests() }}
),

pieces as (
    select * from {{ ref('int_request_cost_pieces') }}
    where {{ in_run_days('partition_date', before=2, after=2) }} and request_id in (select request_id from requests)
),

idle_allocation as (
    select request_id, sum(idle_cost_allocated_usd) as idle_cost_allocated_usd
    from {{ ref('int_request_idle_allocation') }}
    where {{ in_run_days('partition_date', before=2, after=2) }} and request_id in (select request_id from requests)
    group by all
),

unattributed as (
    select request_id, any_value(reason) as reason
    from {{ source('raw', 'unattributed_requests') }}
    where {{ in_run_days('partition_date', before=2, after=2) }} and request_id in (select request_id from requests)
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
        sum(prefill_energy_j) as prefill_energy_j,
        sum(decode_energy_j) as decode_energy_j,
        sum(device_share_s) as device_share_s,
        sum(unmetered_s) as unmetered_s,
        sum(energy_uncertainty_j) as energy_uncertainty_j,
        sum(energy_cost_usd) as energy_cost_usd,
        sum(capex_cost_usd) as capex_cost_usd,
        sum(overhead_cost_usd) as overhead_cost_usd,
        sum(emissions_g_co2e) as emissions_g_co2e,
        bool_and(priced) as priced,
        bool_or(price_filled) as price_filled,
        bool_and(inventory_usable) as inventory_usable,
        bool_or(before_in_service) as before_in_service,
        min(in_service_from) filter (where before_in_service) as in_service_from,
        bool_or(amortization_ended) as amortization_ended,
        min(amortized_until) filter (where amortization_ended) as amortized_until
    from pieces
    group by all
),

served_from_cache as (
    -- answered from a gateway cache (LiteLLM cache_hit): no GPU served it, so the kernel never saw it; it costs
    -- 0 J and no device time
    select
        request_id,
        0 as devices,
        null as device_type,
        null as region,
        0.0 as energy_j,
        0.0 as facility_energy_j,
        null::double as prefill_energy_j,
        null::double as decode_energy_j,
        0.0 as device_share_s,
        0.0 as unmetered_s,
        0.0 as energy_uncertainty_j,
        0.0 as energy_cost_usd,
        0.0 as capex_cost_usd,
        0.0 as overhead_cost_usd,
        0.0 as emissions_g_co2e,
        true as priced,
        false as price_filled,
        true as inventory_usable,
        false as before_in_service,
        null::date as in_service_from,
        false as amortization_ended,
        null::date as amortized_until
    from requests
    where status = 'cache_hit'
),

measured as (
    -- no telemetry covered any of the request: its energy is unknown (null), not zero
    select
        *,
        unmetered_s >= duration_s * devices - 1e-6 and duration_s > 0 and devices > 0 as fully_unmetered
    from (
        select * from request_totals where request_id not in (select request_id from served_from_cache)
        union all by name
        select * from served_from_cache
    )
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
        case when not measured.fully_unmetered then measured.prefill_energy_j end as prefill_energy_j,
        case when not measured.fully_unmetered then measured.decode_energy_j end as decode_energy_j,
        measured.device_share_s,
        measured.unmetered_s,
        case when not measured.fully_unmetered then measured.energy_uncertainty_j end as energy_uncertainty_j,
        case when not measured.fully_unmetered then measured.energy_cost_usd end as energy_cost_usd,
        case when not measured.fully_unmetered then measured.emissions_g_co2e end as emissions_g_co2e,
        measured.capex_cost_usd,
        measured.overhead_cost_usd,
        case when not measured.fully_unmetered then measured.energy_cost_usd else 0 end
            + measured.capex_cost_usd + measured.overhead_cost_usd as total_cost_usd,
        coalesce(idle_allocation.idle_cost_allocated_usd, 0) as idle_cost_allocated_usd,
        case
            when requests.status = 'cache_hit' then 'served from cache: no GPU served it (0 J, no device cost)'
            when measured.request_id is null then coalesce(unattributed.reason, 'not attributed yet')
            when not measured.inventory_usable
                then 'device missing from inventory (or its row unusable): cost is partial'
            when measured.before_in_service
                then 'device used before in_service_from ' || strftime(measured.in_service_from, '%Y-%m-%d')
                    || ': no capex, cost is partial'
            when measured.fully_unmetered then 'unmetered: no telemetry covered the request; energy unknown'
            when not measured.priced then 'no price for part of the request'
            when measured.unmetered_s > 0 then 'partly unmetered: energy is a lower bound'
            when measured.price_filled then 'priced partly at a filled-in price (an interval no price file published)'
            when measured.amortization_ended
                then 'amortization ended ' || strftime(measured.amortized_until, '%Y-%m-%d') || ': no capex'
        end as cost_caveat,
        -- the input tokens' share of the cost: the measured prefill share of the energy where first_token_at
        -- split the request into phases, else the kernel's weights (prompt_token_weight x prompt tokens over
        -- output tokens + prompt_token_weight x prompt tokens)
        coalesce(
            case when not measured.fully_unmetered then measured.prefill_energy_j / nullif(measured.energy_j, 0) end,
            {{ var('prompt_token_weight') }} * requests.prompt_tokens
                / nullif(requests.completion_tokens + {{ var('prompt_token_weight') }} * requests.prompt_tokens, 0)
        ) as input_share,
        not measured.fully_unmetered and measured.prefill_energy_j is not null and measured.energy_j > 0
            as input_share_measured,
        coalesce(not measured.inventory_usable, false) as inventory_missing,
        coalesce(measured.before_in_service, false) as device_before_in_service,
        coalesce(measured.amortization_ended, false) as amortization_ended,
        requests.status = 'cache_hit' as served_from_cache
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
    labels,
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
    prefill_energy_j,
    decode_energy_j,
    energy_j / nullif(completion_tokens, 0) as energy_j_per_output_token,
    energy_uncertainty_j,
    emissions_g_co2e,
    device_share_s,
    unmetered_s,
    energy_cost_usd,
    capex_cost_usd,
    overhead_cost_usd,
    total_cost_usd,
    idle_cost_allocated_usd,
    total_cost_usd + idle_cost_allocated_usd as fully_loaded_cost_usd,
    (total_cost_usd + idle_cost_allocated_usd) * coalesce(input_share, 0) as input_cost_usd,
    (total_cost_usd + idle_cost_allocated_usd) * (1 - coalesce(input_share, 0)) as output_cost_usd,
    coalesce(input_share_measured, false) as input_share_measured,
    1000 * (total_cost_usd + idle_cost_allocated_usd) * input_share / nullif(prompt_tokens, 0)
        as cost_per_1k_input_tokens_usd,
    1000 * (total_cost_usd + idle_cost_allocated_usd) * (1 - coalesce(input_share, 0))
        / nullif(completion_tokens, 0) as cost_per_1k_output_tokens_usd,
    cost_caveat,
    inventory_missing,
    device_before_in_service,
    amortization_ended,
    served_from_cache,
    estimated_fields
from costed
