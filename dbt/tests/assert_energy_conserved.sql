-- per device and day: energy attributed to requests + idle energy = metered energy (1e-9 relative)
select partition_date, device_id, metered_energy_j, request_energy_j, idle_energy_j
from {{ ref('int_device_days') }}
where abs(request_energy_j + idle_energy_j - metered_energy_j) > 1e-9 * greatest(metered_energy_j, 1)
