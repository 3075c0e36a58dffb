"""The engine comparison's verdict (make compare-engines): a difference beyond the tolerance is found, NaN included."""

import math

from pipelines.devtools.bench.engine_marts import compare_table

COLS = ["request_id", "energy_j", "total_cost_usd"]


def test_equal_tables_and_differences_beyond_the_tolerance():
    rows = [("a", 1.0, 0.10), ("b", math.nan, 0.20)]
    assert compare_table(COLS, rows, [("a", 1.0 + 1e-12, 0.104), ("b", math.nan, 0.20)])[1] is None
    assert "energy_j" in compare_table(COLS, rows, [("a", 1.001, 0.10), ("b", math.nan, 0.20)])[1]
    assert "total_cost_usd" in compare_table(COLS, rows, [("a", 1.0, 0.11), ("b", math.nan, 0.20)])[1]
    assert "energy_j" in compare_table(COLS, rows, [("a", 1.0, 0.10), ("b", 5.0, 0.20)])[1]  # NaN on one side
    assert "request_id" in compare_table(COLS, rows, [("z", 1.0, 0.10), ("b", math.nan, 0.20)])[1]
    assert "2 rows on duckdb, 1 on spark" in compare_table(COLS, rows, rows[:1])[1]
