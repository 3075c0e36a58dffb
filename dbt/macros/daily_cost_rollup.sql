{#
  Daily cost rollup of fct_request_cost by request_date and the given columns, with utilization and idle share
  of the devices that served each group that day (a device serving two groups counts for both). The devices come
  from int_device_request_groups, so group_columns must be among its columns. by_label=true groups by each label
  (label_key, label_value) of fct_request_cost.labels instead of its rows.
#}
{% macro daily_cost_rollup(group_columns, by_label=false) %}
{{ config(materialized="incremental", pre_hook="{{ delete_run_rows(in_run_request_days('request_date')) }}") }}
-- depends_on: {{ ref('stg_requests') }}
-- depends_on: {{ ref('stg_request_energy_pieces') }}
{%- set request_days = run_request_days() %}
with requests as (
    {% if by_label %}
    -- one row per request and label it carries (a request with two labels counts under each)
    {{ labelled_requests('*', in_run_request_days('request_date', request_days)) }}
    {% else %}
    select * from {{ ref('fct_request_cost') }} where {{ in_run_request_days('request_date', request_days) }}
    {% endif %}
),

{% if by_label %}
pieces as (
    select * from {{ ref('int_request_cost_pieces') }} where {{ in_run_request_days('partition_date', request_days) }}
),

-- the requests of those pieces (they start at most 2 days before the piece's day)
piece_requests as (
    {{ labelled_requests('request_id, labels', in_run_days('request_date', before=4)) }}
),
{% endif %}

device_days as (
    select * from {{ ref('int_device_days') }} where {{ in_run_request_days('partition_date', request_days) }}
),

-- each device once per group it served that day
group_devices as (
    {% if by_label %}
    select distinct
        pieces.partition_date,
        pieces.device_id,
        {% for c in group_columns %}piece_requests.{{ c }}{{ "," if not loop.last }}{% endfor %}
    from pieces
    inner join piece_requests on pieces.request_id = piece_requests.request_id
    {% else %}
    select distinct partition_date, device_id, {{ group_columns | join(', ') }}
    from {{ ref('int_device_request_groups') }}
    where {{ in_run_request_days('partition_date', request_days) }}
    {% endif %}
),

device_usage as (
    select
        group_devices.partition_date as request_date,
        {% for c in group_columns %}group_devices.{{ c }},{% endfor %}
        count(*) as devices,
        sum(device_days.busy_s) as busy_s,
        sum(device_days.day_s) as device_day_s,
        sum(device_days.idle_energy_j) as idle_energy_j,
        sum(device_days.metered_energy_j) as metered_energy_j
    from group_devices
    inner join device_days
        on group_devices.partition_date = device_days.partition_date
        and group_devices.device_id = device_days.device_id
    group by all
),

request_totals as (
    select
        request_date,
        {% for c in group_columns %}{{ c }},{% endfor %}
        count(*) as requests,
        count(*) filter (where cost_caveat is not null) as requests_with_caveat,
        count(*) filter (where inventory_missing) as requests_inventory_missing,
        count(*) filter (where device_before_in_service) as requests_before_in_service,
        count(*) filter (where amortization_ended) as requests_amortization_ended,
        count(*) filter (where served_from_cache) as requests_from_cache,
        sum(prompt_tokens) as prompt_tokens,
        sum(completion_tokens) as completion_tokens,
        sum(energy_j) as energy_j,
        sum(facility_energy_j) as facility_energy_j,
        sum(energy_uncertainty_j) as energy_uncertainty_j,
        sum(prefill_energy_j) as prefill_energy_j,
        sum(decode_energy_j) as decode_energy_j,
        count(*) filter (where input_share_measured) as requests_phase_measured,
        sum(input_cost_usd) as input_cost_usd,
        sum(output_cost_usd) as output_cost_usd,
        sum(emissions_g_co2e) as emissions_g_co2e,
        sum(energy_cost_usd) as energy_cost_usd,
        sum(capex_cost_usd) as capex_cost_usd,
        sum(overhead_cost_usd) as overhead_cost_usd,
        sum(total_cost_usd) as total_cost_usd,
        sum(idle_cost_allocated_usd) as idle_cost_allocated_usd,
        sum(fully_loaded_cost_usd) as fully_loaded_cost_usd,
        sum(duration_s - coalesce(time_to_first_token_s, 0)) as decode_s,
        median(time_to_first_token_s) as p50_time_to_first_token_s,
        quantile_cont(duration_s, 0.95) as p95_duration_s
    from requests
    group by all
)

select
    request_totals.request_date,
    {% for c in group_columns %}request_totals.{{ c }},{% endfor %}
    request_totals.requests,
    request_totals.requests_with_caveat,
    request_totals.requests_inventory_missing,
    request_totals.requests_before_in_service,
    request_totals.requests_amortization_ended,
    request_totals.requests_from_cache,
    request_totals.prompt_tokens,
    request_totals.completion_tokens,
    request_totals.energy_j / 3.6e6 as energy_kwh,
    request_totals.facility_energy_j / 3.6e6 as facility_energy_kwh,
    request_totals.energy_uncertainty_j / 3.6e6 as energy_uncertainty_kwh,
    request_totals.prefill_energy_j / 3.6e6 as prefill_energy_kwh,
    request_totals.decode_energy_j / 3.6e6 as decode_energy_kwh,
    request_totals.requests_phase_measured,
    request_totals.emissions_g_co2e / 1000 as emissions_kg_co2e,
    request_totals.energy_cost_usd,
    request_totals.capex_cost_usd,
    request_totals.overhead_cost_usd,
    request_totals.total_cost_usd,
    request_totals.idle_cost_allocated_usd,
    request_totals.fully_loaded_cost_usd,
    1e6 * request_totals.fully_loaded_cost_usd / nullif(request_totals.completion_tokens, 0)
        as cost_per_1m_output_tokens_usd,
    1e6 * request_totals.fully_loaded_cost_usd
        / nullif(request_totals.prompt_tokens + request_totals.completion_tokens, 0) as cost_per_1m_tokens_usd,
    1e6 * request_totals.input_cost_usd / nullif(request_totals.prompt_tokens, 0) as input_cost_per_1m_input_tokens_usd,
    1e6 * request_totals.output_cost_usd / nullif(request_totals.completion_tokens, 0)
        as output_cost_per_1m_output_tokens_usd,
    request_totals.energy_j / nullif(request_totals.completion_tokens, 0) as j_per_output_token,
    1e6 * request_totals.energy_cost_usd / nullif(request_totals.completion_tokens, 0)
        as energy_cost_per_1m_output_tokens_usd,
    request_totals.energy_cost_usd / nullif(request_totals.facility_energy_j / 3.6e9, 0)
        as effective_price_usd_per_mwh,
    request_totals.decode_s / nullif(request_totals.completion_tokens, 0) as s_per_output_token,
    device_usage.devices,
    device_usage.busy_s / nullif(device_usage.device_day_s, 0) as utilization,
    device_usage.idle_energy_j / nullif(device_usage.metered_energy_j, 0) as idle_share,
    request_totals.p50_time_to_first_token_s,
    request_totals.p95_duration_s
from request_totals
left join device_usage
    on request_totals.request_date = device_usage.request_date
    {% for c in group_columns %}and request_totals.{{ c }} is not distinct from device_usage.{{ c }} {% endfor %}
{% endmacro %}

{#
  The rows of fct_request_cost (its `columns`, which hold labels) where `day_filter` holds, one per label a request
  carries, with label_key and label_value. Requests without labels are left out before the unnest, which DuckDB
  would otherwise run over a copy of every row.
#}
{% macro labelled_requests(columns, day_filter) %}
    select fct.*, label.key as label_key, label.value as label_value
    from (
        select {{ columns }} from {{ ref('fct_request_cost') }} where labels is not null and {{ day_filter }}
    ) as fct,
        unnest(map_entries(json(fct.labels)::map(varchar, varchar))) as labels(label)
{% endmacro %}
