"""User mapping files (YAML): real files from ../shared/realdata read through mappings, and the mapping language."""

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.attribution.kernel import TS_TYPE, attribute_energy
from pipelines.ingest.loader import ingest_feed, ingest_files
from pipelines.warehouse.connection import connect
from tests.conftest import assert_row_identity
from tests.test_realdata_wilkins import RUNS, read_request_log

# the README's worked example: the Wilkins runs' headerless request log, read as requests
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
  completion_tokens: {sql: "output_tokens::BIGINT - input_tokens::BIGINT"}  # the log counts the prompt in
  batching: {const: static}
"""


@pytest.mark.parametrize("run", sorted(RUNS))
def test_wilkins_request_log_through_a_mapping(run, realdata, tmp_path):
    folder = realdata / "wilkins-energy-inference" / run
    (tmp_path / "wilkins.yaml").write_text(WILKINS_MAPPING)
    con = connect(tmp_path / "w.duckdb")
    logged = read_request_log(folder / RUNS[run])
    report = ingest_files(
        con,
        "requests",
        [folder / RUNS[run]],
        logged[0][1].date(),
        fmt="mapped",
        options={"mapping": str(tmp_path / "wilkins.yaml")},
    )

    # every inference row loads (prompt I's quoted newline keeps its record whole); the two setup rows are
    # quarantined as skipped, not dropped
    assert report.rows_loaded == len(logged)
    assert [r for (r,) in con.execute("SELECT reason FROM ingest_quarantine").fetchall()] == [
        "skipped by the mapping: tag NOT LIKE 'start-inference-%'"
    ] * 2
    got = {
        r[0]: r[1:]
        for r in con.execute("SELECT request_id, started_at, ended_at, completion_tokens FROM raw_requests").fetchall()
    }
    model = con.execute("SELECT any_value(model) FROM raw_requests").fetchall()[0][0]
    for tag, start, end, _ in logged:
        s, e, completion = got[f"{model}:{tag}"]
        assert abs((s - start).total_seconds()) <= 1e-6 and abs((e - end).total_seconds()) <= 2e-6
        assert 0 < completion <= 32  # at most max new tokens (the log counts the prompt in its output)
    assert_row_identity(con, "requests")


@pytest.mark.slow
def test_alibaba_utilization_only_telemetry_gets_a_modelled_power(realdata, tmp_path):
    (tmp_path / "alibaba.yaml").write_text("""
feed: telemetry
source: {type: csv}
fields:
  device_id: container_ip
  ts: {column: timestamp_anon, epoch: s}
  util_pct: value
  power_window_s: {const: 57}   # a duty cycle over the 57 s scrape interval
power_model: {idle_w: 30, tdp_w: 150}  # an A10-class GPU: the trace does not name its hardware
""")
    con = connect(tmp_path / "w.duckdb")
    archive = realdata / "alibaba-genai-2026" / "pod_gpu_duty_cycle_anon.tar.gz"
    total = 0
    for day in (date(2022, 9, 11), date(2022, 9, 12)):
        report = ingest_files(
            con, "telemetry", [archive], day, fmt="mapped", options={"mapping": str(tmp_path / "alibaba.yaml")}
        )
        total += report.rows_read
        assert report.rows_quarantined == 0
    assert total == 157_417  # every row of the published file, in one day or the other
    n, devices, lo, hi, est, bad = con.execute(
        "SELECT count(*), count(DISTINCT device_id), min(power_w), max(power_w), "
        "count(*) FILTER (WHERE estimated_fields = 'power_w'), "
        "count(*) FILTER (WHERE abs(power_w - (30 + 120 * util_pct / 100)) > 1e-9) FROM raw_telemetry"
    ).fetchall()[0]
    assert (n, devices, est, bad) == (157_417, 143, 157_417, 0)
    assert 30 <= lo < hi <= 150
    assert_row_identity(con, "telemetry")


def test_power_model_without_figures_needs_the_device_in_the_inventory(con, landing, config_dir):
    (config_dir / "util.yaml").write_text(
        "feed: telemetry\nfields: {device_id: gpu, ts: time, util_pct: util}\npower_model: {}\n"
    )
    (landing / "telemetry" / "util.csv").write_text(
        "gpu,time,util\nGPU-500320d4-f8f2-4545-b2d7-e6de5793354a,2026-11-02T10:00:00Z,50\n"
        "GPU-unknown,2026-11-02T10:00:00Z,50\n"
    )
    ingest_feed(con, "telemetry", landing, date(2026, 11, 2), fmt="mapped", options={"mapping": "util.yaml"})
    assert con.execute("SELECT power_w, estimated_fields FROM raw_telemetry").fetchall() == [(385.5, "power_w")]
    assert con.execute("SELECT reason FROM ingest_quarantine").fetchall() == [
        ("power model: device not in the inventory (give idle_w and tdp_w in the mapping)",)
    ]


def test_energy_counter_csv_alone_gives_the_energy(con, landing):
    t0 = datetime(2026, 11, 2, 10, tzinfo=UTC).timestamp()
    dev = "GPU-500320d4-f8f2-4545-b2d7-e6de5793354a"
    lines = ["timestamp,gpu_uuid,total_energy_mj,hostname"]
    lines += [f"{t0 + i},{dev},{1_000_000 + 300_000 * i},h" for i in range(11)]  # 300 W for 10 s
    lines += [f"{t0 + 11},{dev},-5,h", f"{t0 + 12},{dev},lots,h"]
    (landing / "telemetry" / "nvml.csv").write_text("\n".join(lines) + "\n")
    report = ingest_feed(con, "telemetry", landing, date(2026, 11, 2), fmt="energy_counter_csv")
    assert (report.rows_loaded, report.rows_quarantined) == (11, 2)
    telemetry = con.sql(
        "SELECT device_id, ts, power_w, power_window_s, energy_counter_j FROM raw_telemetry"
    ).to_arrow_table()
    assert telemetry["power_w"].null_count == 11  # no power column: the counter alone
    start = datetime.fromtimestamp(t0, UTC)
    requests = pa.table(
        {
            "request_id": ["r"],
            "device_id": [dev],
            "started_at": pa.array([start], TS_TYPE),
            "ended_at": pa.array([datetime.fromtimestamp(t0 + 10, UTC)], TS_TYPE),
        }
    )
    result = attribute_energy(requests, telemetry, max_gap_s=2.0)
    assert result.per_request["energy_j"][0].as_py() == pytest.approx(3000.0, rel=1e-12)
    assert sorted(r for (r,) in con.execute("SELECT reason FROM ingest_quarantine").fetchall()) == [
        "energy_counter_j below 0: -0.005",
        "unparseable energy_counter_j: lots",
    ]


def test_jsonl_mapping_paths_time_zones_and_technique_tags(con, landing, config_dir):
    (config_dir / "gw.yaml").write_text(r"""
feed: requests
source: {type: jsonl}
fields:
  request_id: $.rid
  started_at: {path: $.t.start, format: "%d/%m/%Y %H:%M:%S", timezone: Europe/Berlin}
  ended_at: {path: $.t.end, timezone: Europe/Berlin}
  model: $.engine.model
  replica_id: $.engine.pod
  prompt_tokens: $.tok.in
  completion_tokens: $.tok.out
  quantization: {path: $.engine.tags, regex: 'quant=(\w+)', map: {FP8: fp8, W4A16: int4}}
  speculative: {path: $.engine.tags, regex: 'spec=(\w+)'}
""")
    rows = [
        {
            "rid": "a",
            "t": {"start": "02/11/2026 11:00:00", "end": "2026-11-02 11:00:02.5"},
            "engine": {"model": "llama-3.1-8b-instruct", "pod": "r0", "tags": "quant=FP8;spec=eagle"},
            "tok": {"in": 10, "out": 5},
        },
        {
            "rid": "b",
            "t": {"start": "02/11/2026 11:00:00", "end": "2026-11-02T10:00:03Z"},
            "engine": {"model": "m", "pod": "r0", "tags": "quant=W4A16"},
            "tok": {"in": 10, "out": 5},
        },
        {"rid": "c", "t": {"start": "yesterday"}, "engine": {}, "tok": {}},
    ]
    (landing / "requests" / "gw.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n{oops\n")
    report = ingest_feed(con, "requests", landing, date(2026, 11, 2), fmt="mapped", options={"mapping": "gw.yaml"})
    got = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT request_id, started_at, ended_at, quantization, speculative, status FROM raw_requests"
        ).fetchall()
    }
    assert got["a"] == (
        datetime(2026, 11, 2, 10, tzinfo=UTC),
        datetime(2026, 11, 2, 10, 0, 2, 500000, tzinfo=UTC),
        "fp8",
        "eagle",
        "ok",
    )
    assert got["b"][2:4] == ("int4", None)
    assert (report.rows_read, report.rows_loaded) == (4, 2)
    assert sorted(r for (r,) in con.execute("SELECT reason FROM ingest_quarantine").fetchall()) == [
        "malformed JSON",
        "unparseable started_at: yesterday",
    ]


def test_mapping_errors_name_the_mapping_file(con, landing, config_dir):
    (landing / "requests" / "x.csv").write_text("a,b\n1,2\n")
    (config_dir / "bad.yaml").write_text("feed: requests\nfields: {request_id: a, cost: b}\n")
    with pytest.raises(ValueError, match=r"bad.yaml: fields \['cost'\] are not columns of the requests contract"):
        ingest_feed(con, "requests", landing, date(2026, 11, 2), fmt="mapped", options={"mapping": "bad.yaml"})
    (config_dir / "bad.yaml").write_text("feed: requests\nfields: {request_id: nope}\n")
    with pytest.raises(ValueError, match="names column 'nope'"):
        ingest_feed(con, "requests", landing, date(2026, 11, 2), fmt="mapped", options={"mapping": "bad.yaml"})
    assert Path(config_dir / "bad.yaml").exists()
