"""A big input column as its chunks: numpy views of Arrow's buffers, converted chunk by chunk only where the type
needs it, so that the kernel never holds a full-length converted copy of the inputs (at 10M requests and 16M
samples the five big columns' copies were about 0.55 GB). Each device group gathers its rows straight from the
chunks (a compiled parallel gather when numba is installed, numpy otherwise). Pure numpy/pyarrow; imports no
Dagster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipelines.attribution import prepare
from pipelines.attribution.arrays import TS_TYPE, US_PER_S, chunk_addresses, chunk_starts


@dataclass(frozen=True)
class Chunked:
    """A column's values as consecutive numpy chunks; chunk c holds rows starts[c] to starts[c + 1] - 1."""

    chunks: list[np.ndarray]
    starts: np.ndarray
    dtype: np.dtype

    def __len__(self) -> int:
        return int(self.starts[-1])

    def slice(self, lo: int, hi: int) -> np.ndarray:
        """Rows lo to hi - 1: a view when they lie in one chunk."""
        first = max(int(np.searchsorted(self.starts, lo, side="right")) - 1, 0)
        pieces = []
        for c in range(first, len(self.chunks)):
            a, b = int(self.starts[c]), int(self.starts[c + 1])
            if a >= hi:
                break
            pieces.append(self.chunks[c][max(lo, a) - a : min(hi, b) - a])
        if len(pieces) == 1:
            return pieces[0]
        return np.concatenate(pieces) if pieces else np.empty(0, self.dtype)

    def take(self, rows: slice | np.ndarray) -> np.ndarray:
        """The column at rows (a slice, or row numbers)."""
        if isinstance(rows, slice):
            return self.slice(rows.start, rows.stop)
        if len(self.chunks) == 1:
            return prepare.take(self.chunks[0], rows)
        out = np.empty(len(rows), dtype=self.dtype)
        compiled = prepare._compiled()
        if compiled is not None and len(rows):
            compiled.gather_chunks(chunk_addresses(self.chunks), self.starts, prepare._readonly(rows), out)
            return out
        chunk_of = np.searchsorted(self.starts, rows, side="right") - 1
        by_chunk = np.argsort(chunk_of, kind="stable")
        bounds = np.searchsorted(chunk_of[by_chunk], np.arange(len(self.chunks) + 1))
        for c, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            at = by_chunk[a:b]
            out[at] = self.chunks[c][rows[at] - self.starts[c]]
        return out


def chunked(col: pa.ChunkedArray | pa.Array, convert: Callable[[pa.Array], np.ndarray]) -> Chunked:
    """The column's chunks, each converted by ``convert`` (a zero-copy view where the type allows)."""
    arrays = [np.ascontiguousarray(convert(c)) for c in _arrow_chunks(col)]
    dtype = arrays[0].dtype if arrays else convert(pa.chunked_array([], col.type).combine_chunks()).dtype
    arrays = [a.astype(dtype, copy=False) for a in arrays if len(a)]
    return Chunked(arrays, chunk_starts(arrays), np.dtype(dtype))


def _arrow_chunks(col: pa.ChunkedArray | pa.Array) -> list[pa.Array]:
    return list(col.chunks) if isinstance(col, pa.ChunkedArray) else [col]


def aligned(*cols: Chunked) -> Iterator[tuple[np.ndarray, ...]]:
    """The columns' rows in pieces that lie within one chunk of each column (views, row order kept)."""
    bounds = np.unique(np.concatenate([c.starts for c in cols]))
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        yield tuple(c.slice(int(lo), int(hi)) for c in cols)


def from_pieces(pieces: list[np.ndarray], dtype) -> Chunked:
    """A Chunked column of computed pieces."""
    pieces = [p for p in pieces if len(p)]
    return Chunked(pieces, chunk_starts(pieces), np.dtype(dtype))


def request_lengths(requests: pa.Table, start_us: Chunked, end_us: Chunked) -> Callable[[np.ndarray], np.ndarray]:
    """The seconds of request rows (per_request's device_s, built on first use) as a function of row numbers:
    from the caller's own columns when the inputs are views of them (timestamps in microseconds, UTC: nothing is
    held but references, where an array of every row's length would be 79 MB at 10M requests), else from lengths
    computed now (the converted columns are not kept)."""
    if requests["started_at"].type == TS_TYPE and requests["ended_at"].type == TS_TYPE:
        compiled = prepare._compiled()
        if compiled is None or not np.array_equal(start_us.starts, end_us.starts):
            return lambda rows: (end_us.take(rows) - start_us.take(rows)) / US_PER_S
        addresses = chunk_addresses(start_us.chunks), chunk_addresses(end_us.chunks)

        def lengths(rows: slice | np.ndarray) -> np.ndarray:  # one pass, one array (no gathered copies)
            if isinstance(rows, slice):
                return (end_us.take(rows) - start_us.take(rows)) / US_PER_S
            out = np.empty(len(rows))
            compiled.gather_lengths(*addresses, start_us.starts, prepare._readonly(rows), out)
            return out

        return lengths
    length_s = np.concatenate([(e - s) / US_PER_S for s, e in aligned(start_us, end_us)] or [np.empty(0)])
    return lambda rows: prepare.take(length_s, rows)  # a view for a slice
