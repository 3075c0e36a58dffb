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
    # the reader took one of the file's two columns, for what it is: the instant at window 0, the average at 1 s
    inst = np.allclose(power, nvsmi["power_draw_instant_w"].to_numpy()) and (window == 0).all()
    avg = np.allclose(power, nvsmi["power_draw_w"].to_numpy()) and (window == 1).all()
    assert inst or avg
    for kind in ("dcgm_1s", "nvml_100ms"):
        read = read_with_ingest(paths[kind], kind, day)
        assert read.num_rows == tables[kind].num_rows, kind
        assert np.allclose(
            read["energy_counter_j"].to_numpy(), tables[kind]["energy_counter_j"].to_numpy(), rtol=0, atol=1e-6
        )
        assert np.allclose(read["power_w"].to_numpy(), tables[kind]["power_w"].to_numpy(), rtol=0, atol=1e-3)


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
def test_validate_energy_simulate_prints_the_table(tmp_path):
    out = run_cli(["validate-energy", "--simulate", "--seconds", "40", "--seed", "2"], home=tmp_path).stdout
    assert "| telemetry | rule | group median |" in out
    for kind in ("nvidia_smi_1s", "dcgm_1s", "nvml_100ms"):
        assert f"| {kind} | default reader" in out
    bad = run_cli(["validate-energy", "--simulate", "--seconds", "5"], home=tmp_path, ok=False)
    assert bad.returncode == 1 and "at least 30" in bad.stderr
