-- total_cost_usd is exactly energy + capex + overhead, and fully loaded adds the idle allocation
select request_id
from {{ ref('fct_request_cost') }}
where {{ in_tested_days('request_date') }}
  and (abs(total_cost_usd - (energy_cost_usd + capex_cost_usd + overhead_cost_usd)) > 1e-12
   or abs(fully_loaded_cost_usd - (total_cost_usd + idle_cost_allocated_usd)) > 1e-12)
