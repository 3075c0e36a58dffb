"""Ingest: every line loaded or quarantined with a reason, per-file row identity, idempotent re-runs."""

import gzip
import json
from datetime import date

import pytest

from pipelines.ingest.loader import IngestError, ingest_feed, ingest_fleet_table
from tests.conftest import REPO, assert_row_identity, quarantine  # noqa: F401

DAY = date(2026, 11, 2)


def good_request(i, **over):
    obj = {
        "id": f"req-{i}",
        "model": "llama-3.1-8b-instruct",
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 10}},
        "started_at": "2026-11-02T10:00:00.000001Z",
        "first_token_at": "2026-11-02T10:00:00.2Z",
        "ended_at": "2026-11-02T10:00:03Z",
        "replica_id": "r0",
        "host": "h0",
        "status": "ok",
        "metadata": {"tenant": "team-a", "quantization": "int8", "speculative": None, "batching": "continuous"},
    }
    obj.update(over)
    return json.dumps(obj)


def test_requests_bad_lines_are_quarantined_with_reasons(con, landing):
    lines = [
        good_request(1),  # 1 ok
        "{not json",  # 2
        good_request(3, usage={"prompt_tokens": -5, "completion_tokens": 3}),  # 3 negative
        good_request(4, ended_at="2026-11-02T09:00:00Z"),  # 4 ends before start
        json.dumps({"id": "req-5", "model": "m"}),  # 5 missing started_at
        good_request(1),  # 6 duplicate of line 1
        "",  # 7 blank: not a row
        good_request(8, started_at="yesterday"),  # 8 unparseable
        good_request(9, replica_id=None),  # 9 no replica, no device
        good_request(10, metadata={"quantization": "int3"}),  # 10 an unknown tag value: loads as logged
        good_request(
            11, started_at="2090-01-01T00:00:00Z", ended_at="2090-01-01T00:00:01Z", created=1793620800
        ),  # 11 far future, dated by created
        "[1, 2]",  # 12 not an object
    ]
    body = "\r\n".join(lines) + "\r\n"
    (landing / "requests" / "2026-11-02.jsonl").write_bytes(body.encode() + b"\xff\xfe broken utf8\n")
    report = ingest_feed(con, "requests", landing, DAY)
    q = quarantine(con, "requests")
    assert report.rows_loaded == 2
    assert report.rows_read == report.rows_loaded + report.rows_quarantined == 12
    assert q[2] == "malformed JSON"
    assert q[3].startswith("prompt_tokens below 0")
    assert q[4] == "ended_at before started_at"
    assert q[5] == "missing started_at"
    assert q[6].startswith("duplicate request_id (first loaded from ") and q[6].endswith(":1)")
    assert q[8] == "unparseable started_at: yesterday"
    assert q[9] == "missing replica_id and device_id"
    assert 10 not in q
    assert q[11].startswith("implausible started_at")
    assert q[12] == "not a JSON object"
    assert q[13] == "malformed JSON"  # the non-UTF-8 line, bytes replaced, kept as raw text
    raw = con.execute("SELECT raw_text FROM ingest_quarantine WHERE source_line = 13").fetchall()[0][0]
    assert "broken utf8" in raw
    row = con.execute(
        "SELECT request_id, started_at, prompt_tokens, cached_prompt_tokens, quantization, tenant "
        "FROM raw_requests ORDER BY request_id"
    ).fetchall()[0]
    assert row[0] == "req-1" and row[1].microsecond == 1 and row[2:] == (100, 10, "int8", "team-a")
    assert con.execute("SELECT quantization FROM raw_requests WHERE request_id = 'req-10'").fetchall() == [("int3",)]
    assert_row_identity(con, "requests")


def test_requests_json_judged_by_one_parse_of_each_line(con, landing):
    """A line is JSON or not by the same parse that reads its fields (try(json_extract_string)): text around an
    object, comments, single quotes, lone surrogates are malformed; JSON that is not an object (null, a number, a
    string, a deep array) says so; an object nested 3,000 deep, NaN, a trailing comma and a repeated key are JSON."""
    deep_object = '{"a":' * 3000 + "1" + "}" * 3000
    lines = [
        good_request(1),  # 1 loads
        good_request(2)[:-1],  # 2 cut short
        good_request(3) + " // note",  # 3 a comment after the object
        good_request(4) + good_request(5),  # 4 two objects on one line
        "{'id': 'req-6'}",  # 5 single quotes
        '{"id": "req-7", "model": "\\ud800"}',  # 6 a lone surrogate
        "null",  # 7
        "5",  # 8
        '"text"',  # 9
        "[" * 5000 + "]" * 5000,  # 10 a deep array
        deep_object,  # 11 JSON, but no request_id
        good_request(12, model=None)[:-1] + ',"id":"req-12b",}',  # 12 trailing comma and a repeated key: JSON
        good_request(13, usage={"prompt_tokens": float("nan"), "completion_tokens": 2}),  # 13 NaN tokens
    ]
    (landing / "requests" / "2026-11-02.jsonl").write_text("\n".join(lines) + "\n")
    report = ingest_feed(con, "requests", landing, DAY)
    q = quarantine(con, "requests")
    assert report.rows_read == 13 and report.rows_loaded == 1 and 1 not in q
    assert all(q[line] == "malformed JSON" for line in (2, 3, 4, 5, 6)), q
    assert all(q[line] == "not a JSON object" for line in (7, 8, 9, 10)), q
    assert q[11] == "missing request_id"
    assert q[12] == "missing model"  # parsed: the repeated key's first value is the one read
    assert q[13].startswith("unparseable prompt_tokens")


def test_rerunning_a_partition_replaces_it(con, landing):
    (landing / "requests" / "a.jsonl").write_text("\n".join(good_request(i) for i in range(5)) + "\n{bad\n")
    first = ingest_feed(con, "requests", landing, DAY)
    second = ingest_feed(con, "requests", landing, DAY)
    assert (first.rows_loaded, first.rows_quarantined) == (second.rows_loaded, second.rows_quarantined) == (5, 1)
    assert con.execute("SELECT count(*) FROM raw_requests").fetchall()[0][0] == 5
    assert con.execute("SELECT count(*) FROM ingest_quarantine").fetchall()[0][0] == 1
    assert con.execute("SELECT count(*) FROM ingest_file_stats WHERE feed = 'requests'").fetchall()[0][0] == 1


def test_rows_of_other_days_wait_for_their_partition(con, landing):
    other = good_request(2, started_at="2026-11-03T01:00:00Z", first_token_at=None, ended_at="2026-11-03T01:00:05Z")
    (landing / "requests" / "mixed.jsonl").write_text(good_request(1) + "\n" + other + "\n{broken after day 3\n")
    r2 = ingest_feed(con, "requests", landing, DAY)
    r3 = ingest_feed(con, "requests", landing, date(2026, 11, 3))
    assert (r2.rows_read, r2.rows_loaded) == (1, 1)
    # the unparseable line takes the day of the line before it: quarantined once, in day 3
    assert (r3.rows_read, r3.rows_loaded, r3.rows_quarantined) == (2, 1, 1)


def test_gzip_truncated_and_unreadable_files(con, landing):
    data = gzip.compress(("\n".join(good_request(i) for i in range(200)) + "\n").encode())
    (landing / "requests" / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    report = ingest_feed(con, "requests", landing, DAY)
    reasons = [r for (r,) in con.execute("SELECT reason FROM ingest_quarantine").fetchall()]
    assert report.rows_loaded > 0
    assert any(r.startswith("truncated gzip stream") for r in reasons)
    assert_row_identity(con, "requests")
    (landing / "requests" / "junk.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(IngestError, match="junk.jsonl.gz"):
        ingest_feed(con, "requests", landing, DAY)


def test_empty_file_reads_zero_rows(con, landing):
    (landing / "requests" / "empty.jsonl").write_text("")
    report = ingest_feed(con, "requests", landing, DAY)
    assert report.rows_read == 0


NVSMI_HEADER = "timestamp, index, uuid, name, power.draw [W], utilization.gpu [%], memory.used [MiB]"


def test_nvidia_smi_csv_with_units_missing_values_and_bad_rows(con, landing):
    rows = [
        NVSMI_HEADER,
        "2026/11/02 00:00:01.003, 0, GPU-a, NVIDIA H100 80GB HBM3, 71.50 W, 0 %, 1024 MiB",
        "2026/11/02 00:00:02.004, 0, GPU-a, NVIDIA H100 80GB HBM3, 160.25 W, 55 %, 2048 MiB",
        "2026/11/02 00:00:03.004, 0, GPU-a, NVIDIA H100 80GB HBM3, [N/A], 55 %, 2048 MiB",
        "2026/11/02 00:00:04.004, 0, GPU-a, NVIDIA H100 80GB HBM3, -3.0 W, 55 %, 2048 MiB",
        "2026/11/02 00:00:05.004, 0, GPU-a, NVIDIA H100",
        NVSMI_HEADER,
        "2026/11/02 00:00:06.004, 0, GPU-a, NVIDIA H100 80GB HBM3, 170.00, [Not Supported], 2048",
    ]
    (landing / "telemetry" / "host1_2026-11-02.csv").write_text("\n".join(rows) + "\n")
    report = ingest_feed(con, "telemetry", landing, DAY, options={"timezone": "UTC"})
    q = quarantine(con, "telemetry")
    assert report.rows_read == 7 and report.rows_loaded == 3
    assert q[4] == "missing power_w and energy_counter_j"  # [N/A]
    assert q[5].startswith("power_w below 0")
    assert q[6] == "expected 7 fields, got 4"
    assert q[7] == "repeated header line"
    got = con.execute(
        "SELECT device_id, ts, power_w, power_window_s, util_pct, mem_used_mib, host FROM raw_telemetry ORDER BY ts"
    ).fetchall()
    assert got[0][0] == "GPU-a" and got[0][1].microsecond == 3000 and got[0][2:] == (71.5, 1.0, 0.0, 1024.0, "host1")
    assert got[2][4] is None  # [Not Supported] utilization is a missing optional value
    assert_row_identity(con, "telemetry")


def test_nvidia_smi_local_time_zone_option(con, landing):
    rows = ["timestamp, power.draw.instant [W]", "2026/11/02 01:30:00.000, 100.0"]
    (landing / "telemetry" / "gpu7.csv").write_text("\n".join(rows) + "\n")  # one device, named by the host option
    ingest_feed(con, "telemetry", landing, DAY, options={"timezone": "Europe/Berlin", "host": "gpu7"})
    ts, window, device = con.execute("SELECT ts, power_window_s, device_id FROM raw_telemetry").fetchall()[0]
    assert (ts.hour, ts.minute) == (0, 30)  # CET is UTC+1 in November
    assert window == 0.0  # power.draw.instant is an instantaneous reading
    assert device == "gpu7"


def test_nvidia_smi_integrates_the_average_and_keeps_the_instant_apart(con, landing):
    """Issue 12: a file with power.draw (a 1 s average on an H100) and power.draw.instant integrates the average;
    the instant reading is kept as power_instant_w, and the ingest says which column the energy came from."""
    rows = [
        "timestamp, uuid, power.draw [W], power.draw.instant [W]",
        "2026/11/02 00:00:01.000, GPU-h, 300.00 W, 610.00 W",
        "2026/11/02 00:00:02.000, GPU-h, 310.00 W, 95.00 W",
    ]
    (landing / "telemetry" / "host1_2026-11-02.csv").write_text("\n".join(rows) + "\n")
    (landing / "telemetry" / "host2_2026-11-02.csv").write_text(
        "timestamp, uuid, power.draw.instant [W]\n2026/11/02 00:00:01.000, GPU-v, 120.00 W\n"
    )
    report = ingest_feed(con, "telemetry", landing, DAY)
    got = con.execute(
        "SELECT device_id, power_w, power_window_s, power_instant_w, energy_source FROM raw_telemetry "
        "ORDER BY device_id, ts"
    ).fetchall()
    assert got == [
        ("GPU-h", 300.0, 1.0, 610.0, "power.draw"),
        ("GPU-h", 310.0, 1.0, 95.0, "power.draw"),
        ("GPU-v", 120.0, 0.0, None, "power.draw.instant"),  # only an instant reading: it is the energy
    ]
    by_file = {f.source_file.rsplit("/", 1)[1]: f for f in report.files}
    assert by_file["host1_2026-11-02.csv"].energy_source == "power.draw"
    assert any(line.endswith("energy from power.draw") for line in report.file_lines())
    stats = dict(
        con.execute(
            "SELECT regexp_extract(source_file, '[^/]+$'), energy_source FROM ingest_file_stats "
            "WHERE feed = 'telemetry'"
        ).fetchall()
    )
    assert stats == {"host1_2026-11-02.csv": "power.draw", "host2_2026-11-02.csv": "power.draw.instant"}


def test_prices_local_time_currency_and_duplicates(con, landing):
    rows = [
        "Datetime,Price (EUR/MWh)",
        "2026-11-02 01:00:00,50.5",
        "2026-11-02 02:00:00,-3.25",
        "2026-11-02 02:00:00,99",
        "2026-11-02 03:00:00,abc",
    ]
    (landing / "prices" / "eu-central_x.csv").write_text("\n".join(rows) + "\n")
    report = ingest_feed(con, "prices", landing, DAY)
    assert (report.rows_loaded, report.rows_quarantined) == (2, 2)
    got = con.execute(
        "SELECT interval_start, interval_end, price_per_mwh, currency, market FROM raw_prices ORDER BY 1"
    ).fetchall()
    assert got[0][0].hour == 0 and got[0][1].hour == 1  # 01:00 Berlin = 00:00 UTC
    assert got[1][2] == -3.25 and got[1][3] == "EUR" and got[1][4] == "EPEX-DA-DE-LU"
    q = quarantine(con, "prices")
    assert q[4].startswith("duplicate region/interval_start")
    assert q[5] == "unparseable price_per_mwh: abc"


def test_price_file_of_unknown_region_is_quarantined_and_the_others_load(con, landing):
    (landing / "prices" / "mars_2026.csv").write_text("Datetime,Price (USD/MWh)\n2026-11-02 00:00:00,1\n")
    (landing / "prices" / "us-west_2026.csv").write_text("Datetime,Price (USD/MWh)\n2026-11-02 00:00:00,30\n")
    report = ingest_feed(con, "prices", landing, DAY)
    assert (report.rows_loaded, report.rows_quarantined) == (1, 1)
    assert con.execute("SELECT source_file, reason FROM ingest_quarantine").fetchall() == [
        (
            str(landing / "prices" / "mars_2026.csv"),
            "region 'mars' (from the file name) is not in fleet/regions.csv, "
            "or its row there was refused (see the quarantine of regions)",
        )
    ]


def test_fleet_file_bad_rows_are_quarantined(con, landing):
    inv = (landing / "fleet" / "inventory.csv").read_text().splitlines()
    inv.append(inv[-1].replace("GPU-", "GPU-X", 1).rsplit(",", 1)[0] + ",-1")  # negative overhead
    (landing / "fleet" / "inventory.csv").write_text("\n".join(inv) + "\n")
    report = ingest_fleet_table(con, "inventory", landing)
    assert report.rows_quarantined == 1
    assert quarantine(con, "inventory")[len(inv)].startswith("overhead_per_hour below 0")


def test_power_draw_meaning_follows_the_device_type(con, landing):
    inv = {r[0]: r[1] for r in con.execute("SELECT device_type, device_id FROM raw_inventory").fetchall()}
    rows = [
        "timestamp, uuid, power.draw [W]",
        f"2026/11/02 00:00:01.000, {inv['H100-SXM']}, 200.0",
        f"2026/11/02 00:00:01.000, {inv['A100-SXM4']}, 200.0",
        "2026/11/02 00:00:01.000, GPU-not-in-inventory, 200.0",
    ]
    (landing / "telemetry" / "mixed.csv").write_text("\n".join(rows) + "\n")
    ingest_feed(con, "telemetry", landing, DAY)
    got = dict(con.execute("SELECT device_id, power_window_s FROM raw_telemetry").fetchall())
    assert got[inv["H100-SXM"]] == 1.0  # Hopper: a 1 s average
    assert got[inv["A100-SXM4"]] == 0.0  # GA100: instantaneous
    assert got["GPU-not-in-inventory"] == 1.0


LITELLM_HEADER = (
    "request_id,startTime,endTime,completionStartTime,model,model_group,api_base,prompt_tokens,"
    "completion_tokens,team_id,end_user,request_tags,cache_hit,status"
)


def test_litellm_spend_logs_csv_and_jsonl(con, landing):
    rows = [
        LITELLM_HEADER,
        "ll-1,2026-11-02T10:00:00.000001,2026-11-02T10:00:04,2026-11-02T10:00:00.3,hosted_vllm/llama-8b,"
        'llama-3.1-8b-instruct,http://10.0.0.5:8000,120,40,team-search,u1,"[""prod"",""eu""]",False,success',
        "ll-2,2026-11-02T10:00:01,2026-11-02T10:00:01.01,,hosted_vllm/llama-8b,llama-3.1-8b-instruct,"
        "http://10.0.0.5:8000,120,40,,u2,[],True,success",
        "ll-3,2026-11-02T10:00:05,2026-11-02T10:00:02,,m,llama-3.1-8b-instruct,http://10.0.0.5:8000,1,1,t,u,[],"
        "False,success",
        "ll-4,only,three",
    ]
    (landing / "requests" / "spend.csv").write_text("\n".join(rows) + "\n")
    jsonl = [
        json.dumps(
            {
                "request_id": "ll-5",
                "startTime": "2026-11-02T11:00:00Z",
                "endTime": "2026-11-02T11:00:02Z",
                "model_group": "llama-3.1-8b-instruct",
                "api_base": "http://10.0.0.6:8000",
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "end_user": "acme",
                "cache_hit": False,
                "status": "success",
            }
        ),
        "{broken",
    ]
    (landing / "requests" / "spend.jsonl").write_text("\n".join(jsonl) + "\n")
    report = ingest_feed(con, "requests", landing, DAY, fmt="litellm")
    assert report.rows_read == 6 and report.rows_loaded == 3
    got = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT request_id, model, replica_id, tenant, status, started_at, first_token_at FROM raw_requests"
        ).fetchall()
    }
    assert got["ll-1"][:4] == ("llama-3.1-8b-instruct", "http://10.0.0.5:8000", "team-search", "success")
    assert got["ll-1"][4].microsecond == 1 and got["ll-1"][5] is not None
    assert got["ll-2"][2:4] == ("u2", "cache_hit")  # answered from LiteLLM's cache, not by a GPU
    assert got["ll-5"][2] == "acme"
    q = {
        (f.rsplit("/", 1)[-1], line): reason
        for f, line, reason in con.execute("SELECT source_file, source_line, reason FROM ingest_quarantine").fetchall()
    }
    assert q[("spend.csv", 4)] == "ended_at before started_at"
    assert q[("spend.csv", 5)] == "expected 14 fields, got 3"
    assert q[("spend.jsonl", 2)] == "malformed JSON"
    assert_row_identity(con, "requests")


def test_duplicate_telemetry_samples_all_load_for_the_kernel_to_average(con, landing):
    rows = [NVSMI_HEADER] + ["2026/11/02 00:00:01.000, 0, GPU-a, NVIDIA H100 80GB HBM3, 100.0, 5, 10"] * 2
    (landing / "telemetry" / "h_2026-11-02.csv").write_text("\n".join(rows) + "\n")
    report = ingest_feed(con, "telemetry", landing, DAY)
    assert (report.rows_loaded, report.rows_quarantined) == (2, 0)


def test_a_request_id_loaded_for_another_day_is_quarantined_as_a_duplicate(con, landing):
    # a replayed id a few days later (files a day apart are read together and deduplicated in one batch)
    day1 = good_request(
        1, started_at="2026-10-30T10:00:00Z", ended_at="2026-10-30T10:00:02Z", first_token_at="2026-10-30T10:00:01Z"
    )
    (landing / "requests" / "a_2026-10-30.jsonl").write_text(day1 + "\n")
    (landing / "requests" / "b_2026-11-02.jsonl").write_text(good_request(1) + "\n" + good_request(2) + "\n")
    ingest_feed(con, "requests", landing, date(2026, 10, 30))
    report = ingest_feed(con, "requests", landing, DAY)
    assert (report.rows_loaded, report.rows_quarantined) == (1, 1)
    reason = con.execute("SELECT reason FROM ingest_quarantine WHERE partition_date = ?", [DAY]).fetchall()[0][0]
    assert reason.startswith("duplicate request_id (already loaded for 2026-10-30 from ")
    assert reason.endswith("a_2026-10-30.jsonl:1)")
    # re-running the first day keeps it, and the later day's copy stays quarantined
    ingest_feed(con, "requests", landing, date(2026, 10, 30))
    assert con.execute("SELECT count(*) FROM raw_requests WHERE request_id = 'req-1'").fetchall()[0][0] == 1
    assert_row_identity(con, "requests")


def test_a_request_id_further_away_than_the_duplicate_window_is_another_request(con, landing, monkeypatch):
    # the same id 3 days apart: a duplicate inside a 3-day window, another request (ids reused) outside a 2-day one
    early = good_request(
        1, started_at="2026-10-30T10:00:00Z", ended_at="2026-10-30T10:00:02Z", first_token_at="2026-10-30T10:00:01Z"
    )
    (landing / "requests" / "a_2026-10-30.jsonl").write_text(early + "\n")
    (landing / "requests" / "b_2026-11-02.jsonl").write_text(good_request(1) + "\n")
    ingest_feed(con, "requests", landing, date(2026, 10, 30))
    monkeypatch.setenv("INFERCOST_DUPLICATE_WINDOW_DAYS", "3")
    assert ingest_feed(con, "requests", landing, DAY).rows_quarantined == 1
    monkeypatch.setenv("INFERCOST_DUPLICATE_WINDOW_DAYS", "2")
    report = ingest_feed(con, "requests", landing, DAY)
    assert (report.rows_loaded, report.rows_quarantined) == (1, 0)
    days = con.execute("SELECT partition_date FROM raw_requests WHERE request_id = 'req-1' ORDER BY 1").fetchall()
    assert [d for (d,) in days] == [date(2026, 10, 30), DAY]
    assert_row_identity(con, "requests")


@pytest.mark.slow
def test_large_files_read_in_pieces_give_the_same_rows(con, landing, monkeypatch):
    import pipelines.ingest.loader as ingest

    tel = [NVSMI_HEADER] + [
        f"2026/11/02 00:{i // 60:02d}:{i % 60:02d}.000, 0, GPU-a, NVIDIA H100 80GB HBM3, {100 + i}.0, 5, 10"
        for i in range(500)
    ]
    tel[250] = "garbage"
    (landing / "telemetry" / "h_2026-11-02.csv.gz").write_bytes(gzip.compress(("\n".join(tel) + "\n").encode()))
    reqs = [good_request(i) for i in range(300)] + [good_request(7)]  # a repeat in a later piece
    (landing / "requests" / "r_2026-11-02.jsonl").write_text("\n".join(reqs) + "\n\n")

    def run():
        con.execute("DELETE FROM ingest_quarantine")
        return {
            feed: (
                ingest_feed(con, feed, landing, DAY),
                con.execute(f"SELECT * EXCLUDE (loaded_at) FROM raw_{feed} ORDER BY ALL").fetchall(),
                quarantine(con, feed),
            )
            for feed in ("telemetry", "requests")
        }

    whole = run()
    monkeypatch.setattr(ingest, "CHUNK_BYTES", 2_000)  # pieces of a few lines
    monkeypatch.setattr(ingest, "BATCH_LINES", 50)  # and many batches within one run
    pieces = run()
    for feed in ("telemetry", "requests"):
        assert pieces[feed][1] == whole[feed][1] and pieces[feed][2] == whole[feed][2]
        assert [(f.rows_read, f.rows_loaded) for f in pieces[feed][0].files] == [
            (f.rows_read, f.rows_loaded) for f in whole[feed][0].files
        ]
    assert whole["telemetry"][2] == {251: "expected 7 fields, got 1"}
    assert list(whole["requests"][2]) == [301] and "duplicate request_id" in whole["requests"][2][301]
    assert (
        con.execute("SELECT count(*) FROM ingest_file_stats WHERE feed IN ('telemetry', 'requests')").fetchall()[0][0]
        == 2
    )  # one row per file
    assert_row_identity(con, "requests")
    assert_row_identity(con, "telemetry")
