"""The kernel called as the warehouse or a user calls it: rows in time order as logged, int64 request ids, string
or dictionary device ids, many chunks; the preparation's compiled and numpy paths; the compiled code's warm-up."""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipelines.attribution import prepare
from pipelines.attribution.kernel import attribute_energy
from tests.test_attribution import random_case, req_table, tel_table


def _case(seed: int):
    reqs, samples = random_case(np.random.default_rng(seed), n_dev=5, n_req=300)
    requests, telemetry = req_table(reqs), tel_table(samples)
    # int64 ids, as a serving log writes them
    ids = pa.array([int(r[0][1:]) * 7919 + 10**12 for r in reqs], pa.int64())
    return requests.set_column(0, "request_id", ids), telemetry


def _as_logged(requests: pa.Table, telemetry: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Requests in the order they completed, telemetry in time order (devices interleaved), in several chunks."""
    requests = requests.take(pc.sort_indices(requests, [("ended_at", "ascending")]))
    telemetry = telemetry.take(pc.sort_indices(telemetry, [("ts", "ascending")]))
    return pa.concat_tables([requests.slice(0, 100), requests.slice(100)]), pa.concat_tables(
        [telemetry.slice(0, 500), telemetry.slice(500)]
    )


def _assert_same(a, b):
    for name in ("per_request", "per_request_bucket", "per_device_bucket"):
        x, y = getattr(a, name), getattr(b, name)
        keys = [c for c in ("request_id", "device_id", "bucket_start") if c in x.column_names]
        x, y = x.sort_by([(k, "ascending") for k in keys]), y.sort_by([(k, "ascending") for k in keys])
        assert x.schema == y.schema
        for col in x.column_names:
            if col in keys:
                assert x[col].to_pylist() == y[col].to_pylist()
            else:
                np.testing.assert_allclose(x[col].to_numpy(), y[col].to_numpy(), rtol=1e-12, atol=1e-12)
    assert a.dropped_samples == b.dropped_samples


@pytest.mark.parametrize("engine", ["compiled", "numpy"])
@pytest.mark.parametrize("seed", range(3))
def test_rows_as_logged_give_the_result_of_rows_grouped_by_device(seed, engine):
    requests, telemetry = _case(seed)
    grouped = attribute_energy(requests, telemetry, max_gap_s=5, bucket_s=60, engine=engine)
    logged = attribute_energy(*_as_logged(requests, telemetry), max_gap_s=5, bucket_s=60, engine=engine)
    _assert_same(grouped, logged)
    assert logged.per_request["request_id"].type == pa.int64()  # the caller's ids, not strings


def test_the_preparation_without_numba_gives_the_same_result(monkeypatch):
    requests, telemetry = _as_logged(*_case(7))
    compiled = attribute_energy(requests, telemetry, max_gap_s=5, bucket_s=60, engine="numpy")
    monkeypatch.setattr(prepare, "compiled_prepare", None)
    plain = attribute_energy(requests, telemetry, max_gap_s=5, bucket_s=60, engine="numpy")
    _assert_same(compiled, plain)


@pytest.mark.parametrize("compiled", [True, False])
def test_repeated_int64_ids_are_one_request(monkeypatch, compiled):
    if not compiled:
        monkeypatch.setattr(prepare, "compiled_prepare", None)
    requests = req_table([("x", "g1", 0, 4, 1), ("y", "g0", 0, 4, 1), ("x", "g0", 0, 4, 1)])
    requests = requests.set_column(0, "request_id", pa.array([5, 9, 5], pa.int64()))
    telemetry = tel_table([(d, t, 100.0, 0) for t in range(6) for d in ("g0", "g1")])
    out = attribute_energy(requests, telemetry).per_request.sort_by("request_id").to_pylist()
    assert [r["request_id"] for r in out] == [5, 9]
    assert out[0]["energy_j"] == pytest.approx(400 + 200)  # all of g1's 4 s, half of g0's
    assert out[0]["device_s"] == pytest.approx(8.0)
    assert out[1]["energy_j"] == pytest.approx(200)


@pytest.mark.parametrize("layout", ["one chunk", "chunks", "unaligned chunks"])
@pytest.mark.parametrize("ts_type", [pa.timestamp("us", tz="UTC"), pa.timestamp("ns", tz="Europe/Paris")])
@pytest.mark.parametrize("repeated", [False, True])
def test_device_s_is_each_request_rows_seconds_whether_read_from_the_callers_columns_or_computed(
    ts_type, repeated, layout
):
    """per_request's device_s: from the caller's own columns (microseconds, UTC: views, nothing copied; read in
    one pass over both when their chunks hold the same rows) or from lengths computed in the call (another unit or
    zone), built after the call, from ids repeated or not, the columns in one chunk, in chunks, or in chunks that
    differ between started_at and ended_at."""
    requests, telemetry = _as_logged(*_case(11))
    for name in ("started_at", "ended_at"):
        requests = requests.set_column(requests.schema.get_field_index(name), name, requests[name].cast(ts_type))
    if layout != "one chunk":  # chunks of their own buffers (a read past a chunk's end finds no neighbour's rows)
        batches = requests.to_batches(max_chunksize=7)
        requests = pa.Table.from_batches([pa.RecordBatch.from_pylist(b.to_pylist(), requests.schema) for b in batches])
    if layout == "unaligned chunks":
        at = requests.schema.get_field_index("ended_at")
        ended = requests["ended_at"].combine_chunks()
        requests = requests.set_column(at, "ended_at", pa.chunked_array([ended[:5], ended[5:]]))
        assert requests["ended_at"].num_chunks != requests["started_at"].num_chunks > 2
    if repeated:  # every id twice: each request's seconds summed over its two rows
        requests = requests.set_column(0, "request_id", pa.array(np.arange(len(requests)) // 2 * 7919, pa.int64()))
    got = attribute_energy(requests, telemetry, max_gap_s=5, bucket_s=60).per_request
    seconds = pc.divide(
        pc.cast(pc.subtract(requests["ended_at"], requests["started_at"]), pa.int64()),
        1e6 if ts_type.unit == "us" else 1e9,
    )
    expected = (
        pa.table({"request_id": requests["request_id"], "s": seconds}).group_by("request_id").aggregate([("s", "sum")])
    )
    expected = dict(zip(expected["request_id"].to_pylist(), expected["s_sum"].to_pylist()))
    assert len(expected) < len(requests) if repeated else len(expected) == len(requests)
    assert dict(zip(got["request_id"].to_pylist(), got["device_s"].to_pylist())) == pytest.approx(expected, rel=1e-12)


def test_dictionary_device_ids_in_chunks_with_different_dictionaries():
    requests, telemetry = _case(3)
    plain = attribute_energy(requests, telemetry, max_gap_s=5, bucket_s=60)
    halves = [telemetry.slice(0, 700), telemetry.slice(700)]
    encoded = pa.concat_tables(
        [t.set_column(0, "device_id", pc.dictionary_encode(t["device_id"]).combine_chunks()) for t in halves]
    )
    assert encoded["device_id"].num_chunks == 2
    _assert_same(plain, attribute_energy(requests, encoded, max_gap_s=5, bucket_s=60))


def test_null_device_ids_are_refused():
    requests, telemetry = _case(0)
    telemetry = telemetry.set_column(0, "device_id", pa.array([None] * telemetry.num_rows, pa.string()))
    with pytest.raises(ValueError, match="device_id must not be null"):
        attribute_energy(requests, telemetry)


def test_the_warm_up_loads_every_compiled_version_a_real_call_uses():
    from pipelines.attribution import compiled_placement, compiled_prepare, compiled_segments, compiled_sweep
    from pipelines.attribution.kernel import warm_up
    from pipelines.devtools.bench import synthetic_inputs

    warm_up().join()
    dispatchers = [
        f
        for m in (compiled_prepare, compiled_segments, compiled_sweep, compiled_placement)
        for f in vars(m).values()
        if hasattr(f, "signatures")
    ]
    before = {f: len(f.signatures) for f in dispatchers}
    assert before[compiled_sweep.run_sweep] >= 1
    requests, telemetry = synthetic_inputs(20_000, 4, 4_000, seed=5)  # requests across an hour: several pieces
    assert attribute_energy(requests, telemetry, bucket_s=3600, engine="compiled").per_request.num_rows == 20_000
    averaged = telemetry.append_column("power_window_s", pa.array(np.ones(telemetry.num_rows)))  # placed by activity
    assert attribute_energy(requests, averaged, bucket_s=3600, engine="compiled").per_request.num_rows == 20_000
    assert {f: len(f.signatures) for f in dispatchers} == before  # nothing compiled or loaded after the warm-up


def test_per_request_totals_of_repeated_and_distinct_ids_across_buckets():
    """Rows of several pieces (requests across buckets) among rows of one, summed where they lie when ids are
    distinct and by code when they repeat: both give the slow way's sums, each request once."""
    requests, telemetry = _as_logged(*_case(11))
    for ids in (requests["request_id"], pa.array(np.arange(requests.num_rows) % 97, pa.int64())):
        table = requests.set_column(0, "request_id", ids)
        result = attribute_energy(table, telemetry, max_gap_s=5, bucket_s=60)
        pieces = result.per_request_bucket.group_by("request_id").aggregate([("energy_j", "sum")])
        assert pieces.num_rows < result.per_request_bucket.num_rows  # some rows have several pieces
        expected = dict(zip(pieces["request_id"].to_pylist(), pieces["energy_j_sum"].to_pylist()))
        got = result.per_request
        assert sorted(got["request_id"].to_pylist()) == sorted(expected)
        for rid, energy in zip(got["request_id"].to_pylist(), got["energy_j"].to_pylist()):
            assert energy == pytest.approx(expected[rid], rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_request_codes_tell_distinct_ids_from_repeated_ones(seed):
    rng = np.random.default_rng(seed)
    cases = [
        rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, 5_000),
        rng.integers(0, 3_000, 2_000),  # repeats almost surely
        np.array([7, 1, 7]),
        np.arange(10_000) * 2**40,  # ids that differ only in high bits
        np.concatenate([np.arange(5_000), [4_999]]),  # one repeat, last
        np.array([], np.int64),
        # the smallest int64 marks an empty slot of the distinct check's tables: as an id, once and twice
        np.array([np.iinfo(np.int64).min, 0, 5]),
        np.array([3, np.iinfo(np.int64).min, 9, np.iinfo(np.int64).min]),
    ]
    for ids in cases:
        ids = ids.astype(np.int64)
        half = len(ids) // 2
        sliced = pa.array(np.concatenate([[11], ids, [12]])).slice(1, len(ids))  # a chunk at an offset in its buffer
        for rid in (
            pa.array(ids),
            pa.chunked_array([ids[:half], ids[half:]], pa.int64()),
            pa.chunked_array([sliced[:half], pa.array([], pa.int64()), sliced[half:]]),
        ):
            codes, distinct = prepare.request_codes(rid)
            first = np.unique(ids, return_index=True)[1]
            assert sorted(distinct.to_pylist()) == sorted(ids[first].tolist())
            if len(first) == len(ids):
                assert codes is None
            else:
                assert distinct.to_numpy()[codes].tolist() == ids.tolist()  # each row's code names its id
                assert distinct.to_pylist() == ids[np.sort(first)].tolist()  # in order of first appearance


def test_numpy_huge_page_hint_is_off_while_the_kernel_allocates_and_restored_after(monkeypatch):
    """memory.small_pages: fresh huge pages cost the first call seconds on a VM; the caller's setting comes back,
    after a result, after per_request's build and after an error."""
    from pipelines.attribution import kernel, results

    hint = np._core.multiarray
    seen = []
    inputs, codes = kernel._inputs, results.request_codes

    def spy(real):
        def wrapped(*args, **kwargs):
            seen.append(hint._get_madvise_hugepage())
            return real(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(kernel, "_inputs", spy(inputs))
    monkeypatch.setattr(results, "request_codes", spy(codes))
    requests, telemetry = _case(3)
    for caller_hint in (True, False):
        hint._set_madvise_hugepage(caller_hint)
        try:
            result = attribute_energy(requests, telemetry, bucket_s=3600)
            warming = kernel.warm_up()  # the first call's warm-up runs the kernel too, in its own thread
            if warming is not None:
                warming.join(60)
            assert hint._get_madvise_hugepage() is caller_hint
            assert result.per_request.num_rows > 0
            assert hint._get_madvise_hugepage() is caller_hint
            with pytest.raises(ValueError, match="ended_at before started_at"):
                swapped = requests.set_column(2, "started_at", requests["ended_at"])
                attribute_energy(swapped.set_column(3, "ended_at", requests["started_at"]), telemetry)
            assert hint._get_madvise_hugepage() is caller_hint
        finally:
            hint._set_madvise_hugepage(True)
    assert seen and not any(seen), seen  # the inputs' conversion and per_request's build, both times


def test_memory_freed_before_a_call_is_handed_back_before_its_inputs_are_converted(monkeypatch):
    """An earlier result the caller dropped stays in the allocators' free lists until handed back: at 10M requests
    a second call converting its inputs on top of it peaked 40 MB higher (README, "The kernel's peak under 2 GB")."""
    from pipelines.attribution import kernel

    calls = []
    inputs, release = kernel._inputs, kernel.release_freed_memory
    monkeypatch.setattr(kernel, "release_freed_memory", lambda: calls.append("release") or release())
    monkeypatch.setattr(kernel, "_inputs", lambda *a: calls.append("inputs") or inputs(*a))
    attribute_energy(*_case(4), bucket_s=3600)
    assert calls[:2] == ["release", "inputs"], calls


def test_overlapping_kernel_calls_in_threads_put_back_the_callers_huge_page_setting():
    """Two calls whose blocks interleave (A in, B in, A out, B out): the hint stays off until B ends, then is the
    caller's again (a save and restore per call would leave it off)."""
    import threading

    from pipelines.attribution.memory import small_pages

    hint = np._core.multiarray
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with small_pages():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b():
        a_in.wait(5)
        with small_pages():
            b_in.set()
            a_out.wait(5)
            seen["b after a left"] = hint._get_madvise_hugepage()

    hint._set_madvise_hugepage(True)
    threads = [threading.Thread(target=f) for f in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"b after a left": False}
    assert hint._get_madvise_hugepage() is True


@pytest.mark.parametrize(
    "values",
    [
        [1.0] * 5,  # nvidia-smi's power.draw: one window for every sample
        [0.0000005] * 3,  # half a microsecond: rounds to even, as numpy rounds
        [0.0000015] * 3,
        [1.0, 0.5, 1.0],
        [None, None],  # missing windows are instantaneous
        [None, 1.0],
        [],
    ],
)
def test_a_window_column_in_microseconds_is_the_same_filled_or_rounded_row_by_row(values):
    from pipelines.attribution.arrays import US_PER_S, float_array, window_us

    col = pa.array(values, pa.float64())
    expected = np.round(float_array(col, 0.0) * US_PER_S).astype(np.int64)
    got = window_us(col, len(col))
    assert got.dtype == np.int64 and got.tolist() == expected.tolist()


def test_a_window_that_is_not_a_reading_is_refused_and_nan_or_negative_ones_are_instantaneous():
    """inf (or over a day) would wrap to a negative number of microseconds and silently drop a sample's energy."""
    from pipelines.attribution.arrays import window_us

    for values in ([1.0, float("inf"), 1.0], [float("inf")] * 3, [1e14, 1.0], [float("nan"), 1e6]):
        with pytest.raises(ValueError, match="power_window_s must be at most 86400 s"):
            window_us(pa.array(values), len(values))
    assert window_us(pa.array([float("nan"), -2.0, 1.5]), 3).tolist() == [0, 0, 1_500_000]
    assert window_us(pa.array([-2.0] * 3), 3).tolist() == [0, 0, 0]
    with warnings.catch_warnings():  # a column of NaN only: instantaneous, without numpy's "All-NaN slice" warning
        warnings.simplefilter("error")
        assert window_us(pa.array([float("nan")] * 3), 3).tolist() == [0, 0, 0]


def test_a_null_request_id_is_refused_with_its_name():
    """A piece must name its request; per_request's codes had no place for a null (it wrote past its sums)."""
    requests, telemetry = _case(5)
    for ids in (
        pa.array([None] + [1] * (len(requests) - 1), pa.int64()),
        pa.array([None] + ["a"] * (len(requests) - 1)),
    ):
        with pytest.raises(ValueError, match="request_id must not be null"):
            attribute_energy(requests.set_column(0, "request_id", ids), telemetry)


def test_ids_that_differ_only_in_high_bits_get_their_own_codes():
    """The id hash mixes every bit: ids i << 40 (and a repeat) are grouped right."""
    ids = np.concatenate([np.arange(3_000, dtype=np.int64) << 40, [5 << 40]])
    codes, distinct = prepare.request_codes(pa.array(ids))
    assert len(distinct) == 3_000 and distinct.to_numpy()[codes].tolist() == ids.tolist()


@pytest.mark.parametrize("n_devices", [300, 2**15 + 3])
def test_each_piece_names_its_requests_device_whatever_the_number_of_devices(n_devices):
    """The pieces' device codes are int16 below 2**15 devices and int32 above: either way each piece's device_id is
    its request's, and a device's energy goes to its own requests (each request alone on its device, the devices
    drawing different powers)."""
    rng = np.random.default_rng(n_devices)
    names = np.array([f"node-{i:05d}/gpu" for i in rng.permutation(n_devices)])
    t0 = 1_800_000_000_000_000
    requests = pa.table(
        {
            "request_id": pa.array(np.arange(n_devices, dtype=np.int64) * 3 + 1),
            "device_id": pa.array(names),
            "started_at": pa.array(np.full(n_devices, t0 + 1_000_000)).cast(pa.timestamp("us", "UTC")),
            "ended_at": pa.array(np.full(n_devices, t0 + 3_000_000)).cast(pa.timestamp("us", "UTC")),
            "weight": np.ones(n_devices),
        }
    )
    power = 100.0 + np.arange(n_devices)  # device i draws 100 + i W
    telemetry = pa.table(
        {
            "device_id": pa.array(np.tile(names, 5)),
            "ts": pa.array(t0 + np.repeat(np.arange(5), n_devices) * 1_000_000).cast(pa.timestamp("us", "UTC")),
            "power_w": np.tile(power, 5),
        }
    )
    pieces = attribute_energy(requests, telemetry, max_gap_s=5, bucket_s=3600).per_request_bucket
    assert pieces.num_rows == n_devices
    device_of = dict(zip(requests["request_id"].to_pylist(), names.tolist(), strict=True))
    assert [device_of[r] for r in pieces["request_id"].to_pylist()] == pieces["device_id"].to_pylist()
    energy = dict(zip(pieces["device_id"].to_pylist(), pieces["energy_j"].to_pylist(), strict=True))
    assert energy == pytest.approx(dict(zip(names.tolist(), (2 * power).tolist(), strict=True)), rel=1e-12)
