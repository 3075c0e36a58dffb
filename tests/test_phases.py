"""Prefill and decode (pipelines/attribution/phases.py): hand-computed shares, the rule without first_token_at
unchanged, pieces per request/device/bucket, and an older warehouse's table gaining the new columns."""

from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from pipelines.attribution.kernel import TS_TYPE, attribute_energy
from pipelines.attribution.phases import DECODE, PREFILL, WHOLE, attribute_energy_by_phase, split_phases
from pipelines.warehouse.tables import create_tables

T0 = datetime(2026, 11, 1, 10, 59, 58, tzinfo=UTC)


def ts(seconds):
    return None if seconds is None else T0 + timedelta(seconds=seconds)


def requests(rows):
    """rows: (request_id, device_id, start_s, first_token_s or None, end_s, prompt, output)"""
    return pa.table(
        {
            "request_id": [r[0] for r in rows],
            "device_id": [r[1] for r in rows],
            "started_at": pa.array([ts(r[2]) for r in rows], TS_TYPE),
            "first_token_at": pa.array([ts(r[3]) for r in rows], TS_TYPE),
            "ended_at": pa.array([ts(r[4]) for r in rows], TS_TYPE),
            "prompt_tokens": [r[5] for r in rows],
            "completion_tokens": [r[6] for r in rows],
        }
    )


def flat_power(devices=("g0",), seconds=11, watts=100.0):
    rows = [(d, ts(t)) for d in devices for t in range(seconds)]
    return pa.table(
        {
            "device_id": [r[0] for r in rows],
            "ts": pa.array([r[1] for r in rows], TS_TYPE),
            "power_w": [watts] * len(rows),
            "power_window_s": [0.0] * len(rows),
        }
    )


def by_request(result):
    t = result.per_request
    return {r["request_id"]: r for r in t.to_pylist()}


def test_prefill_and_decode_share_power_by_phase():
    # A: prefill [0, 2) weighs 0.1 x 1000 over 2 s (50/s), decode [2, 6) 40 over 4 s (10/s); B: no first token,
    # 80 over [1, 5) (20/s). 100 W: [0,1) A 100; [1,2) A 100 x 50/70, B 100 x 20/70; [2,5) A 1/3, B 2/3; [5,6) A
    rows = [("A", "g0", 0, 2, 6, 1000, 40), ("B", "g0", 1, None, 5, 0, 80)]
    result = attribute_energy_by_phase(requests(rows), flat_power())
    got = by_request(result)
    assert got["A"]["prefill_energy_j"] == pytest.approx(100 + 100 * 50 / 70, rel=1e-12)
    assert got["A"]["decode_energy_j"] == pytest.approx(100 + 100, rel=1e-12)
    assert got["A"]["energy_j"] == pytest.approx(got["A"]["prefill_energy_j"] + got["A"]["decode_energy_j"], rel=1e-12)
    assert got["B"]["energy_j"] == pytest.approx(100 * 20 / 70 + 200, rel=1e-12)
    assert got["B"]["prefill_energy_j"] is None and got["B"]["decode_energy_j"] is None
    assert got["A"]["device_s"] == pytest.approx(6) and got["B"]["device_s"] == pytest.approx(4)
    assert result.attributed_energy_j + result.idle_energy_j == pytest.approx(result.metered_energy_j, rel=1e-12)
    # the whole-request rule gives A 140 over 6 s throughout: a different split of the same 600 J
    plain = attribute_energy(requests(rows).drop_columns(["first_token_at"]), flat_power())
    assert dict(zip(*plain.per_request.select(["request_id", "energy_j"]).to_pydict().values()))["A"] == pytest.approx(
        200 + 400 * (140 / 6) / (140 / 6 + 20), rel=1e-12
    )


def test_alone_on_its_device_a_request_gets_the_same_energy_either_way():
    rows = [("A", "g0", 0.5, 1.7, 7.25, 900, 64)]
    phased = by_request(attribute_energy_by_phase(requests(rows), flat_power()))["A"]
    plain = attribute_energy(requests(rows).drop_columns(["first_token_at"]), flat_power()).per_request
    assert phased["energy_j"] == pytest.approx(plain["energy_j"][0].as_py(), rel=1e-12)
    assert phased["prefill_energy_j"] == pytest.approx(120.0, rel=1e-12)


def test_without_a_usable_first_token_the_rule_is_todays():
    rows = [
        ("A", "g0", 0, None, 4, 100, 10),
        ("B", "g0", 1, 1, 5, 300, 20),  # first token at the start: no prefill to split
        ("C", "g0", 2, 6, 6, 50, 5),  # at the end: no decode
    ]
    phased = attribute_energy_by_phase(requests(rows), flat_power())
    plain = attribute_energy(requests(rows).drop_columns(["first_token_at"]), flat_power())
    a = phased.per_request.sort_by("request_id")
    b = plain.per_request.sort_by("request_id")
    assert np.allclose(a["energy_j"].to_numpy(), b["energy_j"].to_numpy(), rtol=1e-12)
    assert a["prefill_energy_j"].null_count == 3
    assert [p for p in split_phases(requests(rows))["phase"].to_pylist()] == [WHOLE] * 3


def test_pieces_stay_one_row_per_request_device_and_bucket():
    # T0 + 2 s is 11:00: the hour's bucket boundary falls in A's decode; A runs on two devices (tensor parallel)
    rows = [("A", "g0", 0, 1, 4, 500, 30), ("A", "g1", 0, 1, 4, 500, 30), ("B", "g1", 0.5, 3, 5, 800, 10)]
    result = attribute_energy_by_phase(requests(rows), flat_power(("g0", "g1")))
    pieces = result.per_request_bucket
    keys = list(zip(*pieces.select(["request_id", "device_id", "bucket_start"]).to_pydict().values()))
    assert len(keys) == len(set(keys)) == 6
    for p in pieces.to_pylist():
        assert p["energy_j"] == pytest.approx(p["prefill_energy_j"] + p["decode_energy_j"], rel=1e-12)
    assert by_request(result)["A"]["prefill_energy_j"] == pytest.approx(
        100 + 50 + 50 * 50 / (50 + 32), rel=1e-12
    )  # g0 alone; g1 with B from 0.5 s
    pseudo = split_phases(requests(rows))
    assert pseudo["phase"].to_pylist() == [PREFILL, DECODE] * 3


def test_an_older_warehouse_table_gains_the_phase_columns():
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE request_energy_pieces (partition_date DATE, request_id VARCHAR, device_id VARCHAR, "
        "bucket_start TIMESTAMPTZ, energy_j DOUBLE, device_share_s DOUBLE, unmetered_s DOUBLE)"
    )
    con.execute("INSERT INTO request_energy_pieces VALUES ('2026-11-01', 'r', 'g', '2026-11-01', 1, 1, 0)")
    create_tables(con, "request_energy_pieces")
    cols = [r[0] for r in con.execute("SELECT column_name FROM (DESCRIBE request_energy_pieces)").fetchall()]
    assert cols[-2:] == ["prefill_energy_j", "decode_energy_j"]
    assert con.execute("SELECT count(*), count(prefill_energy_j) FROM request_energy_pieces").fetchall() == [(1, 0)]
