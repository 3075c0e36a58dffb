"""Warehouse: where the DuckDB file lives, how connections are opened, the data contracts read from schemas/, the
raw tables they define, and the published read-only copy analysts query. Imports no Dagster.
"""
