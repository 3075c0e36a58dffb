"""Serving: the allocation API over HTTP (api.py, its OpenAPI description in openapi.py) and `infercost serve`'s
process supervisor (supervisor.py: the Dagster UI, the daemon and the API as children in their own process groups,
all stopped together). The queries themselves live in outputs/ (allocation.py, metrics.py); this stage is the thin
layer around them. Imports no Dagster (the Dagster processes are started as commands)."""
