"""A big input column as its chunks (columns.py): gathers and slices across chunk boundaries give the values of
the whole column, compiled and without numba, and the chunks are Arrow's own buffers where the type allows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pipelines.attribution import prepare
from pipelines.attribution.arrays import TS_TYPE, float_array, ts_us
from pipelines.attribution.columns import aligned, chunked


def _column(values: np.ndarray, cuts: list[int], type_=None) -> pa.ChunkedArray:
    bounds = [0, *cuts, len(values)]
    return pa.chunked_array([pa.array(values[a:b], type_) for a, b in zip(bounds[:-1], bounds[1:])], type_)


@pytest.mark.parametrize("compiled", [True, False])
def test_gathers_and_slices_across_chunks_give_the_whole_columns_values(monkeypatch, compiled):
    if not compiled:
        monkeypatch.setattr(prepare, "compiled_prepare", None)
    rng = np.random.default_rng(3)
    values = rng.normal(size=1000)
    col = chunked(_column(values, [0, 10, 11, 500, 999]), float_array)
    assert len(col) == 1000 and len(col.chunks) == 5  # the empty chunk is left out
    for rows in (rng.integers(0, 1000, 5000).astype(np.int32), np.arange(1000)[::-1].copy(), np.zeros(0, np.int32)):
        np.testing.assert_array_equal(col.take(rows), values[rows])
    for lo, hi in ((0, 1000), (5, 10), (9, 12), (499, 999), (999, 1000), (7, 7)):
        np.testing.assert_array_equal(col.take(slice(lo, hi)), values[lo:hi])


def test_timestamps_and_floats_are_views_of_arrows_buffers_and_aligned_pieces_pair_rows():
    t = np.arange(100, dtype=np.int64) * 1_000_000
    ts = _column(t, [30, 60], pa.int64()).cast(TS_TYPE)
    col = chunked(ts, ts_us)
    assert col.chunks[1].ctypes.data == ts.chunk(1).buffers()[1].address + 8 * ts.chunk(1).offset
    other = chunked(_column(t.astype(np.float64), [45]), float_array)
    pairs = list(aligned(col, other))
    assert [len(a) for a, _ in pairs] == [30, 15, 15, 40]
    for a, b in pairs:
        np.testing.assert_array_equal(a.astype(np.float64), b)
