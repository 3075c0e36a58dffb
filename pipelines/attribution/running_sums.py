"""Running sums that restart per segment without losing digits to a long global sum. Pure numpy."""

from __future__ import annotations

import numpy as np


def exclusive_segmented_cumsum(x: np.ndarray, seg_start: np.ndarray) -> np.ndarray:
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
