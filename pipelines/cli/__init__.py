"""The `infercost` command: one module per command group, thin over the core packages and the Dagster definitions."""
