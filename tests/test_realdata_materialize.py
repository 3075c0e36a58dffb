"""Issue #11 "Done when": every real dataset of ../shared/realdata, end to end through `infercost materialize`.

Each dataset is read as the README's "Input formats" documents (the options of tests/test_realdata_*.py), one day
each, from a landing folder of symlinks into the real data (nothing copied into the repo) with a small fleet
written here. Datasets whose reader or options differ need their own run (formats.yaml is one format per feed);
the runs share one INFERCOST_HOME. Then, with no silent loss: every file's rows read are loaded + quarantined
(+ skipped), every loaded request is in fct_request_cost, and no request is costed at zero (or unknown) energy or
zero capex without a cost_caveat.
"""

from pathlib import Path

import duckdb
import pytest

from tests.conftest import cli_env, run_cli

pytestmark = pytest.mark.e2e

INVENTORY = """device_id,host,region,device_type,purchase_cost,currency,in_service_from,amortization_years,tdp_w,idle_w,pue,overhead_per_hour
az-gpu-0,az-host,US-CAL-CISO,A100-SXM4,14000,USD,2015-06-01,12,400,55,1.2,0.28
az-gpu-1,az-host,US-CAL-CISO,A100-SXM4,14000,USD,2015-06-01,12,400,55,1.2,0.28
palmetto-v100,palmetto-v100,US-MIDA-PJM,V100-PCIE,9000,USD,2015-06-01,12,250,25,1.3,0.2
mc-gpu-0,mc-host,DE,A100-SXM4,13000,EUR,2015-06-01,12,400,55,1.3,0.25
"""
DEPLOYMENTS = """replica_id,device_id,valid_from,valid_to
az-r0,az-gpu-0,2015-06-01T00:00:00Z,
az-r1,az-gpu-1,2015-06-01T00:00:00Z,
mc-r0,mc-gpu-0,2015-06-01T00:00:00Z,
"""
MODELS = """model,family,params_b,active_params_b,is_moe,distilled_from,baseline_precision,baseline_model
llama-3.1-8b-instruct,llama-3.1,8.0,8.0,false,,bf16,llama-3.1-8b-instruct
mixtral-8x7b-instruct,mixtral,46.7,12.9,true,,bf16,mixtral-8x7b-instruct
Llama-2-7b-chat-hf,llama-2,6.7,6.7,false,,fp16,Llama-2-7b-chat-hf
Mistral-7B-v0.1,mistral,7.2,7.2,false,,fp16,Mistral-7B-v0.1
"""
REGIONS = """region,market,price_timezone,interval_minutes
US-CAL-CISO,CAISO-DAM-NP15,UTC,60
US-TEX-ERCO,ERCOT-DAM-HB_HUBAVG,America/Chicago,60
US-MIDA-PJM,PJM-RT-DOM,UTC,60
US-NY-NYIS,NYISO-DAM-CAPITL,UTC,60
DE-LU,RTE-DA-DE-LU,Europe/Berlin,60
DE,EPEX-DA-DE,Europe/Berlin,60
NP,NORDPOOL-DA,Europe/Oslo,60
PJM,PJM-DA-COMED,America/Chicago,60
"""
FX_RATES = "currency,usd_per_unit\nUSD,1.0\nEUR,1.08\n"

WILKINS_RUNS = {
    "llama2-7b_palmetto-v100_2024-03-29_08-43-09": "Llama-2-7b-chat-hf-palmetto-v100-1.csv",
    "mistral-7b_palmetto-v100_2024-03-29_11-19-25": "Mistral-7B-v0.1-palmetto-v100-1.csv",
}
WILKINS_MAPPING = """
feed: requests
source:
  type: csv
  header: false
  columns: [started_s, tag, duration_s, cpu0_uj, cpu1_uj, gpu_uj, max_new_tokens, input_tokens, iteration,
            model_name, n_gpus, prompt, output_tokens]
  skip_when: "tag NOT LIKE 'start-inference-%'"
fields:
  request_id: {sql: "model_name || ':' || tag"}
  started_at: {column: started_s, epoch: s}
  ended_at: {sql: "to_timestamp(started_s::DOUBLE + duration_s::DOUBLE)"}
  model: model_name
  device_id: {const: palmetto-v100}
  prompt_tokens: input_tokens
  completion_tokens: {sql: "output_tokens::BIGINT - input_tokens::BIGINT"}
  batching: {const: static}
"""
ALIBABA_MAPPING = """
feed: telemetry
source: {type: csv}
fields:
  device_id: container_ip
  ts: {column: timestamp_anon, epoch: s}
  util_pct: value
  power_window_s: {const: 57}
power_model: {idle_w: 30, tdp_w: 150}
"""
ARRIVAL = "model: {model}\n    replicas: {replicas}\n    prefill_tokens_per_s: 8000\n    decode_s_per_token: 0.025\n"


def runs(realdata: Path) -> list[dict]:
    """One materialize run per day: its landing files (feed -> {name in the landing: real file}), formats.yaml and
    extra config files."""
    green = realdata / "green-dcc-prices"
    epf = realdata / "epftoolbox-dayahead"
    wilkins = realdata / "wilkins-energy-inference"
    return [
        {
            "day": "2023-11-16",  # Azure's trace day, priced by every green-dcc 2023 market
            "files": {
                "requests": {f.name: f for f in sorted((realdata / "azure-llm-2023").glob("*.csv"))},
                "prices": {f.name: f for f in sorted(green.glob("*_2023.csv"))},
            },
            "formats": "requests:\n  format: azure_trace_csv\n  options:\n    "
            + ARRIVAL.format(model="llama-3.1-8b-instruct", replicas="az-r0,az-r1"),
        },
        {
            "day": "2024-03-29",  # Wilkins: both V100 runs, their request logs through a mapping, their nvidia-smi
            "files": {
                "requests": {f"{run}.csv": wilkins / run / log for run, log in WILKINS_RUNS.items()},
                "telemetry": {
                    f"palmetto-v100-{run.split('_')[0]}.csv": wilkins / run / "nvidia-smi.csv" for run in WILKINS_RUNS
                },
                "prices": {f.name: f for f in sorted(green.glob("*_2024.csv"))},
            },
            "formats": "requests:\n  format: mapped\n  options: {mapping: wilkins.yaml}\n"
            "telemetry:\n  options: {timezone: America/New_York, host: palmetto-v100, "
            "power_draw_window_s: 0}\n",
            "config": {"wilkins.yaml": WILKINS_MAPPING},
        },
        {
            "day": "2017-01-02",  # Mooncake placed on a day the EUR epftoolbox markets cover
            "files": {
                "requests": {"conversation_trace.jsonl": realdata / "mooncake-fast25" / "conversation_trace.jsonl"},
                "prices": {
                    "DE_epftoolbox.csv": epf / "Forecasts_DE_DNN_LEAR_ensembles.csv",
                    "NP_epftoolbox.csv": epf / "Forecasts_NP_DNN_LEAR_ensembles.csv",
                },
            },
            "formats": "requests:\n  format: mooncake_jsonl\n  options:\n    start: '2017-01-02T08:00:00Z'\n    "
            + ARRIVAL.format(model="mixtral-8x7b-instruct", replicas="mc-r0")
            + "prices:\n  options: {value_column: Real price, currency: EUR}\n",
        },
        {
            "day": "2017-01-03",  # epftoolbox's PJM file is in USD: the currency option is one per run
            "files": {"prices": {"PJM_epftoolbox.csv": epf / "Forecasts_PJM_DNN_LEAR_ensembles.csv"}},
            "formats": "prices:\n  options: {value_column: Real price, currency: USD}\n",
        },
        {
            "day": "2022-09-11",  # Alibaba's anonymized first day: utilization-only telemetry with a power model
            "files": {
                "telemetry": {
                    "pod_gpu_duty_cycle_anon.tar.gz": realdata / "alibaba-genai-2026" / "pod_gpu_duty_cycle_anon.tar.gz"
                }
            },
            "formats": "telemetry:\n  format: mapped\n  options: {mapping: alibaba.yaml}\n",
            "config": {"alibaba.yaml": ALIBABA_MAPPING},
        },
    ]


def write_run(base: Path, run: dict) -> tuple[Path, Path]:
    landing, config = base / f"landing-{run['day']}", base / f"config-{run['day']}"
    fleet = landing / "fleet"
    fleet.mkdir(parents=True)
    for name, text in {
        "inventory": INVENTORY,
        "deployments": DEPLOYMENTS,
        "models": MODELS,
        "regions": REGIONS,
        "fx_rates": FX_RATES,
    }.items():
        (fleet / f"{name}.csv").write_text(text)
    for feed in ("requests", "telemetry", "prices", "carbon"):
        (landing / feed).mkdir()
        for name, real in run["files"].get(feed, {}).items():
            assert real.exists(), real
            (landing / feed / name).symlink_to(real)
    config.mkdir()
    (config / "formats.yaml").write_text(run["formats"])
    for name, text in run.get("config", {}).items():
        (config / name).write_text(text)
    return landing, config


@pytest.fixture(scope="module")
def materialized(realdata, tmp_path_factory):
    base = tmp_path_factory.mktemp("realdata_e2e")
    home = base / "home"
    done = []
    for run in runs(realdata):
        landing, config = write_run(base, run)
        # no INFERCOST_START_DATE: materialize's first partition follows the (2016-2024) day asked for
        run_cli(
            ["materialize", "--partition", run["day"]],
            env=cli_env(home=home, landing=landing, INFERCOST_CONFIG_DIR=str(config)),
            timeout=1200,
        )
        done.append((run, landing))
    live = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    published = duckdb.connect(str(home / "published" / "warehouse.duckdb"), read_only=True)
    for con in (live, published):
        con.execute("SET TimeZone = 'UTC'")
    yield {"runs": done, "live": live, "published": published}
    live.close()
    published.close()


def file_stats(con, path: Path) -> list[tuple]:
    return con.execute(
        "SELECT partition_date::VARCHAR, rows_read, rows_loaded, rows_quarantined, rows_skipped "
        "FROM ingest_file_stats WHERE source_file IN (?, ?)",
        [str(path), str(path.resolve())],
    ).fetchall()


def test_every_real_file_is_read_with_no_row_lost(materialized):
    con = materialized["live"]
    for run, landing in materialized["runs"]:
        for feed, files in run["files"].items():
            for name in files:
                stats = [s for s in file_stats(con, landing / feed / name) if s[0] == run["day"]]
                assert stats, f"{feed}/{name}: no ingest_file_stats row for {run['day']}"
                for _, read, loaded, quarantined, skipped in stats:
                    assert read > 0 and loaded > 0, (feed, name, stats)
                    assert read == loaded + quarantined + skipped, (feed, name, stats)


def test_the_known_row_counts_load(materialized):
    con = materialized["live"]

    def loaded(feed, day, like):
        return con.execute(
            "SELECT sum(rows_loaded), sum(rows_quarantined) FROM ingest_file_stats "
            "WHERE feed = ? AND partition_date = ? AND source_file LIKE ?",
            [feed, day, like],
        ).fetchall()[0]

    # SOURCE.md counts: Azure 19,366 + 8,819 requests, Mooncake 12,031, all in their day
    assert loaded("requests", "2023-11-16", "%Azure%") == (28_185, 0)
    assert loaded("requests", "2017-01-02", "%conversation_trace%") == (12_031, 0)
    # Wilkins: every inference row loads, the two setup rows of each log are counted as skipped
    assert loaded("requests", "2024-03-29", "%palmetto%")[1] == 0
    (skipped,) = con.execute(
        "SELECT sum(rows_skipped) FROM ingest_file_stats WHERE feed = 'requests' AND source_file LIKE '%palmetto%'"
    ).fetchall()[0]
    assert skipped == 4
    # epftoolbox: one price an hour of the day, per market
    for region, day in (("DE", "2017-01-02"), ("NP", "2017-01-02"), ("PJM", "2017-01-03")):
        (n,) = con.execute(
            "SELECT count(*) FROM raw_prices WHERE region = ? AND interval_start::DATE = ?", [region, day]
        ).fetchall()[0]
        assert n == 24, (region, n)


def test_every_loaded_request_is_costed(materialized):
    raw = materialized["live"].execute("SELECT count(*) FROM raw_requests").fetchall()[0][0]
    fct, costed = (
        materialized["published"].execute("SELECT count(*), count(total_cost_usd) FROM fct_request_cost").fetchall()[0]
    )
    assert raw == fct == costed > 40_000


def test_no_request_costed_at_zero_energy_or_capex_without_a_caveat(materialized):
    con = materialized["published"]
    silent = con.execute("""
        SELECT model, count(*) FROM fct_request_cost
        WHERE (energy_j IS NULL OR energy_j = 0 OR capex_cost_usd IS NULL OR capex_cost_usd = 0)
          AND cost_caveat IS NULL
        GROUP BY model""").fetchall()
    assert silent == []
    # the Wilkins requests are metered by their real V100 trace: energy and capex both, no caveat needed
    metered, total = con.execute(
        "SELECT count(*) FILTER (WHERE energy_j > 0 AND capex_cost_usd > 0), count(*) "
        "FROM fct_request_cost WHERE model IN ('Llama-2-7b-chat-hf', 'Mistral-7B-v0.1')"
    ).fetchall()[0]
    assert metered == total == 63 + 74
