-- per day and request label (the metadata keys INFERCOST_REQUEST_LABELS names): what each project, feature or API
-- key cost; a request with two labels counts under both, so do not sum across label keys
{{ daily_cost_rollup(['label_key', 'label_value'], by_label=true) }}
