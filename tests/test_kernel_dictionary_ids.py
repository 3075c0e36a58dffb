"""Dictionary-typed request ids (a pandas categorical, a Parquet column read as a dictionary, a DuckDB ENUM): a
dictionary may list a value twice or values no row uses, so its indices are not the requests. per_request must
give each request once, with the totals of its string ids, and keep the dictionary type whether ids repeat or not."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pipelines.attribution import prepare
from pipelines.attribution.kernel import attribute_energy
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
    return {i: tuple(table[c][k].as_py() for c in names) for k, i in enumerate(ids)}


@pytest.mark.parametrize("repeated", [False, True])
def test_dictionary_ids_with_twice_listed_and_unused_values_total_as_their_strings(repeated):
    requests, telemetry = _as_logged(*_case(21))
    n = requests.num_rows
    strings = [f"req-{(k % 61) if repeated else k}" for k in range(n)]
    plain = attribute_energy(requests.set_column(0, "request_id", pa.array(strings)), telemetry, bucket_s=60)
    coded = attribute_energy(
        requests.set_column(0, "request_id", _dictionary(strings, ["never-used", "also-unused"])),
        telemetry,
        bucket_s=60,
    )
    got = coded.per_request
    assert pa.types.is_dictionary(got.schema.field("request_id").type)
    assert pa.types.is_dictionary(coded.per_request_bucket.schema.field("request_id").type)
    expected, totals = _totals(plain.per_request), _totals(got)
    assert sorted(totals) == sorted(expected) and len(totals) == (61 if repeated else n)
    for rid, values in expected.items():
        np.testing.assert_allclose(totals[rid], values, rtol=1e-12, atol=1e-9)


def test_request_codes_of_a_dictionary_follow_values_not_indices():
    # rows b, a, a, b where the dictionary lists a twice: two requests, coded by first appearance
    ids = pa.DictionaryArray.from_arrays(pa.array([2, 0, 1, 2], pa.int32()), pa.array(["a", "a", "b", "c"]))
    codes, distinct = prepare.request_codes(ids)
    assert codes.tolist() == [0, 1, 1, 0]
    assert distinct.cast(pa.string()).to_pylist() == ["b", "a"]
    # distinct rows although the dictionary has an unused value: the rows are the codes
    ids = pa.DictionaryArray.from_arrays(pa.array([0, 2], pa.int32()), pa.array(["a", "a", "b"]))
    codes, distinct = prepare.request_codes(ids)
    assert codes is None and distinct.cast(pa.string()).to_pylist() == ["a", "b"]


def test_a_dictionary_id_whose_value_is_null_is_refused():
    requests, telemetry = _case(5)
    n = requests.num_rows
    ids = pa.DictionaryArray.from_arrays(pa.array([1] + [0] * (n - 1), pa.int32()), pa.array(["x", None]))
    assert ids.null_count == 0  # Arrow counts only null indices
    with pytest.raises(ValueError, match=r"request_id must not be null \(1 rows\)"):
        attribute_energy(requests.set_column(0, "request_id", ids), telemetry)


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
    with pytest.raises(ValueError, match="device_id must not be null"):
        attribute_energy(tables["requests"], tables["telemetry"])
