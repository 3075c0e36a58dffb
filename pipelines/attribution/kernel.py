"""Exact energy attribution: split each device's measured energy across the requests running on it.

Pure numpy/pyarrow; imports no Dagster. The rule (README, "How energy is attributed"):

* Power is piecewise constant. A telemetry sample with ``power_window_s == 0`` (or no window column) is an
  instantaneous reading that holds from its timestamp until the next sample of its device, but never longer than
  ``max_gap_s``. A sample with ``power_window_s = w > 0`` is a trailing average (nvidia-smi/NVML ``power.draw``):
  it covers the time since the previous sample of its device when that is at most ``max_gap_s`` ago, else the
  ``w`` seconds before its timestamp. Time covered by no sample is *unmetered*.
* On each device at each instant t, with D(t) = sum over active requests of ``weight_r / (ended_r - started_r)``,
  request r receives ``weight_r / (ended_r - started_r) * integral of P(t) / D(t)`` over its interval. Metered
  time with no active (positive-weight) request is *idle*. The same rule with P = 1 splits device-seconds
  (``device_share_s``), which is what capex and overhead are priced on.
* Energy is kept apart per time bucket (``bucket_s``, aligned to the UTC epoch) so each part can be priced at the
  price of its own interval.

Documented edge cases (all tested):
* zero-length requests (ended == started) occupy no instant: energy 0, device_share_s 0;
* zero-weight requests receive nothing; time when only zero-weight requests run counts as idle;
* requests outside any telemetry: energy 0 and their whole duration in ``unmetered_s``;
* duplicate samples (same device and timestamp): power averaged, widest window kept;
* unsorted input: sorted here; samples with NaN, null or negative power are dropped and counted in
  ``dropped_samples`` (the time they covered falls to their neighbours under the rules above);
* the last instantaneous sample of a device covers no time (there is no next sample to hold until).

Energy counters: when telemetry has ``energy_counter_j`` (NVML total energy, DCGM TOTAL_ENERGY_CONSUMPTION), the
counter delta between two consecutive samples of a device at most ``max_gap_s`` apart is the energy of that
interval: the sample becomes a trailing average over exactly that interval. Where a counter is missing, or goes
backwards (a reset, or a wrap of a narrower counter; counted in ``counter_resets``), the power reading fills in.

Computed as a sorted sweep over merged breakpoints, devices in bounded groups, with running sums that restart at
every (device, bucket) segment so that no long running sum loses digits: O((N+M) log(N+M)). Two engines
implement the sweep: one compiled pass per group (pipelines/attribution/engine_compiled.py, numba) and vectorized numpy
passes (here); they agree to 1e-11 and both are checked against a slow reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.settings import DEFAULT_MAX_GAP_S, DEFAULT_PROMPT_TOKEN_WEIGHT

US_PER_S = 1_000_000
TS_TYPE = pa.timestamp("us", tz="UTC")


@dataclass
class AttributionResult:
    per_request_bucket: pa.Table
    """request_id, device_id, bucket_start, energy_j, device_share_s, unmetered_s (one row per piece)."""
    per_device_bucket: pa.Table
    """device_id, bucket_start, span_s, metered_s, busy_s, unmetered_s, metered_energy_j, busy_energy_j,
    idle_energy_j."""
    dropped_samples: int
    """Telemetry samples dropped for NaN, null or negative power."""
    counter_intervals: int = 0
    """Intervals whose energy came from an energy counter delta."""
    counter_resets: int = 0
    """Counter deltas that went backwards (resets or wraps), where power filled in."""
    _per_request: object = field(default=None, repr=False)

    @property
    def per_request(self) -> pa.Table:
        """request_id, energy_j, device_share_s, unmetered_s, device_s (one row per distinct request_id); built
        on first use (the warehouse keeps the pieces, so the daily run never needs it)."""
        if callable(self._per_request):
            self._per_request = self._per_request()
        return self._per_request

    @property
    def metered_energy_j(self) -> float:
        return float(np.sum(self.per_device_bucket["metered_energy_j"].to_numpy()))

    @property
    def idle_energy_j(self) -> float:
        return float(np.sum(self.per_device_bucket["idle_energy_j"].to_numpy()))

    @property
    def attributed_energy_j(self) -> float:
        return float(np.sum(self.per_request_bucket["energy_j"].to_numpy()))


def request_weights(completion_tokens, prompt_tokens, prompt_token_weight: float = DEFAULT_PROMPT_TOKEN_WEIGHT) -> np.ndarray:
    """Default weight of a request: output tokens plus ``prompt_token_weight`` times prompt tokens."""
    c = np.nan_to_num(np.asarray(completion_tokens, dtype=np.float64))
    p = np.nan_to_num(np.asarray(prompt_tokens, dtype=np.float64))
    return c + prompt_token_weight * p


def _ts_us(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A timestamp column as int64 microseconds since the UTC epoch (whatever its unit or zone)."""
    if col.null_count:
        raise ValueError("timestamps must not be null")
    if col.type != TS_TYPE:
        col = pc.cast(col, TS_TYPE)
    return pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def _float(col, default: float | None = None) -> np.ndarray:
    col = pc.cast(col, pa.float64())
    if col.null_count:
        col = pc.fill_null(col, np.nan if default is None else default)
    return col.to_numpy(zero_copy_only=False)


def _exclusive_segmented_cumsum(x: np.ndarray, seg_start: np.ndarray) -> np.ndarray:
    """E[k] = sum of x[j] for j < k within k's segment (segments begin where seg_start is True).

    A global cumsum minus each segment's base loses digits in proportion to the global total; one refinement
    pass (re-summing the increments the first pass got wrong) brings the error back to the segment's own scale.
    """
    if len(x) == 0:
        return x.copy()
    seg_id = np.cumsum(seg_start) - 1
    first = np.flatnonzero(seg_start)

    def once(v: np.ndarray) -> np.ndarray:
        incl = np.cumsum(v)
        excl = incl - v
        return excl - excl[first][seg_id]

    e = once(x)
    # increments implied by e within each segment, next - this; the last of a segment is taken as exact
    implied = np.empty_like(e)
    implied[:-1] = e[1:] - e[:-1]
    implied[-1] = x[-1]
    last = np.empty(len(x), dtype=bool)
    last[:-1] = seg_start[1:]
    last[-1] = True
    implied[last] = x[last]
    return e + once(x - implied)


def _bucket_edges(dev_min: np.ndarray, dev_max: np.ndarray, bucket_us: int) -> tuple[np.ndarray, np.ndarray]:
    """Interior bucket boundaries (dev index, time) for each device between its first and last breakpoint."""
    lo = dev_min // bucket_us + 1
    hi = (dev_max - 1) // bucket_us  # boundaries strictly inside (min, max)
    counts = np.maximum(hi - lo + 1, 0)
    dev = np.repeat(np.arange(len(dev_min)), counts)
    offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return dev, (np.repeat(lo, counts) + offs) * bucket_us


def _device_codes(req_dev: pa.ChunkedArray, tel_dev: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    both = pa.chunked_array(
        list(pc.cast(req_dev, pa.string()).chunks) + list(pc.cast(tel_dev, pa.string()).chunks), type=pa.string()
    )
    if pc.any(pc.is_null(both)).as_py():
        raise ValueError("device_id must not be null")
    devices = pc.unique(both).sort()
    return (
        devices,
        pc.index_in(req_dev, devices).to_numpy(zero_copy_only=False).astype(np.int64),
        pc.index_in(tel_dev, devices).to_numpy(zero_copy_only=False).astype(np.int64),
    )


def _apply_counters(dev, ts, power, window_us, counter, max_gap_us):
    """On samples sorted by (device, ts): where two consecutive counters of a device give a non-negative delta over
    at most max_gap, replace the sample's power by delta / dt and its window by dt. Returns (power, window, used,
    resets)."""
    n = len(ts)
    if n < 2:
        return power, window_us, 0, 0
    prev_ok = np.zeros(n, dtype=bool)
    prev_ok[1:] = (dev[1:] == dev[:-1]) & np.isfinite(counter[1:]) & np.isfinite(counter[:-1])
    d_e = np.zeros(n)
    d_t = np.zeros(n, dtype=np.int64)
    d_e[1:] = counter[1:] - counter[:-1]
    d_t[1:] = ts[1:] - ts[:-1]
    use = prev_ok & (d_t > 0) & (d_t <= max_gap_us) & (d_e >= 0)
    resets = prev_ok & (d_e < 0)
    power = np.where(use, d_e / np.where(use, d_t, 1) * US_PER_S, power)
    window_us = np.where(use, d_t, window_us)
    return power, window_us, int(use.sum()), int(resets.sum())


def _power_segments(dev, ts, power, window_us, max_gap_us, counter=None, engine="numpy"):
    """Sorted, deduplicated, non-overlapping power segments (dev, start, end, power_w), the dropped count and the
    counter statistics."""
    if len(ts) and not (np.all(dev[1:] >= dev[:-1]) and np.all((ts[1:] >= ts[:-1]) | (dev[1:] != dev[:-1]))):
        order = np.lexsort((ts, dev))  # telemetry usually comes in (device, time) order already
        dev, ts, power, window_us = dev[order], ts[order], power[order], window_us[order]
        counter = None if counter is None else counter[order]
    used = resets = 0
    if counter is not None:
        power, window_us, used, resets = _apply_counters(dev, ts, power, window_us, counter, max_gap_us)
    if engine == "compiled":
        from pipelines.attribution.engine_compiled import power_segments

        g_dev, g_a, g_b, g_p, dropped = power_segments(
            dev.astype(np.int64, copy=False), ts.astype(np.int64, copy=False), power.astype(np.float64, copy=False),
            window_us.astype(np.int64, copy=False), np.int64(max_gap_us))
        return g_dev, g_a, g_b, g_p, dropped, used, resets
    valid = np.isfinite(power) & (power >= 0)
    dropped = int(np.count_nonzero(~valid))
    dev, ts, power, window_us = dev[valid], ts[valid], power[valid], window_us[valid]
    if len(ts):
        new = np.ones(len(ts), dtype=bool)
        new[1:] = (dev[1:] != dev[:-1]) | (ts[1:] != ts[:-1])
        if not new.all():  # average duplicates, keep the widest window
            g = np.cumsum(new) - 1
            power = np.bincount(g, weights=power) / np.bincount(g)
            window_us = np.maximum.reduceat(window_us, np.flatnonzero(new))
            dev, ts = dev[new], ts[new]
    n = len(ts)
    same_prev = np.zeros(n, dtype=bool)
    same_prev[1:] = dev[1:] == dev[:-1]
    same_next = np.zeros(n, dtype=bool)
    same_next[:-1] = same_prev[1:]
    prev_ts = np.where(same_prev, np.roll(ts, 1), np.iinfo(np.int64).min // 2)
    next_ts = np.where(same_next, np.roll(ts, -1), ts)
    trailing = window_us > 0
    # trailing average: back to the previous sample if close enough, else its own window
    start = np.where(trailing, np.where(ts - prev_ts <= max_gap_us, prev_ts, ts - window_us), ts)
    # instantaneous: hold forward until the next sample (or the start of what the next sample covers), at most
    # max_gap: a measured average (or counter interval) takes precedence over a held reading
    next_start = np.where(same_next, np.roll(start, -1), ts)
    end = np.where(trailing, ts, np.minimum(np.minimum(next_ts, next_start), ts + max_gap_us))
    prev_end = np.where(same_prev, np.roll(end, 1), np.iinfo(np.int64).min // 2)
    start = np.maximum(start, prev_end)
    keep = end > start
    return dev[keep], start[keep], end[keep], power[keep], dropped, used, resets


def _sweep(r_dev, s, e, w, t_dev, t_ts, t_p, t_w, counter, ndev, bucket_us, max_gap_us, engine="numpy") -> dict:
    """The attribution of one group of devices (device codes 0..ndev-1), as numpy arrays."""
    g_dev, g_a, g_b, g_p, dropped, counter_used, counter_resets = _power_segments(
        t_dev, t_ts, t_p, t_w, max_gap_us, counter, engine)
    if engine == "compiled":
        from pipelines.attribution.engine_compiled import sweep

        out = sweep(r_dev, s, e, w, g_dev, g_a, g_b, g_p, bucket_us, ndev)
        out.update(dropped=dropped, counter_used=counter_used, counter_resets=counter_resets)
        return out

    all_t = [s, e, g_a, g_b]
    t_min = min((int(a.min()) for a in all_t if len(a)), default=0)
    t_min = (t_min // bucket_us) * bucket_us  # keep bucket boundaries representable
    t_max = max((int(a.max()) for a in all_t if len(a)), default=0)
    span = t_max - t_min + 1
    if ndev and span * ndev >= 2**62:
        raise ValueError("input too wide for packed keys: split it by device or day (partition it)")

    def key(d, t):
        return d.astype(np.int64) * span + (t - t_min)

    # per-device extent of breakpoints, then interior bucket boundaries
    dev_min = np.full(ndev, np.iinfo(np.int64).max)
    dev_max = np.full(ndev, np.iinfo(np.int64).min)
    for d, t in ((r_dev, s), (r_dev, e), (g_dev, g_a), (g_dev, g_b)):
        np.minimum.at(dev_min, d, t)
        np.maximum.at(dev_max, d, t)
    has = dev_min <= dev_max
    bd, bt = _bucket_edges(dev_min[has], dev_max[has], bucket_us)
    bd = np.flatnonzero(has)[bd]

    keys = np.sort(np.concatenate([key(r_dev, s), key(r_dev, e), key(g_dev, g_a), key(g_dev, g_b), key(bd, bt)]))
    if len(keys) > 1:  # unique without np.unique's hashing (several times slower than a sort here)
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    k_dev = keys // span
    k_t = keys % span + t_min
    nk = len(keys)
    # elementary interval j = [keys[j], keys[j+1]) when both are on the same device
    dt = np.zeros(nk, dtype=np.int64)
    if nk > 1:
        same = k_dev[1:] == k_dev[:-1]
        dt[:-1] = np.where(same, keys[1:] - keys[:-1], 0)
    k_bucket = np.floor_divide(k_t, bucket_us)
    seg_start = np.ones(nk, dtype=bool)
    seg_start[1:] = (k_dev[1:] != k_dev[:-1]) | (k_bucket[1:] != k_bucket[:-1])

    # power of each elementary interval
    seg_a_key = key(g_dev, g_a)
    seg_b_key = key(g_dev, g_b)
    idx = np.searchsorted(seg_a_key, keys, side="right") - 1
    idx_c = np.clip(idx, 0, None)
    if len(seg_a_key):
        metered = (idx >= 0) & (keys < seg_b_key[idx_c]) & (dt > 0)
        power = np.where(metered, g_p[idx_c], 0.0)
    else:
        metered = np.zeros(nk, dtype=bool)
        power = np.zeros(nk)

    # active requests and D(t)
    length_s = (e - s) / US_PER_S
    positive = e > s
    rate = np.zeros(len(s))
    rate[positive] = w[positive] / length_s[positive]
    pos_s = np.searchsorted(keys, key(r_dev, s))
    pos_e = np.searchsorted(keys, key(r_dev, e))
    weighted = positive & (rate > 0)
    cnt = np.cumsum(
        np.bincount(pos_s[positive], minlength=nk) - np.bincount(pos_e[positive], minlength=nk)
    )
    cnt_w = np.cumsum(
        np.bincount(pos_s[weighted], minlength=nk) - np.bincount(pos_e[weighted], minlength=nk)
    )
    d_rate = np.cumsum(
        np.bincount(pos_s, weights=rate, minlength=nk) - np.bincount(pos_e, weights=rate, minlength=nk)
    )
    busy_w = (cnt_w > 0) & (dt > 0)
    safe_d = np.where(busy_w, d_rate, 1.0)
    dt_s = dt / US_PER_S
    energy = power * dt_s
    x_energy = np.where(busy_w & metered, energy / safe_d, 0.0)
    x_share = np.where(busy_w, dt_s / safe_d, 0.0)
    unmetered_us = np.where(metered, 0, dt)

    g_energy = _exclusive_segmented_cumsum(x_energy, seg_start)
    g_share = _exclusive_segmented_cumsum(x_share, seg_start)
    g_unmet = np.cumsum(unmetered_us) - unmetered_us  # exact in int64

    # request pieces: one per (request row, bucket) it overlaps
    first_b = s // bucket_us
    last_b = np.where(positive, (e - 1) // bucket_us, first_b)
    npieces = last_b - first_b + 1
    row = np.repeat(np.arange(len(s)), npieces)
    b = np.repeat(first_b, npieces) + (np.arange(npieces.sum()) - np.repeat(np.cumsum(npieces) - npieces, npieces))
    ps = np.maximum(s[row], b * bucket_us)
    pe = np.minimum(e[row], (b + 1) * bucket_us)
    # a piece that starts (ends) where its request does reuses the request's position; only the bucket edges of
    # requests that cross a bucket boundary are searched
    p_lo = pos_s[row]
    p_hi = pos_e[row]
    inner_lo = ps != s[row]
    inner_hi = pe != e[row]
    if inner_lo.any():
        p_lo[inner_lo] = np.searchsorted(keys, key(r_dev[row][inner_lo], ps[inner_lo]))
    if inner_hi.any():
        p_hi[inner_hi] = np.searchsorted(keys, key(r_dev[row][inner_hi], pe[inner_hi]))
    has_len = p_hi > p_lo
    last_in = np.where(has_len, p_hi - 1, p_lo)  # last elementary interval inside the piece

    def piece(g, x):
        return np.where(has_len, (g[last_in] + x[last_in]) - g[p_lo], 0)

    piece_energy = rate[row] * piece(g_energy, x_energy)
    piece_share = rate[row] * piece(g_share, x_share)
    piece_unmet = np.where(has_len, (g_unmet[last_in] + unmetered_us[last_in]) - g_unmet[p_lo], 0) / US_PER_S

    # per (device, bucket) totals
    seg_id = np.cumsum(seg_start) - 1
    nseg = int(seg_id[-1]) + 1 if nk else 0
    first = np.flatnonzero(seg_start)

    def seg_sum(v):
        return np.bincount(seg_id, weights=v, minlength=nseg)

    busy = (cnt > 0) & (dt > 0)
    return {
        "row": row, "bucket": b, "energy_j": piece_energy, "device_share_s": piece_share,
        "unmetered_s": piece_unmet,
        "seg_dev": k_dev[first], "seg_bucket": k_bucket[first],
        "span_s": seg_sum(dt_s),
        "metered_s": seg_sum(np.where(metered, dt_s, 0.0)),
        "busy_s": seg_sum(np.where(busy, dt_s, 0.0)),
        "seg_unmetered_s": seg_sum(unmetered_us / US_PER_S),
        "metered_energy_j": seg_sum(energy),
        "busy_energy_j": seg_sum(np.where(busy_w, energy, 0.0)),
        "idle_energy_j": seg_sum(np.where(busy_w, 0.0, energy)),
        "dropped": dropped, "counter_used": counter_used, "counter_resets": counter_resets,
    }


def default_engine() -> str:
    try:
        import numba  # noqa: F401
    except ImportError:
        return "numpy"
    return "compiled"


def _chunks(r_dev: np.ndarray, t_dev: np.ndarray, ndev: int, max_events: int) -> list[tuple[int, int]]:
    """Consecutive device ranges [lo, hi) of at most about max_events breakpoints each (a device is never split)."""
    events = 2 * np.bincount(r_dev, minlength=ndev) + 2 * np.bincount(t_dev, minlength=ndev)
    group = np.cumsum(events) // max(max_events, 1)
    edges = np.flatnonzero(np.diff(group)) + 1
    bounds = np.concatenate(([0], edges, [ndev]))
    return [(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]


def attribute_energy(
    requests: pa.Table,
    telemetry: pa.Table,
    *,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    bucket_s: int = 3600,
    prompt_token_weight: float = DEFAULT_PROMPT_TOKEN_WEIGHT,
    max_events_per_chunk: int | None = None,
    engine: str | None = None,
) -> AttributionResult:
    """Attribute measured device energy to requests; see the module docstring for the rule.

    requests: request_id, device_id, started_at, ended_at and weight (or completion_tokens and prompt_tokens,
    from which the default weight is computed). A request on several devices (a tensor-parallel replica) has one
    row per device under the same request_id.
    telemetry: device_id, ts, power_w and optionally power_window_s and energy_counter_j.
    Devices are swept in groups of about ``max_events_per_chunk`` breakpoints, so memory stays bounded (default:
    4M for the numpy engine, whose arrays grow with the events of a group, 32M for the compiled one).
    engine: "compiled" (one numba pass per group, the default when numba is installed) or "numpy" (vectorized
    passes); both implement the same rule and are tested against each other and the slow reference.
    """
    engine = engine or default_engine()
    if engine not in ("compiled", "numpy"):
        raise ValueError(f"engine must be 'compiled' or 'numpy', not {engine!r}")
    if max_events_per_chunk is None:
        max_events_per_chunk = 32_000_000 if engine == "compiled" else 4_000_000
    if bucket_s <= 0 or 86400 % bucket_s and bucket_s % 86400:
        raise ValueError("bucket_s must divide a day (or be a whole number of days)")
    bucket_us = int(bucket_s) * US_PER_S
    max_gap_us = int(round(max_gap_s * US_PER_S))

    rid = requests["request_id"]
    s = _ts_us(requests["started_at"])
    e = _ts_us(requests["ended_at"])
    if np.any(e < s):
        raise ValueError("requests with ended_at before started_at must be quarantined before attribution")
    if "weight" in requests.column_names:
        w = _float(requests["weight"], 0.0)
    elif "completion_tokens" in requests.column_names:
        prompt = requests["prompt_tokens"] if "prompt_tokens" in requests.column_names else pa.nulls(len(s))
        w = request_weights(_float(requests["completion_tokens"], 0.0), _float(prompt, 0.0), prompt_token_weight)
    else:
        w = np.ones(len(s))
    if np.any(~np.isfinite(w) | (w < 0)):
        raise ValueError("request weights must be finite and >= 0")

    devices, r_dev, t_dev = _device_codes(requests["device_id"], telemetry["device_id"])
    t_ts = _ts_us(telemetry["ts"])
    t_p = _float(telemetry["power_w"])
    if "power_window_s" in telemetry.column_names:
        t_w = np.round(_float(telemetry["power_window_s"], 0.0) * US_PER_S).astype(np.int64)
    else:
        t_w = np.zeros(len(t_ts), dtype=np.int64)
    counter = None
    if "energy_counter_j" in telemetry.column_names:
        counter = _float(telemetry["energy_counter_j"])
        if not np.isfinite(counter).any():
            counter = None
    ndev = len(devices)
    # rows usually come grouped by device already: then a group of devices is a slice (a view), not a gather
    r_sorted = bool(np.all(r_dev[1:] >= r_dev[:-1]))
    t_sorted = bool(np.all(t_dev[1:] >= t_dev[:-1]))
    r_order = None if r_sorted else np.argsort(r_dev, kind="stable")
    t_order = None if t_sorted else np.argsort(t_dev, kind="stable")
    r_first = np.searchsorted(r_dev if r_sorted else r_dev[r_order], np.arange(ndev + 1))
    t_first = np.searchsorted(t_dev if t_sorted else t_dev[t_order], np.arange(ndev + 1))
    parts = []
    # devices are independent: sweep them in groups so that memory stays bounded whatever the input size
    for lo, hi in _chunks(r_dev, t_dev, ndev, max_events_per_chunk):
        ri = slice(r_first[lo], r_first[hi]) if r_sorted else r_order[r_first[lo]:r_first[hi]]
        ti = slice(t_first[lo], t_first[hi]) if t_sorted else t_order[t_first[lo]:t_first[hi]]
        part = _sweep(r_dev[ri] - lo if lo else r_dev[ri], s[ri], e[ri], w[ri], t_dev[ti] - lo if lo else t_dev[ti],
                      t_ts[ti], t_p[ti], t_w[ti],
                      None if counter is None else counter[ti], hi - lo, bucket_us, max_gap_us, engine)
        part["row"] = part["row"] + r_first[lo] if r_sorted else r_order[r_first[lo]:r_first[hi]][part["row"]]
        part["seg_dev"] = part["seg_dev"] + lo
        parts.append(part)

    def cat(name, dtype=np.float64):
        if len(parts) == 1:
            return parts[0][name]
        return np.concatenate([p[name] for p in parts]) if parts else np.zeros(0, dtype=dtype)

    row = cat("row", np.int64)
    b = cat("bucket", np.int64)
    piece_energy, piece_share, piece_unmet = cat("energy_j"), cat("device_share_s"), cat("unmetered_s")
    length_s = (e - s) / US_PER_S

    rid_arr = pc.cast(rid, pa.string())
    rid_arr = rid_arr.combine_chunks() if isinstance(rid_arr, pa.ChunkedArray) else rid_arr
    # one piece per request row, in row order (one bucket, rows grouped by device): no gather needed
    identity = len(row) == len(s) and (len(row) == 0 or (row[0] == 0 and bool(np.all(row[1:] > row[:-1]))))
    per_request_bucket = pa.table(
        {
            "request_id": rid_arr if identity else pc.take(rid_arr, pa.array(row)),
            "device_id": pc.take(devices, pa.array(r_dev[row])),
            "bucket_start": pa.array(b * bucket_us, pa.int64()).cast(TS_TYPE),
            "energy_j": pa.array(piece_energy, pa.float64()),
            "device_share_s": pa.array(piece_share, pa.float64()),
            "unmetered_s": pa.array(piece_unmet, pa.float64()),
        }
    )

    def per_request() -> pa.Table:
        enc = pc.dictionary_encode(rid_arr)
        codes = enc.indices.to_numpy(zero_copy_only=False)
        nreq = len(enc.dictionary)
        return pa.table(
            {
                "request_id": enc.dictionary,
                "energy_j": np.bincount(codes[row], weights=piece_energy, minlength=nreq),
                "device_share_s": np.bincount(codes[row], weights=piece_share, minlength=nreq),
                "unmetered_s": np.bincount(codes[row], weights=piece_unmet, minlength=nreq),
                "device_s": np.bincount(codes, weights=length_s, minlength=nreq),
            }
        )
    per_device_bucket = pa.table(
        {
            "device_id": pc.take(devices, pa.array(cat("seg_dev", np.int64))),
            "bucket_start": pa.array(cat("seg_bucket", np.int64) * bucket_us, pa.int64()).cast(TS_TYPE),
            "span_s": cat("span_s"),
            "metered_s": cat("metered_s"),
            "busy_s": cat("busy_s"),
            "unmetered_s": cat("seg_unmetered_s"),
            "metered_energy_j": cat("metered_energy_j"),
            "busy_energy_j": cat("busy_energy_j"),
            "idle_energy_j": cat("idle_energy_j"),
        }
    )
    return AttributionResult(per_request_bucket, per_device_bucket,
                             sum(p["dropped"] for p in parts), sum(p["counter_used"] for p in parts),
                             sum(p["counter_resets"] for p in parts), per_request)
