{{ daily_cost_rollup(['model', 'family']) }}
