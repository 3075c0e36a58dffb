"""Technique comparison: the bootstrap interval covers a known effect and shrinks with more data."""

import numpy as np
import pandas as pd

from pipelines.analysis.compare import compare


def frame(n_tech, n_base, effect, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for technique, n, scale in (("quant:int8", n_tech, 1 + effect), ("baseline", n_base, 1.0)):
        tokens = rng.integers(20, 400, n)
        cost = tokens * 5e-6 * scale * rng.lognormal(0, 0.3, n)
        for t, c in zip(tokens, cost):
            rows.append({"family": "f", "model": "m", "technique": technique, "baseline_model": "m",
                         "fully_loaded_cost_usd": c, "completion_tokens": t,
                         "time_to_first_token_s": rng.exponential(0.2), "duration_s": t * 0.05 * scale})
    return pd.DataFrame(rows)


def test_interval_covers_the_true_effect_and_reports_sizes():
    out = compare(frame(3000, 3000, -0.30), n_boot=400)
    (row,) = out.to_dict("records")
    assert row["cost_change_ci_low_pct"] < -30 < row["cost_change_ci_high_pct"] or abs(row["cost_change_pct"] + 30) < 2
    assert row["cost_change_ci_low_pct"] < row["cost_change_pct"] < row["cost_change_ci_high_pct"]
    assert (row["requests"], row["baseline_requests"]) == (3000, 3000)
    assert row["p95_latency_change_pct"] < 0
    assert row["summary"].startswith("m quant:int8: -3") and "n=3,000 vs 3,000" in row["summary"]


def test_interval_narrows_with_more_requests():
    small = compare(frame(200, 200, -0.1, seed=1), n_boot=400).iloc[0]
    large = compare(frame(5000, 5000, -0.1, seed=1), n_boot=400).iloc[0]
    width = lambda r: r["cost_change_ci_high_pct"] - r["cost_change_ci_low_pct"]  # noqa: E731
    assert width(large) < width(small) / 2


def test_no_baseline_no_row():
    f = frame(100, 100, 0.0)
    assert compare(f[f["technique"] != "baseline"]).empty


def test_large_sides_draw_their_sums_from_the_exact_poisson_moments(monkeypatch):
    import numpy as np

    from pipelines.analysis import compare as C

    rng = np.random.default_rng(1)
    cost = rng.lognormal(0, 1, 30_000)
    tokens = rng.integers(10, 500, 30_000).astype(float) + cost * 50
    monkeypatch.setattr(C, "EXACT_BOOTSTRAP_MAX", 10**9)
    exact = np.percentile(C._bootstrap_ratio(cost, tokens, 2000, np.random.default_rng(2)), [2.5, 97.5])
    monkeypatch.setattr(C, "EXACT_BOOTSTRAP_MAX", 20_000)
    moments = np.percentile(C._bootstrap_ratio(cost, tokens, 2000, np.random.default_rng(2)), [2.5, 97.5])
    width = exact[1] - exact[0]
    assert np.all(np.abs(moments - exact) < 0.05 * width), (exact, moments)
