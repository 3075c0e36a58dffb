-- per device and day: capex charged to requests + idle capex = the device's capex for the day
select partition_date, device_id
from {{ ref('int_device_days') }}
where abs(request_capex_cost_usd + idle_capex_cost_usd - day_capex_cost_usd) > 1e-9 * greatest(day_capex_cost_usd, 1e-9)
