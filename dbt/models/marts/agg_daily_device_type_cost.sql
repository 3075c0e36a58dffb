{{ daily_cost_rollup(['device_type']) }}
