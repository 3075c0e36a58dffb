{{ daily_cost_rollup(['model', 'family', 'technique', 'baseline_model']) }}
