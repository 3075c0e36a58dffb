{#- a device's amortized capex per second on a day: its straight-line rate while in amortization, else 0 -#}
{% macro capex_usd_per_s_on(day, inventory='inventory') %}
    case
        when {{ day }} >= {{ inventory }}.in_service_from and {{ day }} < {{ inventory }}.amortized_until
            then {{ inventory }}.capex_usd_per_s
        else 0
    end
{% endmacro %}
