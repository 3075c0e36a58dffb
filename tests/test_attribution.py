"""The attribution kernel: hand-computed cases, documented edge cases, conservation, and a slow reference."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from pipelines.attribution.engine_numpy import exclusive_segmented_cumsum
from pipelines.attribution.engines import default_engine, get_engine
from pipelines.attribution.kernel import TS_TYPE, attribute_energy
from pipelines.attribution.segments import power_segments
from tests.reference_attribution import reference_attribution

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def ts(seconds: float) -> datetime:
    return T0 + timedelta(microseconds=round(seconds * 1e6))


def req_table(rows):
    """rows: (request_id, device_id, start_s, end_s, weight)"""
    return pa.table(
        {
            "request_id": [r[0] for r in rows],
            "device_id": [r[1] for r in rows],
            "started_at": pa.array([ts(r[2]) for r in rows], TS_TYPE),
            "ended_at": pa.array([ts(r[3]) for r in rows], TS_TYPE),
            "weight": pa.array([float(r[4]) for r in rows], pa.float64()),
        }
    )


def tel_table(rows):
    """rows: (device_id, ts_s, power_w, window_s)"""
    return pa.table(
        {
            "device_id": [r[0] for r in rows],
            "ts": pa.array([ts(r[1]) for r in rows], TS_TYPE),
            "power_w": pa.array([r[2] for r in rows], pa.float64()),
            "power_window_s": pa.array([float(r[3]) for r in rows], pa.float64()),
        }
    )


def energies(result):
    return dict(zip(result.per_request["request_id"].to_pylist(), result.per_request["energy_j"].to_pylist()))


def assert_conserved(result, rel=1e-9):
    total = result.metered_energy_j
    assert result.attributed_energy_j + result.idle_energy_j == pytest.approx(total, rel=rel, abs=1e-9)


def test_single_request_on_flat_power():
    tel = tel_table([("g0", t, 100.0, 0) for t in range(11)])
    res = attribute_energy(req_table([("r1", "g0", 2, 6, 1)]), tel)
    assert energies(res)["r1"] == pytest.approx(400.0)
    # instantaneous samples at 0..10 s: the last one covers nothing, so 10 s are metered
    assert res.metered_energy_j == pytest.approx(1000.0)
    assert res.idle_energy_j == pytest.approx(600.0)
    assert_conserved(res)


def test_overlapping_requests_share_by_rate():
    tel = tel_table([("g0", t, 100.0, 0) for t in range(7)])
    res = attribute_energy(req_table([("a", "g0", 0, 4, 4), ("b", "g0", 2, 6, 4)]), tel)
    e = energies(res)
    assert e["a"] == pytest.approx(300.0)  # 200 alone + half of 200
    assert e["b"] == pytest.approx(300.0)
    assert res.idle_energy_j == pytest.approx(0.0)


def test_unequal_rates_split_in_proportion():
    tel = tel_table([("g0", t, 90.0, 0) for t in range(3)])
    # a: rate 2/s, b: rate 1/s over the same 2 s -> 2/3 and 1/3 of 180 J
    res = attribute_energy(req_table([("a", "g0", 0, 2, 4), ("b", "g0", 0, 2, 2)]), tel)
    e = energies(res)
    assert e["a"] == pytest.approx(120.0)
    assert e["b"] == pytest.approx(60.0)


def test_trailing_average_samples_cover_the_second_before():
    tel = tel_table([("g0", 1, 100.0, 1), ("g0", 2, 200.0, 1), ("g0", 3, 300.0, 1)])
    res = attribute_energy(req_table([("r", "g0", 0.5, 2.5, 1)]), tel)
    assert energies(res)["r"] == pytest.approx(50 + 200 + 150)
    assert res.metered_energy_j == pytest.approx(600.0)


def test_gap_longer_than_max_gap_is_unmetered():
    tel = tel_table([("g0", 0, 100.0, 0), ("g0", 10, 100.0, 0), ("g0", 11, 100.0, 0)])
    res = attribute_energy(req_table([("r", "g0", 2, 8, 1)]), tel, max_gap_s=5)
    assert energies(res)["r"] == pytest.approx(300.0)  # metered 2..5 only
    row = res.per_request.to_pylist()[0]
    assert row["unmetered_s"] == pytest.approx(3.0)
    dev = res.per_device_bucket.to_pylist()
    assert sum(r["unmetered_s"] for r in dev) == pytest.approx(5.0)
    assert_conserved(res)


def test_pieces_split_at_bucket_boundaries():
    # 10:59:00 .. 11:01:00 at 60 W, one request over the boundary
    tel = tel_table([("g0", t, 60.0, 0) for t in range(3540, 3662)])
    res = attribute_energy(req_table([("r", "g0", 3570, 3630, 1)]), tel, bucket_s=3600)
    pieces = res.per_request_bucket.to_pylist()
    assert len(pieces) == 2
    by_bucket = {p["bucket_start"].hour: p["energy_j"] for p in pieces}
    assert by_bucket == {10: pytest.approx(1800.0), 11: pytest.approx(1800.0)}
    assert {p["bucket_start"].minute for p in pieces} == {0}


def test_tensor_parallel_request_draws_from_every_device():
    tel = tel_table([(d, t, p, 0) for d, p in (("g0", 100.0), ("g1", 50.0)) for t in range(5)])
    res = attribute_energy(req_table([("r", "g0", 0, 4, 1), ("r", "g1", 0, 4, 1)]), tel)
    assert energies(res)["r"] == pytest.approx(600.0)
    assert res.per_request.num_rows == 1
    assert res.per_request["device_s"][0].as_py() == pytest.approx(8.0)
    assert res.per_request["device_share_s"][0].as_py() == pytest.approx(8.0)


def test_documented_edge_cases():
    tel = tel_table(
        [("g0", t, 100.0, 0) for t in (5, 3, 4, 0, 1, 2)]  # unsorted
        + [("g0", 2, 300.0, 0)]  # duplicate timestamp: averaged with 100 -> 200
        + [("g0", 6, float("nan"), 0), ("g0", 7, -5.0, 0), ("g0", 8, 100.0, 0)]  # dropped samples
    )
    reqs = req_table(
        [
            ("zero_len", "g0", 1, 1, 5),
            ("zero_w", "g0", 0, 1, 0),
            ("r", "g0", 1, 3, 1),
            ("outside", "g9", 0, 4, 1),
        ]
    )
    res = attribute_energy(reqs, tel, max_gap_s=5)
    e = energies(res)
    assert res.dropped_samples == 2
    assert e["zero_len"] == 0.0
    assert e["zero_w"] == 0.0
    assert e["r"] == pytest.approx(200.0 + 100.0)  # [1,2) at 100 W... see below
    assert e["outside"] == 0.0
    out = {r["request_id"]: r for r in res.per_request.to_pylist()}
    assert out["outside"]["unmetered_s"] == pytest.approx(4.0)
    assert out["zero_len"]["device_share_s"] == 0.0
    # [0,1) only the zero-weight request runs: idle. Samples 0..5 then 8 (NaN, negative dropped): sample 5 holds
    # to 8 (3 s <= max_gap), sample 8 is last and covers nothing. Metered [0,8): 100,100,200,100,100,100x3 = 900
    assert res.metered_energy_j == pytest.approx(900.0)
    assert_conserved(res)


def test_requests_must_not_end_before_they_start():
    tel = tel_table([("g0", 0, 1.0, 0)])
    with pytest.raises(ValueError, match="ended_at before started_at"):
        attribute_energy(req_table([("r", "g0", 3, 2, 1)]), tel)


def test_default_weight_is_output_plus_prompt_factor():
    tel = tel_table([("g0", t, 100.0, 0) for t in range(3)])
    reqs = req_table([("a", "g0", 0, 2, 0), ("b", "g0", 0, 2, 0)]).drop_columns(["weight"])
    reqs = reqs.append_column("completion_tokens", pa.array([10, 0])).append_column("prompt_tokens", pa.array([0, 100]))
    e = energies(attribute_energy(reqs, tel, prompt_token_weight=0.1))
    assert e["a"] == pytest.approx(e["b"])


def random_case(rng, n_dev=3, n_req=40, horizon=200.0, windows=(0.0, 1.0)):
    samples = []
    for d in range(n_dev):
        t = rng.uniform(0, 2)
        w = windows[d % len(windows)]
        while t < horizon:
            p = float(rng.uniform(60, 700))
            if rng.random() < 0.03:
                p = float("nan")
            samples.append((f"g{d}", round(t, 3), p, w))
            t += float(rng.choice([0.1, 0.5, 1.0, 1.0, 1.0, 7.0]))
    reqs = []
    for i in range(n_req):
        s = round(float(rng.uniform(-5, horizon)), 3)
        e = round(s + float(rng.choice([0.0, rng.exponential(15)])), 3)
        reqs.append((f"r{i}", f"g{int(rng.integers(0, n_dev + 1))}", s, e, float(rng.integers(0, 50))))
    return reqs, samples


@pytest.mark.parametrize("engine", ["compiled", "numpy"])
@pytest.mark.parametrize("seed", range(12))
def test_agrees_with_slow_reference(seed, engine):
    rng = np.random.default_rng(seed)
    reqs, samples = random_case(rng)
    bucket_s = 60
    # the placement rules in turn; an inventory idle power for one device (the others learn theirs or stay flat)
    placement = ("activity", "flat")[seed % 2]
    idle_w = {"g1": 80.0} if seed % 3 else None
    exponent = 0.5 if seed % 4 == 2 else 0.0
    res = attribute_energy(
        req_table(reqs),
        tel_table(samples),
        max_gap_s=5,
        bucket_s=bucket_s,
        engine=engine,
        placement=placement,
        idle_w=idle_w,
        load_exponent=exponent,
    )
    ref_e, ref_idle, ref_metered, ref_unmet, ref_unc = reference_attribution(
        [(r[0], r[1], r[2], r[3], r[4]) for r in reqs],
        samples,
        max_gap_s=5,
        bucket_s=bucket_s,
        placement=placement,
        idle_w=idle_w,
        load_exponent=exponent,
    )
    got = energies(res)
    per_request = res.per_request.to_pylist()
    for row in per_request:
        rid = row["request_id"]
        assert got[rid] == pytest.approx(ref_e.get(rid, 0.0), rel=1e-9, abs=1e-6), rid
        assert row["unmetered_s"] == pytest.approx(ref_unmet.get(rid, 0.0), abs=1e-6)
        assert row["energy_uncertainty_j"] == pytest.approx(ref_unc.get(rid, 0.0), rel=1e-9, abs=1e-6), rid
        assert -1e-6 <= row["energy_uncertainty_j"] <= row["energy_j"] * (1 + 1e-9) + 1e-6
    assert len(per_request) == len(reqs)
    assert res.idle_energy_j == pytest.approx(sum(ref_idle.values()), rel=1e-9, abs=1e-6)
    assert res.metered_energy_j == pytest.approx(sum(ref_metered.values()), rel=1e-9)
    assert_conserved(res)


@pytest.mark.parametrize("engine", ["compiled", "numpy"])
@pytest.mark.parametrize("seed", range(2))
def test_conservation_on_a_large_random_fleet(seed, engine):
    """Many devices over a day: sums are large, conservation must still hold to 1e-9."""
    rng = np.random.default_rng(100 + seed)
    n_dev, n_req, day = 20, 20_000, 86_400
    dev = rng.integers(0, n_dev, n_req)
    start = rng.uniform(0, day, n_req)
    length = rng.exponential(8.0, n_req)
    t = np.arange(0, day, 1.0)
    tel = pa.table(
        {
            "device_id": pa.array(np.repeat([f"g{i}" for i in range(n_dev)], len(t))),
            "ts": pa.array((np.tile(t, n_dev) * 1e6).astype(np.int64) + int(T0.timestamp() * 1e6)).cast(TS_TYPE),
            "power_w": rng.uniform(70, 700, n_dev * len(t)),
            "power_window_s": np.ones(n_dev * len(t)),
        }
    )
    base = int(T0.timestamp() * 1e6)
    reqs = pa.table(
        {
            "request_id": pa.array([f"r{i}" for i in range(n_req)]),
            "device_id": pa.array([f"g{i}" for i in dev]),
            "started_at": pa.array((start * 1e6).astype(np.int64) + base).cast(TS_TYPE),
            "ended_at": pa.array(((start + length) * 1e6).astype(np.int64) + base).cast(TS_TYPE),
            "weight": rng.integers(1, 500, n_req).astype(float),
        }
    )
    res = attribute_energy(reqs, tel, engine=engine)
    attributed = math.fsum(res.per_request_bucket["energy_j"].to_pylist())
    idle = math.fsum(res.per_device_bucket["idle_energy_j"].to_pylist())
    metered = math.fsum(res.per_device_bucket["metered_energy_j"].to_pylist())
    assert abs(attributed + idle - metered) <= 1e-9 * metered
    assert min(res.per_request["energy_j"].to_pylist()) >= 0


def test_segmented_cumsum_keeps_digits_at_scale():
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 1e4, 2_000_000)
    starts = np.zeros(len(x), dtype=bool)
    starts[::3600] = True
    got = exclusive_segmented_cumsum(x, starts)
    # check the last segment against an exact sum
    first = np.flatnonzero(starts)[-1]
    exact = [math.fsum(x[first:k]) for k in range(first, len(x))]
    np.testing.assert_allclose(got[first:], exact, rtol=1e-14, atol=1e-9)
    plain = np.cumsum(x) - x
    plain = plain - plain[first]
    assert np.max(np.abs(plain[first:] - exact)) > np.max(np.abs(got[first:] - exact))


def test_energy_counter_deltas_are_the_energy_of_each_interval():
    # power readings say 100 W, the counter says 150 J per second from 1 s to 3 s: the counter wins
    tel = tel_table([("g0", t, 100.0, 0) for t in range(5)]).append_column(
        "energy_counter_j", pa.array([0.0, 10.0, 160.0, 310.0, None])
    )
    res = attribute_energy(req_table([("r", "g0", 1, 3, 1)]), tel)
    assert energies(res)["r"] == pytest.approx(300.0)
    assert res.counter_intervals == 3 and res.counter_resets == 0
    # [0,1): 10 J by counter (it takes precedence over the reading held from 0); [1,3): 300 J; sample 4 has no
    # counter and is the last instantaneous reading: it covers nothing
    assert res.metered_energy_j == pytest.approx(10 + 300)


def test_counter_reset_falls_back_to_power():
    # 1 s trailing power readings (power.draw on a modern GPU) beside the counter
    tel = tel_table([("g0", t, 100.0, 1) for t in range(4)]).append_column(
        "energy_counter_j", pa.array([1000.0, 1200.0, 5.0, 205.0])
    )
    res = attribute_energy(req_table([("r", "g0", 0, 3, 1)]), tel)
    assert res.counter_resets == 1
    # [0,1): 200 J counter; [1,2): the reading at 2 (counter reset); [2,3): 200 J counter
    assert energies(res)["r"] == pytest.approx(200 + 100 + 200)
    assert_conserved(res)


@pytest.mark.parametrize("engine", ["compiled", "numpy"])
def test_engines_and_device_groups_give_the_same_result(engine):
    rng = np.random.default_rng(42)
    reqs, samples = random_case(rng, n_dev=6, n_req=200)
    whole = attribute_energy(req_table(reqs), tel_table(samples), bucket_s=60, engine="numpy")
    parts = attribute_energy(req_table(reqs), tel_table(samples), bucket_s=60, max_events_per_chunk=50, engine=engine)
    for name in ("per_request", "per_request_bucket", "per_device_bucket"):
        a = getattr(whole, name)
        b = getattr(parts, name)
        keys = [c for c in ("request_id", "device_id", "bucket_start") if c in a.column_names]
        a, b = a.sort_by([(k, "ascending") for k in keys]), b.sort_by([(k, "ascending") for k in keys])
        assert a.num_rows == b.num_rows
        for col in a.column_names:
            if col in keys:
                assert a[col].to_pylist() == b[col].to_pylist()
            else:
                np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-10, atol=1e-9)
    assert whole.dropped_samples == parts.dropped_samples


def test_the_engine_registry_names_both_engines_and_rejects_others():
    assert get_engine("numpy").name == "numpy"
    assert get_engine("compiled").name == "compiled"
    assert get_engine(None).name == default_engine()
    with pytest.raises(ValueError, match="engine must be"):
        attribute_energy(req_table([("r1", "g0", 2, 6, 1)]), tel_table([("g0", 0, 100.0, 0)]), engine="gpu")


def test_both_engines_build_the_same_power_segments():
    """Duplicates, invalid powers, trailing and instantaneous samples, gaps, counters: one typed result."""
    rng = np.random.default_rng(7)
    n = 400
    dev = np.sort(rng.integers(0, 3, n))
    ts_us = np.sort(rng.integers(0, 600, n)) * 1_000_000  # many duplicates; sorted within each device below
    order = np.lexsort((ts_us, dev))
    dev, ts_us = dev[order], ts_us[order]
    power = rng.uniform(50, 700, n)
    power[rng.random(n) < 0.05] = np.nan
    power[rng.random(n) < 0.03] = -1.0
    window = np.where(rng.random(n) < 0.5, 1_000_000, 0).astype(np.int64)
    counter = np.cumsum(rng.uniform(0, 500, n))
    counter[rng.random(n) < 0.05] = 0.0  # resets
    got = {
        name: power_segments(dev, ts_us, power, window, 5_000_000, counter, engine=name)
        for name in ("numpy", "compiled")
    }
    a, b = got["numpy"], got["compiled"]
    assert a.dropped == b.dropped > 0
    assert (a.counter_intervals, a.counter_resets) == (b.counter_intervals, b.counter_resets)
    assert a.counter_resets > 0
    for field in ("dev", "start_us", "end_us"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    np.testing.assert_allclose(a.power_w, b.power_w, rtol=1e-12)
    assert np.all(a.end_us > a.start_us) and np.all(
        a.start_us[1:] >= np.where(a.dev[1:] == a.dev[:-1], a.end_us[:-1], 0)
    )


@pytest.mark.parametrize("engine", ["compiled", "numpy"])
def test_a_windows_energy_is_placed_where_the_requests_ran(engine):
    """1 s trailing averages: 100 W idle before and after (15 quiet windows: idle learned as 100 W); a runs
    10.2-11.6 s, b 12.5-14.0 s. Window (10, 11] of 300 W: 0.2 s idle at 100 W, the rest (280 J) to a's 0.8 s;
    (11, 12] of 250 W: 210 J to a; (12, 13] of 200 W: 150 J to b; (13, 14] of 400 W: all b's and measured."""
    tel = tel_table(
        [("g0", t, p, 1) for t, p in zip(range(1, 21), [100.0] * 10 + [300, 250, 200, 400, 100] + [100.0] * 5)]
    )
    reqs = req_table([("a", "g0", 10.2, 11.6, 1), ("b", "g0", 12.5, 14.0, 1)])
    placed = attribute_energy(reqs, tel, engine=engine)
    flat = attribute_energy(reqs, tel, engine=engine, placement="flat")
    rows = {r["request_id"]: r for r in placed.per_request.to_pylist()}
    assert rows["a"]["energy_j"] == pytest.approx(490.0) and rows["b"]["energy_j"] == pytest.approx(550.0)
    assert rows["a"]["energy_uncertainty_j"] == pytest.approx(490.0)  # both its windows are cut
    assert rows["b"]["energy_uncertainty_j"] == pytest.approx(150.0)  # (13, 14] is all b's: measured
    assert energies(flat) == {"a": pytest.approx(0.8 * 300 + 0.6 * 250), "b": pytest.approx(0.5 * 200 + 400)}
    for res in (placed, flat):
        assert res.metered_energy_j == pytest.approx(sum([100.0] * 15 + [300, 250, 200, 400, 100]))
        assert_conserved(res)
    # idle never takes more than its share: a quiet-window idle of 100 W above a 60 W window's average is capped
    low = tel_table([("g0", t, 60.0 if t == 11 else 100.0, 1) for t in range(1, 21)])
    capped = attribute_energy(req_table([("a", "g0", 10.5, 11.0, 1)]), low, engine=engine)
    assert energies(capped)["a"] == pytest.approx(30.0)  # the window's average throughout
    assert_conserved(capped)
    # too few quiet windows to learn from: the inventory's idle_w is used; without it the window stays flat
    short = tel_table([("g0", t, 200.0, 1) for t in (1, 2, 3)])
    one = req_table([("a", "g0", 1.5, 2.0, 1)])
    assert energies(attribute_energy(one, short, engine=engine, idle_w={"g0": 50.0}))["a"] == pytest.approx(175.0)
    assert energies(attribute_energy(one, short, engine=engine))["a"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="placement must be"):
        attribute_energy(one, short, engine=engine, placement="smart")


@pytest.mark.parametrize("seed", range(6))
def test_the_segments_not_placed_are_flagged_as_the_placement_scan_flags_them(seed, monkeypatch):
    """A segment not placed by activity (an instantaneous reading, or the flat rule) has its shape modeled when a
    weighted request starts or ends strictly inside it: the compiled sweep finds that itself as each segment begins.
    Its pieces (energy_uncertainty_j is their share of the modeled segments' energy) are the same, to the bit, as
    those of a sweep handed the full placement scan's flags (n_in > 0). Times on a coarse grid, so that events fall
    on segment bounds; zero weights and zero lengths among them."""
    from pipelines.attribution import compiled_placement, engine_compiled
    from pipelines.attribution.engine_api import GroupRequests, Placement, PowerSegments

    rng = np.random.default_rng(seed)
    ndev, n = 5, 3_000
    start = rng.integers(0, 10_000, n) * 1_000
    end = start + rng.choice([0, 1, 3, 40], n) * 1_000
    req = GroupRequests(rng.integers(0, ndev, n), start, end, rng.choice([0.0, 1.0, 2.5], n))
    r = engine_compiled._prepared_requests(req, 3_600_000_000, ndev)
    seg_dev, seg_a, seg_b = [], [], []
    for d in range(ndev):
        bounds = np.unique(rng.integers(0, 10_050, 600)) * 1_000
        kept = rng.random(len(bounds) - 1) < 0.8  # gaps between some segments
        seg_dev += [d] * int(kept.sum())
        seg_a += list(bounds[:-1][kept])
        seg_b += list(bounds[1:][kept])
    g_first = np.searchsorted(np.array(seg_dev), np.arange(ndev + 1)).astype(np.int64)
    g_a, g_b = np.array(seg_a, np.int64), np.array(seg_b, np.int64)
    nseg = len(g_a)
    n_in, cnt_a, t_idle, load = np.empty(nseg, np.int64), np.empty(nseg, np.int64), np.empty(nseg), np.empty(nseg)
    args = (r["r_first"], r["order_s"], r["order_e"], r["s"], r["e"])
    compiled_placement.scan(g_first, g_a, g_b, *args, r["rate"], r["weighted"], 0.0, n_in, cnt_a, t_idle, load)
    scanned = n_in > 0
    assert scanned.any() and not scanned.all()
    segments = PowerSegments(np.array(seg_dev, np.int64), g_a, g_b, rng.uniform(50, 500, nseg), 0)

    def swept():
        return engine_compiled.sweep(req, segments, 3_600_000_000, ndev, Placement("flat"))

    found = swept()
    monkeypatch.setattr(engine_compiled, "place", lambda *_: (scanned, None, None))
    given = swept()
    assert (found.energy_uncertainty_j > 0).any() and (found.energy_uncertainty_j < found.energy_j).any()
    for name in ("row", "bucket", "energy_j", "device_share_s", "unmetered_s", "energy_uncertainty_j"):
        np.testing.assert_array_equal(getattr(found, name), getattr(given, name), err_msg=name)
