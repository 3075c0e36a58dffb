"""A regenerable ground truth for energy attribution: a seeded workload drawing a 10 ms power truth
(workload.py), the files real loggers would write from it (loggers.py), and the scoring of attribution rules
against it (score.py). `infercost validate-energy --simulate` prints the table."""

from pipelines.devtools.simulate.score import Rule, Score, default_rules, run_simulation, score, table_text
from pipelines.devtools.simulate.workload import REGIMES, simulate_fleet

__all__ = ["REGIMES", "Rule", "Score", "default_rules", "run_simulation", "score", "simulate_fleet", "table_text"]
