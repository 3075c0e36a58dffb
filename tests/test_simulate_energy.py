"""The simulator of `validate-energy --simulate` (pipelines/devtools/simulate): its truth conserves energy, the
files it writes are read by the ingest's own readers as they are, and the scores order the rules as physics says."""

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from pipelines.devtools.simulate import Rule, run_simulation, simulate_fleet
from pipelines.devtools.simulate.loggers import logger_tables, write_logger_files
from pipelines.devtools.simulate.score import read_with_ingest, rule_options
from pipelines.devtools.simulate.workload import STEP_S
from tests.conftest import run_cli

SECONDS = 120.0


@pytest.fixture(scope="module")
def simulated():
    scores, runs, requests, tables = run_simulation(seed=5, seconds=SECONDS)
    return {s.rule.label_key: s for s in scores}, runs, requests, tables


def rule(kind, column, use_phases=False, options=None):
    """The key of a rule's score: with the kernel's first option set (today's rule) unless told."""
    return Rule(kind, column, use_phases, rule_options()[0] if options is None else options).label_key


def test_the_truth_conserves_its_energy_and_is_seeded():
    runs = simulate_fleet(seed=3, seconds=60)
    again = simulate_fleet(seed=3, seconds=60)
    for run, same in zip(runs, again):
        q = run.requests
        assert np.array_equal(run.power_w, same.power_w)
        assert (q["true_energy_j"] > 0).all() and (q["true_prefill_j"] > 0).all() and (q["true_decode_j"] > 0).all()
        assert np.allclose(q["true_prefill_j"] + q["true_decode_j"], q["true_energy_j"], rtol=1e-12)
        # the requests' truths and the idle steps' energy add up to the device's energy
        steps = len(run.power_w)
        busy = np.zeros(steps + 1)
        s = (q["started_at_us"] - run.t0_us) // 10_000
        e = (q["ended_at_us"] - run.t0_us) // 10_000
        np.add.at(busy, s, 1)
        np.add.at(busy, e, -1)
        idle_j = float(run.power_w[np.cumsum(busy)[:steps] == 0].sum() * STEP_S)
        assert abs(q["true_energy_j"].sum() + idle_j - run.energy_j) < 1e-9 * run.energy_j
        assert run.power_w.min() >= 0.9 * run.regime.idle_w
        d = (q["ended_at_us"] - q["started_at_us"]) / 1e6
        assert d.min() >= 0.05 - 1e-9 and d.max() <= 3.0 + 1e-9


def test_the_loggers_files_are_read_by_the_ingest_as_written(tmp_path):
    runs = simulate_fleet(seed=4, seconds=40)
    tables = logger_tables(runs, seed=4)
    day = datetime.fromtimestamp(runs[0].t0_us / 1e6, UTC).date()
    paths = write_logger_files(tmp_path, tables, day.isoformat())
    nvsmi = tables["nvidia_smi_1s"]
    read = read_with_ingest(paths["nvidia_smi_1s"], "nvidia_smi_1s", day)
    assert read.num_rows == nvsmi.num_rows  # nothing quarantined
    assert read["ts"].cast(pa.int64()).to_pylist() == nvsmi["ts"].cast(pa.int64()).to_pylist()
    assert set(read["device_id"].to_pylist()) == {r.device_id for r in runs}
    power = read["power_w"].to_numpy()
    window = read["power_window_s"].to_numpy()
    # the reader integrates the column that covers the interval (the 1 s average) and keeps the instant apart
    assert np.allclose(power, nvsmi["power_draw_w"].to_numpy()) and (window == 1).all()
    for kind in ("dcgm_1s", "nvml_100ms"):
        read = read_with_ingest(paths[kind], kind, day)
        assert read.num_rows == tables[kind].num_rows, kind
        assert np.allclose(
            read["energy_counter_j"].to_numpy(), tables[kind]["energy_counter_j"].to_numpy(), rtol=0, atol=1e-6
        )
        assert np.allclose(read["power_w"].to_numpy(), tables[kind]["power_w"].to_numpy(), rtol=0, atol=1e-3)


FLAT, PLACED = {"placement": "flat"}, {"placement": "activity"}


def test_the_counter_beats_the_instant_reading_and_the_average_beats_it_too(simulated):
    scores, *_ = simulated
    instant = scores[rule("nvidia_smi_1s", "power.draw.instant")]
    average = scores[rule("nvidia_smi_1s", "power.draw")]
    counter = scores[rule("nvml_100ms", "file")]
    assert counter.group_median < average.group_median < instant.group_median
    assert counter.group_p90 < average.group_p90 < instant.group_p90
    assert counter.group_median < 0.01 and counter.worst_regime < 0.02
    for s in scores.values():
        assert s.conservation < 1e-9, s.rule


def test_phases_place_energy_better_per_request(simulated):
    scores, *_ = simulated
    for kind in ("nvml_100ms", "nvidia_smi_1s"):
        flat = scores[rule(kind, "file")]
        phased = scores[rule(kind, "file", use_phases=True)]
        assert phased.request_median < 0.7 * flat.request_median, kind
        # the split moves energy between concurrent requests only: regime totals barely move
        for regime, err in flat.regimes.items():
            assert abs(phased.regimes[regime] - err) < 0.01, regime


def test_every_kernel_option_is_a_row_and_placing_by_activity_helps_where_it_exists(simulated):
    scores, *_ = simulated
    options = rule_options()
    for opts in options:  # each kernel option set is scored with every kind, column and phase choice
        assert scores[rule("nvidia_smi_1s", "power.draw", options=opts)].conservation < 1e-9
    if {"placement": "activity"} in options:
        flat = scores[rule("nvidia_smi_1s", "power.draw", options={"placement": "flat"})]
        placed = scores[rule("nvidia_smi_1s", "power.draw", options={"placement": "activity"})]
        assert placed.group_median < flat.group_median and placed.worst_regime < flat.worst_regime


@pytest.mark.slow
def test_placing_window_energy_by_activity_meets_the_issue_goals():
    """Issue 12's goals from 1 s nvidia-smi files through the default reader: per-group median <= 1.5 %, p90 <=
    3.5 %, every regime total within 1 %; from 100 ms counters: median <= 0.5 %, p90 <= 2.5 %. Placement beats
    the flat window on both. 300 s per regime, so that each device has the quiet windows its idle power is
    learned from (with too few, and no inventory idle_w, placement keeps the window flat)."""
    rules = [
        Rule(kind, "file", use_phases=True, options=options)
        for kind in ("nvidia_smi_1s", "nvml_100ms")
        for options in (FLAT, PLACED)
    ]
    scores = {(s.rule.kind, s.rule.label): s for s in run_simulation(seed=5, seconds=300.0, rules=rules)[0]}
    for kind, median, p90 in (("nvidia_smi_1s", 0.015, 0.035), ("nvml_100ms", 0.005, 0.025)):
        flat = scores[kind, Rule(kind, "file", use_phases=True, options=FLAT).label]
        placed = scores[kind, Rule(kind, "file", use_phases=True, options=PLACED).label]
        assert placed.group_median <= median and placed.group_p90 <= p90, kind
        assert placed.group_median < flat.group_median and placed.group_p90 < flat.group_p90, kind
        assert max(abs(v) for v in placed.regimes.values()) <= 0.01, kind
        assert placed.conservation < 1e-9


@pytest.mark.slow
def test_validate_energy_simulate_prints_the_table(tmp_path):
    out = run_cli(["validate-energy", "--simulate", "--seconds", "40", "--seed", "2"], home=tmp_path).stdout
    assert "| telemetry | rule | group median |" in out
    for kind in ("nvidia_smi_1s", "dcgm_1s", "nvml_100ms"):
        assert f"| {kind} | default reader" in out
    bad = run_cli(["validate-energy", "--simulate", "--seconds", "5"], home=tmp_path, ok=False)
    assert bad.returncode == 1 and "at least 30" in bad.stderr
