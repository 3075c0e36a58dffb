"""The sample-fleet generator: calibration to the measured H100 figures, fleet shape, determinism."""

import gzip
import itertools
import json

import numpy as np
import pytest

from pipelines.devtools.generate import (
    CONFIG_EFFECT,
    DEVICE_TYPES,
    MODELS,
    build_fleet,
    generate,
    j_per_token,
    power_w,
    time_per_token_s,
)


def test_calibrated_to_the_h100_measurements():
    assert power_w(np.array([0.0]))[0] == pytest.approx(71)
    assert power_w(np.array([1.0]))[0] == pytest.approx(160)
    assert power_w(np.array([8.0]))[0] == pytest.approx(260)
    assert power_w(np.array([32.0]))[0] == pytest.approx(430)
    assert j_per_token(np.array([1.0]))[0] == pytest.approx(9.0)
    assert j_per_token(np.array([32.0]))[0] == pytest.approx(1.2)
    spec = (None, "prompt_lookup", "continuous")
    p_eff, j_eff = CONFIG_EFFECT[spec]
    assert power_w(np.array([1.0]), p_eff)[0] == pytest.approx(190)
    assert j_per_token(np.array([1.0]), j_eff)[0] == pytest.approx(6.0)
    # energy per token = power x time per token / batch, at batch 1 for prompt lookup
    assert 190 * time_per_token_s(np.array([1.0]), spec)[0] == pytest.approx(6.0)
    # MoE at batch 16 on an H100 draws about 440 W
    moe = MODELS["mixtral-8x7b-instruct"]
    assert 71 + (power_w(np.array([16.0]))[0] - 71) * moe.power_scale == pytest.approx(440, rel=0.03)


def test_fleet_shape():
    inventory, replicas = build_fleet(24, np.random.default_rng(1))
    assert len(inventory) == 24
    assert len({d["region"] for d in inventory}) >= 2
    assert len({d["device_type"] for d in inventory}) >= 2
    models = {r.model for r in replicas}
    assert len(models) >= 4
    assert any(len(r.devices) == 4 and MODELS[r.model].params_b >= 70 for r in replicas)
    assert any(MODELS[m].is_moe for m in models)
    configs = {r.config for r in replicas}
    assert (None, None, "continuous") in configs and len(configs) >= 5
    assert {d["device_type"] for d in inventory} <= set(DEVICE_TYPES)


@pytest.mark.slow
def test_generated_day_is_deterministic_and_overlapping(tmp_path):
    a = generate(tmp_path / "a", devices=8, days=1, seed=3, load=0.2, progress=lambda m: None)
    b = generate(tmp_path / "b", devices=8, days=1, seed=3, load=0.2, progress=lambda m: None)
    assert a == b
    for sub in (
        "requests/2026-11-02.jsonl.gz",
        "telemetry/us-west-h100-large-000_2026-11-02.csv.gz",
        "prices/us-west_2026-11-02.csv",
        "fleet/inventory.csv",
    ):
        assert (tmp_path / "a" / sub).read_bytes() == (tmp_path / "b" / sub).read_bytes(), sub
    lines = gzip.decompress((tmp_path / "a" / "requests" / "2026-11-02.jsonl.gz").read_bytes()).splitlines()
    reqs = [json.loads(x) for x in lines]
    assert reqs[0]["usage"]["completion_tokens"] >= 0 and "started_at" in reqs[0]
    # continuous batching: on one replica, requests overlap with staggered starts and ends
    one = sorted((r["started_at"], r["ended_at"]) for r in reqs if r["replica_id"].endswith("-r0"))
    overlaps = sum(1 for (s1, e1), (s2, e2) in itertools.pairwise(one) if s2 < e1 and e2 != e1)
    assert overlaps > len(one) // 10


def test_a_bench_landing_appears_only_when_its_generation_completed(tmp_path):
    """A generation that fails (or is killed) leaves no folder under the landing's name for the next bench to take
    for a finished one; a completed one is renamed into place."""
    import subprocess

    from pipelines.devtools.bench.inputs import generate_landing

    landing = tmp_path / "fleet-8"
    with pytest.raises(subprocess.CalledProcessError):
        generate_landing(landing, ["--devices", "8", "--start", "not-a-day"])
    assert not landing.exists()
    generate_landing(landing, ["--devices", "8", "--load", "0.05"])
    assert (landing / "fleet" / "inventory.csv").exists() and any((landing / "telemetry").iterdir())
    assert not landing.with_name("fleet-8.partial").exists()


def test_lines_built_column_wise_are_what_json_dumps_and_nvidia_smi_write(tmp_path):
    """The request lines are assembled from Arrow columns, not json.dumps: each must be the text json.dumps writes
    for its own object; the telemetry rows must be nvidia-smi's (two decimals of W, whole % and MiB)."""
    import re

    generate(tmp_path, devices=8, days=2, seed=5, load=0.05, progress=lambda m: None)
    n = 0
    for path in sorted((tmp_path / "requests").glob("*.jsonl.gz")):
        for line in gzip.decompress(path.read_bytes()).decode().splitlines():
            assert json.dumps(json.loads(line), separators=(",", ":")) == line
            n += 1
    assert n > 100
    row = re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{3}, \d, GPU-[0-9a-f-]+, [^,]+, \d+\.\d\d, \d+, \d+")
    for path in sorted((tmp_path / "telemetry").glob("*.csv.gz")):
        header, *rows = gzip.decompress(path.read_bytes()).decode().splitlines()
        assert header.startswith("timestamp, index, uuid, name, power.draw [W]")
        assert len(rows) in (8 * 86400, 8 * 86399)  # a host of 8, every second (the last may fall past midnight)
        bad = [r for r in rows if not row.fullmatch(r)]
        assert bad == []
