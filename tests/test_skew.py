"""Clock skew between request logs and telemetry: detected per host, corrected by fleet/clock_offsets.csv."""

from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipelines.attribution.day import attribute_day
from pipelines.attribution.skew import detect_clock_skew
from pipelines.devtools.generate import generate
from pipelines.ingest.loader import ingest_feed, ingest_fleet_table
from pipelines.warehouse.connection import connect
from pipelines.warehouse.contracts import FLEET_TABLES

pytestmark = pytest.mark.slow  # a generated 8-device fleet-day, loaded and attributed by each test

DAY = date(2026, 11, 2)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("skew")
    generate(root / "landing", devices=8, days=1, seed=5, load=0.3, progress=lambda m: None)
    return root / "landing"


def load(landing, db):
    con = connect(db)
    for name in FLEET_TABLES:
        ingest_fleet_table(con, name, landing)
    for feed in ("requests", "telemetry", "prices"):
        ingest_feed(con, feed, landing, DAY)
    return con


def test_a_planted_skew_is_found_and_sized(fleet, tmp_path):
    con = load(fleet, tmp_path / "w.duckdb")
    req = con.sql(
        "SELECT r.host, d.device_id, r.started_at, r.ended_at FROM raw_requests r "
        "JOIN raw_deployments d USING (replica_id)"
    ).to_arrow_table()
    tel = con.sql("SELECT device_id, ts, power_w, power_window_s FROM raw_telemetry").to_arrow_table()
    clean = detect_clock_skew(req, tel)
    assert clean and not any(r["likely_skew"] for r in clean)
    ahead = pa.scalar(timedelta(seconds=3))
    skewed = req.set_column(2, "started_at", pc.add(req["started_at"], ahead)).set_column(
        3, "ended_at", pc.add(req["ended_at"], ahead)
    )
    found = detect_clock_skew(skewed, tel)
    assert all(r["likely_skew"] for r in found)
    assert all(r["best_lag_s"] == pytest.approx(3.0, abs=0.5) for r in found)
    assert all(r["suggested_offset_s"] == pytest.approx(-3.0, abs=0.5) for r in found)
    # the numpy passes give the same numbers as the compiled ones, to the bit
    assert detect_clock_skew(req, tel, engine="numpy") == clean
    assert detect_clock_skew(skewed, tel, engine="numpy") == found


def test_clock_offsets_are_applied_before_attribution(fleet, tmp_path):
    host = "us-west-h100-large-000"
    (fleet / "fleet" / "clock_offsets.csv").write_text(f"host,offset_s\n{host},4.0\n")
    try:
        con = load(fleet, tmp_path / "w.duckdb")
        result = attribute_day(con, DAY)
    finally:
        (fleet / "fleet" / "clock_offsets.csv").unlink()
    row = con.execute(
        "SELECT applied_offset_s, best_lag_s, likely_skew FROM clock_skew_checks WHERE host = ?", [host]
    ).fetchall()[0]
    # the (wrong) correction moves requests 4 s late against the power: the check sees it
    assert row[0] == 4.0 and row[1] == pytest.approx(4.0, abs=0.5) and row[2]
    assert host in result.skewed_hosts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_grids_equal_a_search_and_a_fill(seed):
    """The check's two series on its grid (points t0 + (i + 1/2) step), counted and summed without a search, equal
    the direct answers: active = starts at or before a point minus ends at or before it (searchsorted), power = the
    sum over devices of the segment holding the point (each device's segments disjoint, some between two points,
    some beyond the grid)."""
    import numpy as np

    from pipelines.attribution.skew import _held_on_grid

    rng = np.random.default_rng(seed)
    t0, n, step = 1_700_000_000_000_000, 2_000, 250_000
    grid = t0 + (np.arange(n) + 0.5) * step
    starts = t0 + rng.integers(-10 * step, (n + 10) * step, 5_000)
    ends = starts + rng.integers(0, 40 * step, len(starts))
    want = np.searchsorted(np.sort(starts), grid, "right") - np.searchsorted(np.sort(ends), grid, "right")
    assert np.array_equal(_held_on_grid(starts, ends, t0, n, step), want)
    a, b, p = [], [], []
    for _device in range(4):  # each device: sorted, disjoint segments, of every length from 1 us
        cuts = np.sort(rng.choice(np.arange(t0 - 5 * step, t0 + (n + 5) * step), 600, replace=False))
        a.append(cuts[0::2])
        b.append(cuts[1::2])
        p.append(rng.uniform(50, 700, len(cuts) // 2))
    a, b, p = np.concatenate(a), np.concatenate(b), np.concatenate(p)
    direct = np.array([p[(a <= g) & (g < b)].sum() for g in grid])
    got = _held_on_grid(a, b, t0, n, step, weights=p)
    assert np.allclose(got, direct, rtol=0, atol=1e-9)
    assert np.count_nonzero(direct == 0) > 0 and np.count_nonzero(direct) > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_compiled_grids_equal_the_numpy_ones_to_the_bit(seed):
    """compiled_skew's passes against skew.py's numpy passes: a host's power over the segments of some of its
    devices (overlapping across devices, some between two grid points, some beyond the grid, in device order), its
    active requests (a subset of the rows, in any order), and each device's sample count, first and last time."""
    import numpy as np

    from pipelines.attribution import compiled_skew
    from pipelines.attribution.skew import _held_on_grid

    rng = np.random.default_rng(seed)
    t0, n, step = 1_700_000_000_000_000, 3_000, 250_000
    firsts, a, b = [0], [], []
    for _device in range(6):
        cuts = np.sort(rng.choice(np.arange(t0 - 5 * step, t0 + (n + 5) * step), 800, replace=False))
        a.append(cuts[0::2])
        b.append(cuts[1::2])
        firsts.append(firsts[-1] + len(cuts) // 2)
    a, b, seg_first = np.concatenate(a), np.concatenate(b), np.array(firsts)
    p = rng.uniform(50, 700, len(a)) * rng.choice([1.0, 1e-7, 1e7], len(a))  # sums that round
    devices = np.array([0, 2, 3, 5])
    at = np.concatenate([np.arange(seg_first[d], seg_first[d + 1]) for d in devices])
    want = _held_on_grid(a[at], b[at], t0, n, step, weights=p[at])
    got = compiled_skew.power_on_grid(seg_first, devices, a, b, p, t0, n, step)
    assert got.tobytes() == want.tobytes()

    starts = t0 + rng.integers(-10 * step, (n + 10) * step, 5_000)
    ends = starts + rng.integers(0, 40 * step, len(starts))
    rows = rng.permutation(len(starts))[:3_000]
    want = _held_on_grid(starts[rows], ends[rows], t0, n, step).astype(float)
    assert compiled_skew.active_on_grid(rows, starts, ends, t0, n, step).tobytes() == want.tobytes()

    codes = rng.integers(0, 9, 10_000)  # codes 0 to 8: code 9 has no sample
    ts = t0 + rng.integers(-(10**9), 10**9, len(codes))
    count, first, last = compiled_skew.device_extents(codes, ts, 10)
    assert np.array_equal(count, np.bincount(codes, minlength=10))
    for c in range(10):
        mine = ts[codes == c]
        assert (first[c], last[c]) == ((mine.min(), mine.max()) if len(mine) else (2**63 - 1, -(2**63)))
