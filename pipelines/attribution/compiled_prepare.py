"""Compiled (numba) input preparation and output grouping: linear-time passes that replace sorts and string hashes.

* ``device_order``: the rows of a table in device-code order, stable (a counting sort: one histogram, one scatter);
* ``order_within_devices``: rows already grouped by device put in (device, time) order, each device sorted on its
  own and devices in parallel (rows nearly in order, as logged at completion, by a few insertions);
* ``group_ids``: dictionary codes of int64 ids (an open-addressing hash table), in order of first appearance;
  ``ids_distinct`` whether they are all distinct (bit sets split by hash over threads, then an exact check of
  the few ids that share a bit: 8 bits an id, a tenth of a hash table's memory);
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


@njit(cache=True, nogil=True, parallel=True)
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
    """splitmix64's finalizer: every bit of the id moves the slot bits (a plain multiply left ids that differ only
    in high bits, such as i << 40, in a few slots: linear probing went quadratic)."""
    z = np.uint64(x)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def _slot(x, mask):
    return np.int64((_hash(x) >> np.uint64(20)) & np.uint64(mask))


@njit(cache=True, nogil=True)
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


@njit(cache=True, inline="always")
def _in_part(x, t, parts, shift):
    return parts == 1 or np.int64(_hash(x) >> shift) == t


@njit(cache=True, nogil=True)
def _part_distinct(addresses, starts, seen, twice, t, parts, shift):
    """Whether the ids of hash part t occur once each. Pass 1 sets each id's bit (a slot of its hash) in ``seen``
    and, where it was set before, in ``twice``, counting those second hits; pass 2 takes the ids whose bit is in
    ``twice`` (the few that share a bit: about 7% at 8 bits an id; a bit hit m >= 2 times has m ids and m - 1
    second hits, so at most twice the hits) and sorts them: a repeated id lies beside itself there."""
    mask = len(seen) * 64 - 1
    like = np.empty(0, np.int64)
    hits = 0
    candidates = np.empty(0, np.int64)
    n_candidates = 0
    for step in range(2):  # mark, take
        if step == 1:
            if hits == 0:
                return True
            candidates = np.empty(2 * hits, np.int64)
        for c in range(len(starts) - 1):
            values = _values_at(addresses[c], like)
            for i in range(starts[c + 1] - starts[c]):
                x = values[i]
                if not _in_part(x, t, parts, shift):
                    continue
                b = _slot(x, mask)
                word, bit = b >> 6, np.uint64(1) << np.uint64(b & 63)
                if step == 0:
                    if seen[word] & bit:
                        twice[word] |= bit
                        hits += 1
                    else:
                        seen[word] |= bit
                elif twice[word] & bit:
                    candidates[n_candidates] = x
                    n_candidates += 1
    candidates = np.sort(candidates[:n_candidates])
    return not np.any(candidates[1:] == candidates[:-1])


@njit(cache=True, nogil=True, parallel=True)
def ids_distinct(addresses, starts, seen, twice):
    """Whether no int64 id occurs twice; the ids given as their chunks, read in place (chunk c holds rows
    starts[c] to starts[c + 1] - 1 at addresses[c]: no concatenated copy). ``seen``, ``twice`` (parts x a power of
    two of uint64 words, zeros): part t's bit sets, for the ids whose hash's top bits are t, each part checked by
    its own thread (_part_distinct: bits, then an exact check of the ids that share one; no hash table)."""
    parts = seen.shape[0]
    bits = 0
    while (1 << bits) < parts:  # parts is a power of two
        bits += 1
    shift = np.uint64(64 - max(bits, 1))
    distinct = np.zeros(parts, np.bool_)
    for t in prange(parts):
        distinct[t] = _part_distinct(addresses, starts, seen[t], twice[t], t, parts, shift)
    return distinct.all()


@njit(cache=True, nogil=True)
def sum_pieces(rows, codes, coded, energy, share, unmet, uncertainty, out):
    """out[:, c] += the pieces' energy, share, unmetered seconds and energy uncertainty, c the code of the piece's
    row (coded) or the row itself, in one pass."""
    for p in range(len(rows)):
        c = codes[rows[p]] if coded else rows[p]
        out[0, c] += energy[p]
        out[1, c] += share[p]
        out[2, c] += unmet[p]
        out[3, c] += uncertainty[p]


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def piece_rows(npieces, pieces_start, row):
    """The request row of each piece (the layout prepare_requests chose)."""
    for i in range(len(npieces)):
        for k in range(npieces[i]):
            row[pieces_start[i] + k] = i


@njit(cache=True, nogil=True, parallel=True)
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


@njit(cache=True, nogil=True, parallel=True)
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


@njit(cache=True, nogil=True, parallel=True)
def gather_lengths(start_addresses, end_addresses, starts, rows, out):
    """out[i] = (end - start) / 1e6 of row rows[i]: the seconds of request rows from int64 microsecond columns
    given as chunks of the same rows (gather_chunks' layout), in one pass and one output array."""
    n = len(rows)
    like = np.empty(0, np.int64)
    for b in prange((n + _BLOCK - 1) // _BLOCK):
        lo, hi = starts[0], starts[0]
        first, last = _values_at(start_addresses[0], like), _values_at(end_addresses[0], like)
        for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
            r = rows[i]
            if r < lo or r >= hi:
                c = np.searchsorted(starts, r, side="right") - 1
                lo, hi = starts[c], starts[c + 1]
                first, last = _values_at(start_addresses[c], like), _values_at(end_addresses[c], like)
            out[i] = (last[r - lo] - first[r - lo]) / 1e6
