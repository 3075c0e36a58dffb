"""The kernel's inputs as codes and orders: device ids as dictionary codes, the rows of each device group, request
ids as dictionary codes. Pure numpy/pyarrow; imports no Dagster.

Inputs come as the warehouse or a user gives them: rows in time order as logged (devices interleaved), string
device ids, int64 or string request ids. Nothing here sorts by time or hashes a string per row more than once:
* device ids: each chunk dictionary-encoded (chunks in parallel threads; Arrow releases the GIL), the small
  dictionaries unified into sorted device ids, the chunk codes remapped through a lookup array;
* rows by device: one stable counting sort by device code (linear), skipped when rows come grouped already;
* request ids: int64 ids grouped by a compiled hash table, other ids by Arrow's dictionary encoding; codes follow
  first appearance, so unique ids get the identity and per-request totals are per-row totals.
The compiled passes (compiled_prepare.py) are used when numba is installed; numpy/Arrow do the same otherwise. They
are imported on first use, not with this module: importing numba takes most of a second, which a first call in a
process spends in the warm-up thread (warmup.py) while this thread reads the inputs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.attribution.arrays import chunk_addresses, chunk_starts
from pipelines.attribution.engines import numba_installed
from pipelines.attribution.group_threads import launch_lock

_NOT_IMPORTED = object()
# the compiled passes' module, imported by _compiled() on first use; None without numba (numba is optional)
compiled_prepare = _NOT_IMPORTED if numba_installed() else None


def _compiled():
    """The compiled passes (compiled_prepare.py), or None when numba is missing."""
    global compiled_prepare
    if compiled_prepare is _NOT_IMPORTED:
        from pipelines.attribution import compiled_prepare as module

        compiled_prepare = module
    return compiled_prepare


_THREADS = 2


def _chunks(col: pa.ChunkedArray | pa.Array) -> list[pa.Array]:
    return list(col.chunks) if isinstance(col, pa.ChunkedArray) else [col]


def _encode(chunk: pa.Array) -> pa.DictionaryArray:
    if pa.types.is_dictionary(chunk.type):
        return chunk
    return pc.dictionary_encode(pc.cast(chunk, pa.string()))


def _encoded_chunks(cols: list) -> list[list[pa.DictionaryArray]]:
    """Every chunk of each column dictionary-encoded, chunks spread over threads."""
    pieces = [(i, chunk) for i, col in enumerate(cols) for chunk in _chunks(col)]
    with ThreadPoolExecutor(_THREADS) as pool:
        encoded = list(pool.map(lambda item: _encode(item[1]), pieces))
    out: list[list[pa.DictionaryArray]] = [[] for _ in cols]
    for (i, _), enc in zip(pieces, encoded):
        out[i].append(enc)
    return out


def _remapped(chunks: list[pa.DictionaryArray], devices: pa.Array, n: int) -> np.ndarray:
    """The column's rows as codes into ``devices``: each chunk's indices looked up through its dictionary's codes
    (a parallel compiled gather when numba is installed, taking turns where numba's threading layer needs it)."""
    codes = np.empty(n, dtype=np.int32)
    at = 0
    compiled = _compiled()
    with launch_lock(compiled is not None):
        for enc in chunks:
            lookup = pc.index_in(pc.cast(enc.dictionary, pa.string()), devices).to_numpy(zero_copy_only=False)
            lookup, indices = lookup.astype(np.int32), enc.indices.to_numpy(zero_copy_only=False)
            m = len(enc)
            if compiled is None:
                codes[at : at + m] = lookup[indices]
            else:
                compiled.gather(_readonly(lookup), _readonly(indices.astype(np.int32, copy=False)), codes[at : at + m])
            at += m
    return codes


def device_codes(*cols) -> tuple[pa.Array, list[np.ndarray]]:
    """Sorted distinct device ids of all the columns, and each column's rows as int32 codes into them."""
    if nulls := sum(null_ids(col) for col in cols):  # a dictionary's null value too: it has no code
        raise ValueError(f"device_id must not be null ({nulls:,} rows): quarantine them before attribution")
    encoded = _encoded_chunks(list(cols))
    dicts = [pc.cast(enc.dictionary, pa.string()) for chunks in encoded for enc in chunks]
    devices = pc.unique(pa.chunked_array(dicts, type=pa.string())).sort() if dicts else pa.array([], pa.string())
    return devices, [_remapped(chunks, devices, len(col)) for chunks, col in zip(encoded, cols)]


@dataclass(frozen=True)
class RowsByDevice:
    """The rows of one table for a range of device codes [lo, hi): a slice (a view) when the rows come grouped
    by device, else positions in one stable device order."""

    order: np.ndarray | None
    """row numbers in device order, None when the rows are in that order already"""
    first: np.ndarray
    """each device code's first position in that order (ndev + 1)"""

    def rows(self, lo: int, hi: int) -> slice | np.ndarray:
        if self.order is None:
            return slice(int(self.first[lo]), int(self.first[hi]))
        return self.order[self.first[lo] : self.first[hi]]

    def codes(self, lo: int, hi: int) -> np.ndarray:
        """The device code (minus lo) of each of the group's rows: known from the counts, no gather needed."""
        return np.repeat(np.arange(hi - lo, dtype=np.int64), np.diff(self.first[lo : hi + 1]))

    def table_rows(self, lo: int, hi: int, group_rows: np.ndarray) -> np.ndarray:
        """The table's row numbers of rows numbered within the group."""
        if self.order is None:
            return group_rows + self.first[lo]
        return self.order[self.first[lo] : self.first[hi]][group_rows]


def take(src: np.ndarray, rows: slice | np.ndarray) -> np.ndarray:
    """src[rows]: a view for a slice, a parallel compiled gather for positions (when numba is installed; the
    arrays are passed read-only whatever their source, so that one compiled version serves every caller)."""
    compiled = None if isinstance(rows, slice) else _compiled()
    if compiled is None:
        return src[rows]
    out = np.empty(len(rows), dtype=src.dtype)
    compiled.gather(_readonly(src), _readonly(rows), out)
    return out


def _readonly(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.flags.writeable = False
    return view


def rows_by_device(dev: np.ndarray, ndev: int) -> RowsByDevice:
    """One stable sort of the rows by device code: a counting sort (compiled), or numpy's stable argsort."""
    first = np.zeros(ndev + 1, dtype=np.int64)
    compiled = _compiled()
    if compiled is not None:
        order = np.empty(len(dev), dtype=np.int32 if len(dev) < 2**31 else np.int64)
        if compiled.device_order(dev, ndev, order, first):
            return RowsByDevice(None, first)
        return RowsByDevice(order, first)
    if len(dev) == 0 or bool(np.all(dev[1:] >= dev[:-1])):
        return RowsByDevice(None, np.searchsorted(dev, np.arange(ndev + 1)))
    small = dev.astype(np.int16) if ndev < 2**15 else dev  # numpy radix-sorts 16-bit keys
    order = np.argsort(small, kind="stable")
    return RowsByDevice(order, np.searchsorted(dev[order], np.arange(ndev + 1)))


def request_codes(rid: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray | None, pa.Array]:
    """Per request row, the code of its request_id (codes follow first appearance), and the distinct ids by code.
    Distinct int64 ids give None (the codes are the rows) and the ids themselves (no copy): told apart first by a
    check in threads that writes no codes."""
    compiled = _compiled()
    if pa.types.is_integer(rid.type) and compiled is not None and not rid.null_count:
        if _ids_distinct(compiled, rid):
            return None, rid
        ids = _readonly(rid.to_numpy(zero_copy_only=False).astype(np.int64, copy=False))  # one compiled version
        index_type = np.int32 if len(ids) < 2**31 else np.int64
        codes, first_rows = np.empty(len(ids), dtype=index_type), np.empty(len(ids), dtype=index_type)
        k = compiled.group_ids(ids, codes, first_rows)
        return codes, rid.take(pa.array(first_rows[:k]))
    enc = pc.dictionary_encode(rid.combine_chunks() if isinstance(rid, pa.ChunkedArray) else rid)
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return (None if len(enc.dictionary) == len(rid) else codes), enc.dictionary


def plain_request_ids(rid: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The request_id column as the kernel reads it. A null is refused (a piece must name its request, and
    per_request's codes have no place for one). Dictionary-typed ids (a pandas categorical, Parquet read as a
    dictionary, a DuckDB ENUM) are read as their values: a dictionary may list a value twice, hold values no row
    uses or differ from chunk to chunk, so its indices are not the requests. Text ids come in one chunk; integer
    ids stay in their chunks (results.py gathers from them)."""
    if pa.types.is_dictionary(rid.type):
        rid = pc.cast(rid, rid.type.value_type)  # an index pointing at a null value becomes a null
    if rid.null_count:
        raise ValueError(f"request_id must not be null ({rid.null_count:,} rows): quarantine them before attribution")
    if isinstance(rid, pa.ChunkedArray) and not pa.types.is_integer(rid.type):
        rid = rid.combine_chunks()
    return rid


def null_ids(ids: pa.Array | pa.ChunkedArray) -> int:
    """Rows whose id is null: for dictionary-typed ids also those whose index points at a null value (Arrow's
    null_count counts null indices only)."""
    chunks = ids.chunks if isinstance(ids, pa.ChunkedArray) else [ids]
    return sum(
        int(pc.sum(pc.is_null(c.dictionary.take(c.indices))).as_py() or 0)
        if pa.types.is_dictionary(c.type) and c.dictionary.null_count
        else c.null_count
        for c in chunks
    )


def _ids_distinct(compiled, rid: pa.Array | pa.ChunkedArray) -> bool:
    """Whether no integer id occurs twice (compiled.ids_distinct, in threads): the chunks read in place (int64
    ones; narrower ones widened a chunk at a time), at least 8 bits an id in each thread's bit sets."""
    chunks = rid.chunks if isinstance(rid, pa.ChunkedArray) else [rid]
    arrays = [c.to_numpy(zero_copy_only=False).astype(np.int64, copy=False) for c in chunks if len(c)]
    starts, addresses = chunk_starts(arrays), chunk_addresses(arrays)
    words = 1
    while _THREADS * words * 64 < 8 * len(rid):
        words *= 2
    seen, twice = (np.zeros((_THREADS, words), np.uint64) for _ in range(2))
    return bool(compiled.ids_distinct(addresses, starts, seen, twice))


def sum_pieces(rows: np.ndarray, codes: np.ndarray | None, values: tuple, out: np.ndarray) -> None:
    """out[j, code of the piece's row] += values[j][piece] (codes None: the rows are the codes)."""
    compiled = _compiled()
    if compiled is not None:
        compiled.sum_pieces(rows, rows if codes is None else codes, codes is not None, *values, out)
        return
    by = rows if codes is None else codes[rows]
    for j, v in enumerate(values):
        out[j] += np.bincount(by, weights=v, minlength=out.shape[1])
