{#
  The days a run builds. The Dagster partition passes them as the vars partition_start and partition_end (ISO
  dates); the incremental models then delete those days' rows and insert them again, reading only what those days
  need. Without the vars (a bare `dbt build`), or on --full-refresh, or when a model's table does not exist yet,
  every loaded day is built.

  A request that runs past midnight has energy pieces in the next day's partition too (the kernel keeps each piece
  in the day it ran), so building day D also rebuilds the requests of the days before D that have pieces in D
  (run_request_ids), and the daily rollups of their days (run_request_days). Requests start at most 2 days before
  the day whose partition holds their pieces (the attribution reads requests of the 2 days before).
#}

{% macro run_days_limited() %}
    {{ return(var('partition_start', none) is not none and is_incremental()) }}
{% endmacro %}

{# a filter on a date column: the run's days, widened by `before` days before and `after` days after #}
{% macro in_run_days(column, before=0, after=0) -%}
    {%- if run_days_limited() -%}
        {{ column }} between date '{{ var("partition_start") }}' - {{ before }}
            and date '{{ var("partition_end") }}' + {{ after }}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{# the requests a run rebuilds beyond those of its days: any request with an energy piece or an unattributed row in
   the run's days (read by `in`, which needs no distinct ids: union all, not a union that dedups them first) #}
{% macro run_request_ids() -%}
    select request_id from {{ ref('stg_request_energy_pieces') }} where {{ in_run_days('partition_date') }}
    union all
    select request_id from {{ source('raw', 'unattributed_requests') }} where {{ in_run_days('partition_date') }}
{%- endmacro %}

{# a filter on request_date (and request_id): the requests of the run's days and run_request_ids #}
{% macro in_run_requests(date_column='request_date', id_column='request_id') -%}
    {%- if run_days_limited() -%}
        {#- the leading range is implied by what follows; DuckDB prunes the scan with it (an OR with a subquery
            would read every row group of the history) -#}
        ({{ in_run_days(date_column, before=2) }} and ({{ in_run_days(date_column) }}
         or {{ id_column }} in ({{ run_request_ids() }})))
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{# the days before the run's first day whose requests have energy (or an unattributed row) in the run's days: at
   most the two days before it (a request starts at most 2 days before the day of its pieces; a rebuilt request of
   a later day is inside the run's days already). Asked by a query of its own when the model runs, then written into
   the model's query as dates: the filter was a subquery over every request id of the run, repeated in three CTEs of
   each rollup, and with it a 10-day backfill of the 64-accelerator fleet ran two rollups out of the 4 GB cap
   together (the same run passes without it) #}
{% macro run_request_days() -%}
    {%- if not execute or not run_days_limited() -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set query -%}
        select distinct request_date from {{ ref('stg_requests') }}
        where request_date between date '{{ var("partition_start") }}' - 2 and date '{{ var("partition_start") }}' - 1
            and request_id in ({{ run_request_ids() }})
        order by request_date
    {%- endset -%}
    {{ return(run_query(query).columns[0].values() | map('string') | list) }}
{%- endmacro %}

{# a filter on a day column: the request days whose daily rollups a run rebuilds (its days, and the days of the
   requests it rebuilds). `request_days`: run_request_days() when the model has asked it already (a model that
   filters several CTEs asks once), else it is asked here #}
{% macro in_run_request_days(column, request_days=none) -%}
    {%- if run_days_limited() -%}
        {%- set request_days = run_request_days() if request_days is none else request_days -%}
        {#- the leading range lets DuckDB prune the scan (see in_run_requests) -#}
        ({{ in_run_days(column, before=2) }} and ({{ in_run_days(column) }}
        {%- for day in request_days %} or {{ column }} = date '{{ day }}'{% endfor %}))
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{# the pre-hook of an incremental model: delete the rows the run rebuilds (a no-op on a full build) #}
{% macro delete_run_rows(condition) -%}
    {%- if run_days_limited() -%}
        delete from {{ this }} where {{ condition }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{# tests read the rows of the run's days (the days it wrote), not the whole history: a filter for singular tests #}
{% macro in_tested_days(column) -%}
    {%- if var('partition_start', none) is not none -%}
        {{ column }} between date '{{ var("partition_start") }}' and date '{{ var("partition_end") }}'
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{# the day column of each model built incrementally (and of the staging views of the two history-long raw tables),
   for the generic tests' filter (get_where_subquery) #}
{% macro run_day_column(name) -%}
    {%- set columns = {
        'int_requests': 'request_date', 'fct_request_cost': 'request_date',
        'agg_daily_model_cost': 'request_date', 'agg_daily_technique_cost': 'request_date',
        'agg_daily_device_type_cost': 'request_date', 'agg_daily_label_cost': 'request_date',
        'int_device_bucket_rates': 'partition_date', 'int_request_cost_pieces': 'partition_date',
        'int_device_days': 'partition_date', 'int_device_request_groups': 'partition_date',
        'int_request_idle_allocation': 'partition_date',
        'agg_idle_cost': 'partition_date', 'agg_telemetry_coverage': 'partition_date',
        'agg_region_bucket_cost': 'partition_date',
        'stg_requests': 'request_date', 'stg_request_energy_pieces': 'partition_date'} -%}
    {{ return(columns.get(name)) }}
{%- endmacro %}

{# dbt's generic tests read their model through this macro: on a run of some days, a test of an incremental model
   reads those days' rows (plus any `where` the test sets) #}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- set day_column = run_day_column(relation.identifier) if relation.identifier is defined else none -%}
    {%- set filters = [] -%}
    {%- if where -%}{%- do filters.append('(' ~ where ~ ')') -%}{%- endif -%}
    {%- if day_column and var('partition_start', none) is not none -%}
        {%- do filters.append(in_tested_days(day_column)) -%}
    {%- endif -%}
    {%- if filters -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ filters | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
