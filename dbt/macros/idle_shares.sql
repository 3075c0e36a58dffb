{#- The proportional idle-sharing rule, in one place for int_device_days, int_request_idle_allocation and
    fct_request_cost: a piece's share of its device-day's idle cost is its direct cost over the direct cost of every
    piece of that device-day (the shares of a device-day add up to 1 only if both use the same direct cost). -#}

{#- a piece's direct cost, USD: a piece without capex or overhead has none (null) -#}
{% macro piece_direct_cost_usd(piece='') -%}
    (coalesce({{ piece }}energy_cost_usd, 0) + {{ piece }}capex_cost_usd + {{ piece }}overhead_cost_usd)
{%- endmacro %}

{#- a device-day's idle cost (energy, capex, overhead), USD -#}
{% macro device_day_idle_cost_usd(device_day='') -%}
    ({{ device_day }}idle_energy_cost_usd + {{ device_day }}idle_capex_cost_usd + {{ device_day }}idle_overhead_cost_usd)
{%- endmacro %}

{#- a piece's proportional share of its device-day's idle cost (null when the device-day has no direct cost) -#}
{% macro proportional_idle_share(piece, device_day) -%}
    {{ piece_direct_cost_usd(piece) }} / nullif({{ device_day }}request_direct_cost_usd, 0)
{%- endmacro %}
