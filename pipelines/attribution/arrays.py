"""Arrow columns as the numpy arrays the attribution works on: timestamps as int64 microseconds, numbers as float64.

Shared by the kernel, its engines and the clock-skew check. Pure numpy/pyarrow; imports no Dagster.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

US_PER_S = 1_000_000
TS_TYPE = pa.timestamp("us", tz="UTC")
MAX_WINDOW_S = 86400.0
"""the longest power_window_s a sample may average over (a longer one is a unit error, not a reading)"""


def ts_us(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A timestamp column as int64 microseconds since the UTC epoch (whatever its unit or zone)."""
    if col.null_count:
        raise ValueError("timestamps must not be null")
    if col.type != TS_TYPE:
        col = pc.cast(col, TS_TYPE)
    return pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def float_array(col, default: float | None = None) -> np.ndarray:
    """A numeric column as float64; nulls become ``default`` (NaN when there is none)."""
    col = pc.cast(col, pa.float64())
    if col.null_count:
        col = pc.fill_null(col, np.nan if default is None else default)
    return col.to_numpy(zero_copy_only=False)


def window_us(col, n: int) -> np.ndarray:
    """A power_window_s column (or None: no window column, every sample instantaneous) as int64 microseconds."""
    if col is None:
        return np.zeros(n, dtype=np.int64)
    seconds = float_array(col, 0.0)
    if not len(seconds):
        return np.zeros(0, dtype=np.int64)
    lo, hi = seconds.min(), seconds.max()
    if lo == hi and 0 <= lo <= MAX_WINDOW_S:
        # one window for every sample (nvidia-smi's power.draw: 1 s): filled, not rounded row by row (5x faster)
        return np.full(len(seconds), round(float(lo) * US_PER_S), dtype=np.int64)
    finite = seconds[~np.isnan(seconds)] if np.isnan(hi) else None
    top = hi if finite is None else (finite.max() if len(finite) else 0.0)  # all NaN: every sample instantaneous
    if top > MAX_WINDOW_S:  # inf included: it would wrap to a negative number of microseconds
        raise ValueError(f"power_window_s must be at most {MAX_WINDOW_S:.0f} s (a day); got {top} s")
    # NaN and negative windows: instantaneous samples, as 0
    return np.round(np.clip(np.nan_to_num(seconds, nan=0.0), 0.0, None) * US_PER_S).astype(np.int64)


def chunk_starts(arrays: list[np.ndarray]) -> np.ndarray:
    """Each chunk's first row in the column, then the column's length (int64): chunk c holds rows starts[c] to
    starts[c + 1] - 1."""
    return np.concatenate(([0], np.cumsum([len(a) for a in arrays], dtype=np.int64))).astype(np.int64)


def chunk_addresses(arrays: list[np.ndarray]) -> np.ndarray:
    """Each chunk's data address, for a compiled pass that reads the chunks in place (the arrays must stay alive
    and contiguous while it runs)."""
    return np.array([a.ctypes.data for a in arrays], dtype=np.int64)
