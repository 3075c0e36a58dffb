"""Dictionary-typed request ids (a pandas categorical, a Parquet column read as a dictionary, a DuckDB ENUM): a
dictionary may list a value twice, hold values no row uses or differ from chunk to chunk, so its indices are not
the requests. The kernel and the phase split read them as their values: each request once, with the totals of its
string ids, and outputs whose request_id is the values' type (sortable, convertible to pandas)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pipelines.attribution.kernel import attribute_energy
from pipelines.attribution.phases import attribute_energy_by_phase
from tests.test_kernel_inputs import _as_logged, _case


def _dictionary(ids: list[str], extra: list[str]) -> pa.DictionaryArray:
    """``ids`` through a dictionary holding each of its values twice (rows alternate between the copies) and the
    ``extra`` values no row uses."""
    values = sorted(set(ids))
    dictionary = [v for v in values for _ in range(2)] + extra
    indices = [2 * values.index(v) + (i % 2) for i, v in enumerate(ids)]
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(dictionary))


def _totals(table: pa.Table) -> dict:
    names = [c for c in table.column_names if c != "request_id"]
    ids = table["request_id"].cast(pa.string()).to_pylist()
    assert len(ids) == len(set(ids)), "a request appears more than once"
    values = {c: table[c].to_pylist() for c in names}  # None (a phase total of an unsplit request) as NaN
    return {i: tuple(float("nan") if values[c][k] is None else values[c][k] for c in names) for k, i in enumerate(ids)}


def _with_first_tokens(requests: pa.Table) -> pa.Table:
    """A first token a third of the way into each request: the phase split's input."""
    s, e = (requests[c].cast(pa.int64()).to_numpy() for c in ("started_at", "ended_at"))
    first = pa.array(s + (e - s) // 3, pa.int64()).cast(requests["started_at"].type)
    return requests.append_column("first_token_at", first)


@pytest.mark.parametrize("by_phase", [False, True])
@pytest.mark.parametrize("repeated", [False, True])
def test_dictionary_ids_with_twice_listed_and_unused_values_total_as_their_strings(repeated, by_phase):
    requests, telemetry = _as_logged(*_case(21))
    if by_phase:
        requests = _with_first_tokens(requests)
    call = attribute_energy_by_phase if by_phase else attribute_energy
    n = requests.num_rows
    strings = [f"req-{(k % 61) if repeated else k}" for k in range(n)]
    plain = call(requests.set_column(0, "request_id", pa.array(strings)), telemetry, bucket_s=60)
    coded = call(
        requests.set_column(0, "request_id", _dictionary(strings, ["never-used", "also-unused"])),
        telemetry,
        bucket_s=60,
    )
    got = coded.per_request
    assert got.schema.field("request_id").type == pa.string()
    assert coded.per_request_bucket.schema.field("request_id").type == pa.string()
    assert got.sort_by("request_id").num_rows == len(got.to_pandas()) == (61 if repeated else n)
    expected, totals = _totals(plain.per_request), _totals(got)
    assert sorted(totals) == sorted(expected)
    for rid, values in expected.items():
        np.testing.assert_allclose(totals[rid], values, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("by_phase", [False, True])
def test_chunks_with_their_own_dictionaries_one_holding_an_unused_null(by_phase):
    """As Parquet read with read_dictionary gives them (a dictionary per row group); Arrow cannot unify
    dictionaries with a null, so the chunks are read as their values."""
    requests, telemetry = _as_logged(*_case(22))
    if by_phase:
        requests = _with_first_tokens(requests)
    call = attribute_energy_by_phase if by_phase else attribute_energy
    strings = [f"req-{k % 40}" for k in range(requests.num_rows)]
    half = len(strings) // 2
    first = pa.DictionaryArray.from_arrays(
        pa.array([sorted(set(strings)).index(v) for v in strings[:half]], pa.int32()),
        pa.array([*sorted(set(strings)), None]),
    )
    second = _dictionary(strings[half:], [])
    ids = pa.chunked_array([first, second])
    plain = call(requests.set_column(0, "request_id", pa.array(strings)), telemetry, bucket_s=60).per_request
    got = call(requests.set_column(0, "request_id", ids), telemetry, bucket_s=60).per_request
    expected, totals = _totals(plain), _totals(got)
    assert sorted(totals) == sorted(expected) and len(totals) == 40
    for rid, values in expected.items():
        np.testing.assert_allclose(totals[rid], values, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("by_phase", [False, True])
def test_a_null_id_or_a_dictionary_id_whose_value_is_null_is_refused(by_phase):
    requests, telemetry = _case(5)
    if by_phase:  # the phase split refuses them too (its sums by id had two null requests)
        requests = _with_first_tokens(requests)
    call = attribute_energy_by_phase if by_phase else attribute_energy
    n = requests.num_rows
    ids = pa.DictionaryArray.from_arrays(pa.array([1] + [0] * (n - 1), pa.int32()), pa.array(["x", None]))
    assert ids.null_count == 0  # Arrow counts only null indices
    for column in (ids, pa.array([None, None] + ["x"] * (n - 2))):
        with pytest.raises(ValueError, match=r"request_id must not be null \(\d rows\)"):
            call(requests.set_column(0, "request_id", column), telemetry)


@pytest.mark.parametrize("table", ["requests", "telemetry"])
def test_a_dictionary_device_id_whose_value_is_null_is_refused(table):
    """Such a row had no device code: its pieces came out with a null device_id."""
    tables = dict(zip(("requests", "telemetry"), _case(5)))
    t = tables[table]
    devices = t["device_id"].combine_chunks().to_pylist()
    values = sorted(set(devices))
    indices = [values.index(d) for d in devices]
    indices[0] = len(values)  # the null value
    column = pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array([*values, None]))
    tables[table] = t.set_column(t.column_names.index("device_id"), "device_id", column)
    with pytest.raises(ValueError, match=r"device_id must not be null \(1 rows\)"):
        attribute_energy(tables["requests"], tables["telemetry"])
