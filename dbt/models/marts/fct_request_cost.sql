{{ config(materialized="incremental", pre_hook="{{ delete_run_rows(in_run_requests()) }}") }}
-- one row per request: its energy and what it cost, by component. A run rebuilds the requests of its days and the
-- earlier requests that have energy in them (they ran past midnight): see macros/run_days.sql
-- depends_on: {{ ref('stg_request_energy_pieces') }}
-- depends_on: {{ ref('int_request_idle_allocation') }}
-- a full build reads int_requests whole: not materialized, each use reads only the columns it needs (a materialized
-- CTE holds every column of every request: on a 1,000-accelerator day it spilled twice as much and took 1.8x as
-- long). A run of some days filters with subqueries, evaluated once into a materialized CTE (inlined into its uses
-- it took 1.5x as long on a 64-accelerator day 10). Only such a run filters the pieces, idle shares and unattributed
-- rows to its requests: a full build joins them to their requests once, at the end.
{%- set of_run_requests = 'request_id in (select request_id from requests)' if run_days_limited() else 'true' %}
{#- proportional idle shares are taken piece by piece (as int_request_idle_allocation takes them) and summed with the
    pieces' other columns: joining the requests' allocation rows held a hash table of every request (on a
    1,000-accelerator day, three interleaved pairs: CPU user 41-56 s against 46-59 s); the other policies join them #}
{%- set idle_per_piece = var('idle_sharing_policy') == 'proportional' %}
{%- set summed = ['energy_j', 'facility_energy_j', 'prefill_energy_j', 'decode_energy_j', 'device_share_s',
    'unmetered_s', 'energy_uncertainty_j', 'energy_cost_usd', 'capex_cost_usd', 'overhead_cost_usd',
    'emissions_g_co2e'] %}
with requests as {{ 'materialized' if run_days_limited() else 'not materialized' }} (
    select * from {{ ref('int_requests') }} where {{ in_run_requests() }}
),

{% if idle_per_piece %}
-- each device-day's idle cost and the direct cost its pieces share it by (stored for every day a piece can be in)
device_day_idle as (
    select
        partition_date,
        device_id,
        request_direct_cost_usd,
        {{ device_day_idle_cost_usd() }} as idle_cost_usd
    from {{ ref('int_device_days') }}
    where {{ in_run_days('partition_date', before=2, after=2) }}
),
{% endif %}

-- read anew by each use (the columns it needs): materialized, every piece would be held whole
pieces as not materialized (
    {%- if idle_per_piece %}
    select
        cost_pieces.*,
        -- a piece on no inventory device-day takes none (null), as it has no allocation row
        coalesce({{ proportional_idle_share('cost_pieces.', 'device_day_idle.') }}, 0) * device_day_idle.idle_cost_usd
            as idle_cost_allocated_usd
    from {{ ref('int_request_cost_pieces') }} as cost_pieces
    left join device_day_idle
        on cost_pieces.partition_date = device_day_idle.partition_date
        and cost_pieces.device_id = device_day_idle.device_id
    where {{ in_run_days('cost_pieces.partition_date', before=2, after=2) }} and {{ of_run_requests }}
    {%- else %}
    select * from {{ ref('int_request_cost_pieces') }}
    where {{ in_run_days('partition_date', before=2, after=2) }} and {{ of_run_requests }}
    {%- endif %}
),

{% if not idle_per_piece %}
-- one row per day and request: a request of one piece ran on one day, so it has one row at most; only the requests of
-- several pieces sum theirs (request_totals). Summing every request's rows apart and joining them to the requests
-- beside the pieces' totals held two hash tables of every request at once: on a 1,000-accelerator day under the
-- 4 GB cap this model took 65 s, against 36 s with the idle shares carried in the pieces' totals
idle_allocation as not materialized (
    select request_id, idle_cost_allocated_usd
    from {{ ref('int_request_idle_allocation') }}
    where {{ in_run_days('partition_date', before=2, after=2) }} and {{ of_run_requests }}
),
{% endif %}

unattributed as (
    select request_id, any_value(reason) as reason
    from {{ source('raw', 'unattributed_requests') }}
    where {{ in_run_days('partition_date', before=2, after=2) }} and {{ of_run_requests }}
    group by all
),

-- most requests have one piece (one device, one price bucket): their piece is their total, so only the requests of
-- several pieces are aggregated (on a 1,000-accelerator day an aggregate of every request spilled under the 4 GB cap)
pieces_per_request as materialized (
    select request_id, min(bucket_start) is not distinct from max(bucket_start) as one_bucket
    from pieces
    where request_id is not null
    group by all
    having count(*) > 1
),

-- a request's idle share comes with its pieces' totals: every request with an idle share has pieces (the shares are
-- of its pieces' direct costs)
request_totals as (
    select * from (
    select
        request_id,
        count(*) as pieces,
        any_value(device_type) as device_type,
        any_value(region) as region,
        {%- for column in summed %}
        sum({{ column }}) as {{ column }},
        {%- endfor %}
        bool_and(priced) as priced,
        bool_or(price_filled) as price_filled,
        bool_and(inventory_usable) as inventory_usable,
        bool_or(before_in_service) as before_in_service,
        min(in_service_from) filter (where before_in_service) as in_service_from,
        bool_or(amortization_ended) as amortization_ended,
        min(amortized_until) filter (where amortization_ended) as amortized_until
        {%- if idle_per_piece %},
        sum(idle_cost_allocated_usd) as idle_cost_allocated_usd
        {%- endif %}
    from pieces
    where request_id in (select request_id from pieces_per_request)
    group by all
    ) as several_pieces
    {%- if not idle_per_piece %}
    left join (
        select request_id, sum(idle_cost_allocated_usd) as idle_cost_allocated_usd
        from idle_allocation
        where request_id in (select request_id from pieces_per_request)
        group by all
    ) as several_pieces_idle using (request_id)
    {%- endif %}
    union all
    select
        pieces.request_id,
        1 as pieces,
        device_type,
        region,
        {%- for column in summed %}
        {{ column }},
        {%- endfor %}
        priced,
        price_filled,
        inventory_usable,
        before_in_service,
        case when before_in_service then in_service_from end as in_service_from,
        amortization_ended,
        case when amortization_ended then amortized_until end as amortized_until,
        {%- if idle_per_piece %}
        pieces.idle_cost_allocated_usd
    from pieces
        {%- else %}
        idle_allocation.idle_cost_allocated_usd
    from pieces
    left join idle_allocation on pieces.request_id = idle_allocation.request_id
        {%- endif %}
    where pieces.request_id not in (select request_id from pieces_per_request)
),

multi_bucket_devices as (
    -- the pieces of a request in one price bucket are one per device ((request, device, bucket) is unique), so
    -- their count is its devices: a count(distinct device_id) of every request made DuckDB group every piece by
    -- (request, device) apart and join that back. The few requests over several buckets are counted here.
    select request_id, count(distinct device_id) as devices
    from pieces
    where request_id in (select request_id from pieces_per_request where not one_bucket)
    group by all
),

measured as (
    -- every request with its totals; a request answered from a gateway cache (LiteLLM cache_hit) was served by no
    -- GPU, so the kernel never saw it: 0 J and no device cost, whatever pieces it has
    select
        requests.*,
        coalesce(requests.status = 'cache_hit', false) as cache_hit,
        request_totals.request_id is not null as attributed,
        if(cache_hit, 0, coalesce(multi_bucket_devices.devices, request_totals.pieces)) as devices,
        if(cache_hit, null, request_totals.device_type) as device_type,
        if(cache_hit, null, request_totals.region) as region,
        {%- for column in summed %}
        {#- a cache hit has no prefill or decode energy (null), and 0 of the rest #}
        if(cache_hit, {{ 'null' if column in ['prefill_energy_j', 'decode_energy_j'] else '0.0' }},
            request_totals.{{ column }}) as {{ column }},
        {%- endfor %}
        cache_hit or request_totals.priced as priced,
        not cache_hit and request_totals.price_filled as price_filled,
        cache_hit or request_totals.inventory_usable as inventory_usable,
        not cache_hit and request_totals.before_in_service as before_in_service,
        if(cache_hit, null, request_totals.in_service_from) as in_service_from,
        not cache_hit and request_totals.amortization_ended as amortization_ended,
        if(cache_hit, null, request_totals.amortized_until) as amortized_until,
        request_totals.idle_cost_allocated_usd
    from requests
    left join request_totals on requests.request_id = request_totals.request_id
    left join multi_bucket_devices on requests.request_id = multi_bucket_devices.request_id
),

costed as (
    select
        measured.* exclude (energy_j, facility_energy_j, prefill_energy_j, decode_energy_j, energy_uncertainty_j,
            energy_cost_usd, emissions_g_co2e, amortization_ended, idle_cost_allocated_usd),
        case when not fully_unmetered then energy_j end as energy_j,
        case when not fully_unmetered then facility_energy_j end as facility_energy_j,
        case when not fully_unmetered then prefill_energy_j end as prefill_energy_j,
        case when not fully_unmetered then decode_energy_j end as decode_energy_j,
        case when not fully_unmetered then energy_uncertainty_j end as energy_uncertainty_j,
        case when not fully_unmetered then energy_cost_usd end as energy_cost_usd,
        case when not fully_unmetered then emissions_g_co2e end as emissions_g_co2e,
        case when not fully_unmetered then energy_cost_usd else 0 end
            + capex_cost_usd + overhead_cost_usd as total_cost_usd,
        coalesce(measured.idle_cost_allocated_usd, 0) as idle_cost_allocated_usd,
        case
            when status = 'cache_hit' then 'served from cache: no GPU served it (0 J, no device cost)'
            when not attributed then coalesce(unattributed.reason, 'not attributed yet')
            when not inventory_usable
                then 'device missing from inventory (or its row unusable): cost is partial'
            when before_in_service
                then 'device used before in_service_from ' || strftime(in_service_from, '%Y-%m-%d')
                    || ': no capex, cost is partial'
            when fully_unmetered then 'unmetered: no telemetry covered the request; energy unknown'
            when not priced then 'no price for part of the request'
            when unmetered_s > 0 then 'partly unmetered: energy is a lower bound'
            when price_filled then 'priced partly at a filled-in price (an interval no price file published)'
            when amortization_ended
                then 'amortization ended ' || strftime(amortized_until, '%Y-%m-%d') || ': no capex'
        end as cost_caveat,
        -- the input tokens' share of the cost: the measured prefill share of the energy where first_token_at
        -- split the request into phases, else the kernel's weights (prompt_token_weight x prompt tokens over
        -- output tokens + prompt_token_weight x prompt tokens)
        coalesce(
            case when not fully_unmetered then prefill_energy_j / nullif(energy_j, 0) end,
            {{ var('prompt_token_weight') }} * prompt_tokens
                / nullif(completion_tokens + {{ var('prompt_token_weight') }} * prompt_tokens, 0)
        ) as input_share,
        not fully_unmetered and prefill_energy_j is not null and energy_j > 0 as input_share_measured,
        coalesce(not inventory_usable, false) as inventory_missing,
        coalesce(before_in_service, false) as device_before_in_service,
        coalesce(amortization_ended, false) as amortization_ended,
        status = 'cache_hit' as served_from_cache
    from (
        select
            *,
            -- no telemetry covered any of the request: its energy is unknown (null), not zero
            unmetered_s >= duration_s * devices - 1e-6 and duration_s > 0 and devices > 0 as fully_unmetered
        from measured
    ) as measured
    left join unattributed on measured.request_id = unattributed.request_id
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
