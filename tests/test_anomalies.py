"""Anomaly detection on daily series: robust baseline, weekday awareness, minimum effect, likely cause."""

from datetime import date, timedelta

import numpy as np
import pandas as pd

from pipelines.analysis.anomalies import METRICS, detect


def series(n_days=21, seed=0, overrides=None):
    rng = np.random.default_rng(seed)
    start = date(2026, 10, 1)
    rows = []
    for i in range(n_days):
        day = start + timedelta(days=i)
        weekend = day.weekday() >= 5
        row = {
            "dimension": "model",
            "series_key": "m",
            "day": day,
            "cost_per_1m_output_tokens_usd": (8.0 if weekend else 5.0) * rng.normal(1, 0.02),
            "energy_cost_per_1m_output_tokens_usd": 0.2 * rng.normal(1, 0.03),
            "j_per_output_token": 3.0 * rng.normal(1, 0.02),
            "idle_share": 0.10 + rng.normal(0, 0.005),
            "fully_loaded_cost_usd": 300 * rng.normal(1, 0.03),
            "caveat_share": 0.0,
            "effective_price_usd_per_mwh": 60 * rng.normal(1, 0.03),
            "s_per_output_token": 0.05 * rng.normal(1, 0.02),
            "utilization": 0.6 * rng.normal(1, 0.02),
            "requests": 10_000 * rng.normal(1, 0.03),
        }
        for (d, col), value in (overrides or {}).items():
            if d == i:
                row[col] = value
        rows.append(row)
    return pd.DataFrame(rows)


def test_clean_series_raise_nothing():
    for seed in range(5):
        assert detect(series(seed=seed)).empty


def test_weekday_pattern_is_not_an_anomaly_but_a_weekday_jump_is():
    s = series()
    saturday = next(  # noqa: F841 (read by the query string)
        i for i, d in enumerate(s["day"]) if d.weekday() == 5 and i >= 14
    )
    assert detect(series()).query("day == @s.day[@saturday]").empty
    # a weekday priced like a weekend is flagged
    monday = next(i for i, d in enumerate(s["day"]) if d.weekday() == 0 and i >= 14)
    found = detect(series(overrides={(monday, "cost_per_1m_output_tokens_usd"): 8.0}))
    assert list(found["metric"]) == ["cost_per_1m_output_tokens_usd"]
    assert found["expected"].iloc[0] < 5.5 and found["effect_pct"].iloc[0] > 40


def test_likely_causes():
    day = 20
    spike = detect(
        series(
            overrides={(day, "energy_cost_per_1m_output_tokens_usd"): 1.0, (day, "effective_price_usd_per_mwh"): 300.0}
        )
    )
    assert set(spike["likely_cause"]) == {"price spike"}
    throttled = detect(
        series(
            overrides={(day, "j_per_output_token"): 4.5, (day, "s_per_output_token"): 0.1, (day, "utilization"): 0.9}
        )
    )
    assert set(throttled["likely_cause"]) == {"slower decoding (throttling?)"}
    gap = detect(series(overrides={(day, "j_per_output_token"): 2.0, (day, "caveat_share"): 0.05}))
    assert set(gap["likely_cause"]) == {"telemetry gap"}


def test_small_changes_and_short_history_are_ignored():
    assert detect(series(overrides={(20, "cost_per_1m_output_tokens_usd"): 5.6})).empty  # +12 %: below the 15 % effect
    assert detect(series(n_days=4, overrides={(3, "j_per_output_token"): 9.0})).empty  # too little history
    assert set(METRICS) >= {
        "cost_per_1m_output_tokens_usd",
        "j_per_output_token",
        "idle_share",
        "fully_loaded_cost_usd",
    }
