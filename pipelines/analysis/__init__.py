"""Analysis over the marts: data-quality suites (GX), cost anomalies, technique comparison with intervals, and
what-if projections. Imports no Dagster.
"""
