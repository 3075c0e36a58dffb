"""Anomalies planted in a generated week are each flagged by the right check and reach a webhook; the clean days
raise nothing."""

import gzip
import json
import shutil

import pytest

from pipelines.devtools.generate import Plant, generate
from tests.conftest import cli_env, run_cli
from tests.test_alerts import Receiver

pytestmark = pytest.mark.e2e

GAP_DAY, LAST_DAY = "2026-11-07", "2026-11-08"


@pytest.fixture(scope="module")
def delivered(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    landing = root / "landing"
    # day 7: the 70B fp8 replica's GPUs throttle, and us-west prices spike x60 for four hours
    generate(
        landing,
        devices=8,
        days=7,
        seed=21,
        load=0.3,
        progress=lambda m: None,
        plant=Plant(day=6, throttle_replica="us-west-h100-large-000-r1", price_spike_region="us-west"),
    )
    # day 6: the host's telemetry stops for an hour
    path = landing / "telemetry" / f"us-west-h100-large-000_{GAP_DAY}.csv.gz"
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    path.write_bytes(gzip.compress(("\n".join(x for x in lines if not x.startswith("2026/11/07 12:")) + "\n").encode()))
    # day 7: the request log is delivered twice under a new name
    shutil.copy(landing / "requests" / f"{LAST_DAY}.jsonl.gz", landing / "requests" / f"{LAST_DAY}-resent.jsonl.gz")

    receiver = Receiver()
    env = cli_env(
        home=root / "home",
        landing=landing,
        INFERCOST_ALERT_WEBHOOK_URL=receiver.url + "/hook",
        INFERCOST_ALERT_WEBHOOK_SECRET="k",
    )
    try:
        run_cli(["materialize", "--from", "2026-11-02", "--to", LAST_DAY], env=env, timeout=1200)
        run_cli(["alerts", "send"], env=env)
        run_cli(["alerts", "send"], env=env)
    finally:
        receiver.close()
    assert len(receiver.requests) == 1, "the second send must not alert again"
    return json.loads(receiver.requests[0]["body"])["alerts"]


def failed_checks(alerts, day):
    return {a["details"]["check"] for a in alerts if a["kind"] == "quality_check" and a["day"] == day}


def anomalies(alerts, day):
    return [a["details"] for a in alerts if a["kind"] == "cost_anomaly" and a["day"] == day]


def test_clean_days_raise_no_alert(delivered):
    assert {a["day"] for a in delivered} <= {GAP_DAY, LAST_DAY}


def test_telemetry_gap_is_flagged(delivered):
    assert {"telemetry_every_device_covered", "requests_inside_telemetry_gaps"} <= failed_checks(delivered, GAP_DAY)
    # the coverage is the attribution's metered time: 23 of the day's 24 hours on the host's devices
    (covered,) = [
        a
        for a in delivered
        if a["kind"] == "quality_check"
        and a["day"] == GAP_DAY
        and a["details"]["check"] == "telemetry_every_device_covered"
    ]
    assert "(coverage=0.9583)" in covered["details"]["failures"]


def test_request_log_loaded_twice_is_flagged(delivered):
    assert "requests_ingest_quarantine_rate" in failed_checks(delivered, LAST_DAY)
    assert "requests_ingest_quarantine_rate" not in failed_checks(delivered, GAP_DAY)


def test_price_spike_is_flagged(delivered):
    assert "prices_within_bounds" in failed_checks(delivered, LAST_DAY)
    spikes = [a for a in anomalies(delivered, LAST_DAY) if a["metric"] == "energy_cost_per_1m_output_tokens_usd"]
    assert spikes and all(a["likely_cause"] == "price spike" and a["effect_pct"] > 50 for a in spikes)


def test_throttled_gpu_is_flagged(delivered):
    throttled = [
        a
        for a in anomalies(delivered, LAST_DAY)
        if a["series_key"] == "llama-3.1-70b-instruct / quant:fp8" and a["metric"] == "j_per_output_token"
    ]
    assert throttled and throttled[0]["likely_cause"] == "slower decoding (throttling?)"
    assert throttled[0]["effect_pct"] > 15
    # the untouched bf16 replica of the same model is not flagged for energy per token
    assert not [
        a
        for a in anomalies(delivered, LAST_DAY)
        if a["series_key"] == "llama-3.1-70b-instruct / baseline" and a["metric"] == "j_per_output_token"
    ]
