{{ config(meta={"dagster": {"ref": {"name": "int_request_idle_allocation"}}}) }}
-- with a sharing policy, the idle cost handed to requests equals the idle cost of devices that served requests
{% if var('idle_sharing_policy') != 'none' %}
with allocated as (
    select sum(idle_cost_allocated_usd) as usd from {{ ref('int_request_idle_allocation') }}
    where {{ in_tested_days('partition_date') }}
),
idle as (
    select sum({{ device_day_idle_cost_usd() }}) as usd
    from {{ ref('int_device_days') }}
    where requests > 0 and {{ in_tested_days('partition_date') }}
)
select allocated.usd, idle.usd
from allocated, idle
where abs(allocated.usd - idle.usd) > 1e-9 * greatest(abs(idle.usd), 1)
{% else %}
select 1 where false
{% endif %}
