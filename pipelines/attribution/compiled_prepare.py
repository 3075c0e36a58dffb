"""Compiled (numba) input preparation and output grouping: linear-time passes that replace sorts and string hashes.

* ``device_order``: the rows of a table in device-code order, stable (a counting sort: one histogram, one scatter);
* ``order_within_devices``: rows already grouped by device put in (device, time) order, each device sorted on its
  own and devices in parallel (rows nearly in order, as logged at completion, by a few insertions);
* ``group_ids``: dictionary codes of int64 ids (an open-addressing hash table), in order of first appearance;
  ``ids_distinct`` whether they are all distinct, the table split by hash over threads;
* ``sum_pieces``: the per-request sums of the pieces in one pass;
* ``prepare_requests``, ``piece_rows``: each request's rate and pieces, laid out for the sweep (one-piece requests
  first);
* ``gather``: a parallel ``src[idx]``; ``gather_chunks`` the same from a column's chunks (Arrow's buffers, by
  address), so that no full-length copy of a chunked column is made.

prepare.py calls these when numba is installed and falls back to numpy/Arrow otherwise.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic


@njit(cache=True, nogil=True)
def device_order(codes, ndev, order, first):
    """Fill ``order`` with the row numbers sorted by code (stable) and ``first`` (ndev + 1) with each code's first
    position in it. Returns True when the rows were already in code order (then ``order`` is left unfilled)."""
    counts = np.zeros(ndev + 1, np.int64)
    ordered = True
    prev = -1
    for i in range(len(codes)):
        c = codes[i]
        counts[c + 1] += 1
        if c < prev:
            ordered = False
        prev = c
    first[0] = 0
    for d in range(ndev):
        first[d + 1] = first[d] + counts[d + 1]
    if ordered:
        return True
    nxt = first[:-1].copy()
    for i in range(len(codes)):
        c = codes[i]
        order[nxt[c]] = i
        nxt[c] += 1
    return False


@njit(cache=True, inline="always")
def _insertion_sort(t, order, lo, hi, budget):
    """Stable insertion sort of order[lo:hi] by t, giving up (False) after ``budget`` moves: rows logged at
    completion are nearly in start order (a row is out of place by the few that overlap it)."""
    moves = 0
    for i in range(lo + 1, hi):
        j = order[i]
        key = t[j]
        k = i - 1
        while k >= lo and t[order[k]] > key:
            order[k + 1] = order[k]
            k -= 1
            moves += 1
        order[k + 1] = j
        if moves > budget:
            return False
    return True


@njit(cache=True, parallel=True)
def order_within_devices(first, t, order):
    """``order``: positions of rows grouped by device (``first``: each device's first row) in (device, t) order,
    stable. Devices run in parallel; a device's rows in time order cost one pass, nearly in order a few moves
    each (insertion sort), else a merge sort."""
    ndev = len(first) - 1
    for d in prange(ndev):
        lo, hi = first[d], first[d + 1]
        for i in range(lo, hi):
            order[i] = i
        if not _insertion_sort(t, order, lo, hi, 16 * (hi - lo)):
            local = np.argsort(t[lo:hi], kind="mergesort")
            for i in range(hi - lo):
                order[lo + i] = lo + local[i]


@njit(cache=True, inline="always")
def _hash(x):
    return np.uint64(x) * np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, inline="always")
def _slot(x, mask):
    return np.int64((_hash(x) >> np.uint64(20)) & np.uint64(mask))


@njit(cache=True)
def group_ids(ids, codes, first_rows):
    """Codes of int64 ids in order of first appearance (``codes[i]``), the first row of each code
    (``first_rows[:k]``); returns k, the number of distinct ids."""
    n = len(ids)
    size = 1
    while size < 2 * n:
        size *= 2
    table = np.full(size, -1, np.int32)  # code of the id in the slot, -1 when empty (n < 2**31)
    mask = size - 1
    k = 0
    for i in range(n):
        x = ids[i]
        j = _slot(x, mask)
        while True:
            c = table[j]
            if c < 0:
                table[j] = k
                codes[i] = k
                first_rows[k] = i
                k += 1
                break
            if ids[first_rows[c]] == x:
                codes[i] = c
                break
            j = (j + 1) & mask
    return k


@njit(cache=True, parallel=True)
def ids_distinct(ids, tables):
    """Whether no int64 id occurs twice. ``tables`` (parts x a power of two, -1 filled by the caller): part t
    holds the rows of the ids whose hash's top bits are t, each part filled by its own thread (group_ids' table
    split by hash, no codes written)."""
    parts, size = tables.shape
    mask = size - 1
    bits = 0
    while (1 << bits) < parts:  # parts is a power of two
        bits += 1
    shift = np.uint64(64 - max(bits, 1))
    duplicate = np.zeros(parts, np.bool_)
    for t in prange(parts):
        table = tables[t]
        for i in range(len(ids)):
            x = ids[i]
            if parts > 1 and np.int64(_hash(x) >> shift) != t:
                continue
            j = _slot(x, mask)
            while True:
                r = table[j]
                if r < 0:
                    table[j] = i
                    break
                if ids[r] == x:
                    duplicate[t] = True
                    break
                j = (j + 1) & mask
            if duplicate[t]:
                break
    return not duplicate.any()


@njit(cache=True)
def sum_pieces(rows, codes, coded, energy, share, unmet, uncertainty, out):
    """out[:, c] += the pieces' energy, share, unmetered seconds and energy uncertainty, c the code of the piece's
    row (coded) or the row itself, in one pass."""
    for p in range(len(rows)):
        c = codes[rows[p]] if coded else rows[p]
        out[0, c] += energy[p]
        out[1, c] += share[p]
        out[2, c] += unmet[p]
        out[3, c] += uncertainty[p]


@njit(cache=True)
def prepare_requests(s, e, w, bucket_us, rate, weighted, positive, npieces, pieces_start):
    """Per request: its rate (weight per second), whether it has length and weight, how many buckets it spans and
    where its pieces start: the requests of one piece first, in row order, then the others' pieces (a request's
    pieces together), so that the per-request totals of a group are its first pieces as they are plus the sums
    of a short tail (results.py). Returns the number of pieces."""
    singles = 0
    for i in range(len(s)):
        positive[i] = e[i] > s[i]
        rate[i] = w[i] / ((e[i] - s[i]) / 1e6) if positive[i] else 0.0
        weighted[i] = positive[i] and rate[i] > 0
        first_b = s[i] // bucket_us
        last_b = (e[i] - 1) // bucket_us if positive[i] else first_b
        npieces[i] = last_b - first_b + 1
        singles += npieces[i] == 1
    one, many = 0, singles
    for i in range(len(s)):
        if npieces[i] == 1:
            pieces_start[i] = one
            one += 1
        else:
            pieces_start[i] = many
            many += npieces[i]
    return many


@njit(cache=True)
def piece_rows(npieces, pieces_start, row):
    """The request row of each piece (the layout prepare_requests chose)."""
    for i in range(len(npieces)):
        for k in range(npieces[i]):
            row[pieces_start[i] + k] = i


@njit(cache=True, parallel=True)
def gather(src, idx, out):
    """out[i] = src[idx[i]], in parallel (rows in time order gathered by device touch memory at a stride)."""
    for i in prange(len(idx)):
        out[i] = src[idx[i]]


@intrinsic
def _values_at(typingctx, address, like):
    """A pointer of ``like``'s element type to the memory at ``address`` (an int64)."""
    sig = types.CPointer(like.dtype)(address, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


_BLOCK = 1 << 14


@njit(cache=True, parallel=True)
def gather_chunks(addresses, starts, rows, out):
    """out[i] = the column's row rows[i], the column given as its chunks: chunk c holds rows starts[c] to
    starts[c + 1] - 1 at addresses[c] (of out's type). In parallel blocks; a block keeps its last chunk, as a
    device's rows come in increasing order."""
    n = len(rows)
    for b in prange((n + _BLOCK - 1) // _BLOCK):
        lo, hi = starts[0], starts[0]  # the block's current chunk: rows lo to hi - 1 (none yet)
        values = _values_at(addresses[0], out)
        for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
            r = rows[i]
            if r < lo or r >= hi:
                c = np.searchsorted(starts, r, side="right") - 1
                lo, hi = starts[c], starts[c + 1]
                values = _values_at(addresses[c], out)
            out[i] = values[r - lo]
