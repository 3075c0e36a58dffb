"""Run the attribution kernel for one UTC day of the warehouse and store its results.

Requests are mapped to devices through the deployments table (every device of a tensor-parallel replica), or by
their own device_id. The kernel sees every request that overlaps the day (including those that started the day
before; not those served from a gateway cache, which no GPU ran) and the telemetry around it; only pieces and
device buckets inside the day are kept, so a request that runs over midnight is split between two partitions and
nothing is counted twice.

Pure DuckDB, Arrow and numpy; imports no Dagster.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import duckdb

from pipelines.attribution.day_requests import DAY_REQUEST_DEVICES, load_day_requests, record_unattributed
from pipelines.attribution.day_scratch import SCRATCH, day_scratch, replace_day
from pipelines.attribution.group_inputs import KERNEL_COLUMNS, group_inputs, group_skew
from pipelines.attribution.kernel import warm_up
from pipelines.attribution.memory import release_freed_memory
from pipelines.attribution.phases import attribute_energy_by_phase
from pipelines.settings import DEFAULT_ENERGY_PLACEMENT, DEFAULT_MAX_GAP_S, DEFAULT_PROMPT_TOKEN_WEIGHT
from pipelines.warehouse.connection import ensure_raw_tables, scalar
from pipelines.warehouse.tables import create_tables


@dataclass
class DayAttribution:
    day: date
    requests: int
    request_device_rows: int
    telemetry_rows: int
    unattributed: int
    metered_energy_j: float
    attributed_energy_j: float
    idle_energy_j: float
    dropped_samples: int
    skewed_hosts: list
    counter_intervals: int = 0
    counter_resets: int = 0

    def summary(self) -> str:
        return (
            f"attribution {self.day}: {self.requests:,} requests on {self.request_device_rows:,} request-devices,"
            f" {self.telemetry_rows:,} samples; metered {self.metered_energy_j / 3.6e6:,.2f} kWh = attributed "
            f"{self.attributed_energy_j / 3.6e6:,.2f} + idle {self.idle_energy_j / 3.6e6:,.2f}; "
            f"{self.unattributed:,} requests without a device; {self.dropped_samples:,} samples without a "
            f"usable power; {self.counter_intervals:,} intervals from energy counters, "
            f"{self.counter_resets:,} counter resets or wraps (power readings used there)"
            + (
                f"; likely clock skew on {', '.join(self.skewed_hosts)} (see clock_skew_checks)"
                if self.skewed_hosts
                else ""
            )
        )


def bucket_seconds(con: duckdb.DuckDBPyConnection) -> int:
    """The shortest price interval of any region, so that every bucket falls inside one price interval."""
    minutes = scalar(con, "SELECT min(interval_minutes) FROM raw_regions")
    return int(minutes or 60) * 60


# the telemetry samples one group of devices may bring into memory at once (about 0.15 GB of Arrow, and several
# times that in the kernel's arrays); on the 1,000-accelerator day 4M measured faster than 8M, and lighter
GROUP_SAMPLES = 4_000_000


@dataclass(frozen=True)
class DeviceGroup:
    """Devices attributed together (whole hosts), and where their telemetry of the day lies in raw_telemetry."""

    devices: list[str]
    day_rowids: tuple[int, int]
    """the least and greatest rowid of the devices' samples of the day's own partition ((0, -1): none). A
    day's files load host by host, so a group's samples are a narrow band of the table: its query reads that band
    and, from the neighbouring days, only the row groups whose timestamps reach into the window."""


def _device_groups(con: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime, day: date) -> list[DeviceGroup]:
    """Every device with requests or telemetry in the window, in groups of whole hosts of at most about
    GROUP_SAMPLES telemetry samples, hosts in the order their samples of the day were loaded."""
    rows = con.execute(
        f"""
        WITH samples AS (
            SELECT device_id, count(*) AS n,
                   min(rowid) FILTER (WHERE partition_date = $d) AS first_rowid,
                   max(rowid) FILTER (WHERE partition_date = $d) AS last_rowid
            FROM raw_telemetry
            WHERE ts >= $lo AND ts <= $hi AND partition_date BETWEEN $d - 1 AND $d + 1 GROUP BY device_id
        ),
        devices AS (
            SELECT device_id FROM samples UNION {DAY_REQUEST_DEVICES}
        )
        SELECT d.device_id, coalesce(i.host, d.device_id) AS host, coalesce(s.n, 0) AS n, s.first_rowid,
               s.last_rowid
        FROM devices d LEFT JOIN samples s USING (device_id) LEFT JOIN raw_inventory i USING (device_id)
        -- hosts in the order their samples were loaded, so that a group's band of rowids holds little else
        ORDER BY min(s.first_rowid) OVER (PARTITION BY coalesce(i.host, d.device_id)) NULLS LAST, host, d.device_id
        """,
        {"lo": lo, "hi": hi, "d": day},
    ).fetchall()
    groups, current, size, last_host = [], [], 0, None
    for row in rows:
        _, host, n = row[:3]
        if current and host != last_host and size + n > GROUP_SAMPLES:
            groups.append(current)
            current, size = [], 0
        current.append(row)
        size += n
        last_host = host
    if current:
        groups.append(current)
    return [_group(rows) for rows in groups]


def _group(rows: list[tuple]) -> DeviceGroup:
    firsts = [r[3] for r in rows if r[3] is not None]
    lasts = [r[4] for r in rows if r[4] is not None]
    return DeviceGroup([r[0] for r in rows], (min(firsts), max(lasts)) if firsts else (0, -1))


@dataclass(frozen=True)
class _Window:
    """The day [lo, hi) and the telemetry around it (margin: max_gap plus a minute on either side)."""

    day: date
    lo: datetime
    hi: datetime
    margin: timedelta


def _store_group(
    con: duckdb.DuckDBPyConnection, w: _Window, result, totals: dict, n_requests: int, n_samples: int
) -> None:
    """Insert the group's pieces and device buckets inside the day into the day's scratch tables (day_scratch.py,
    committed); add them to the day's totals. DuckDB keeps the pieces inside the day as it reads them (no filtered
    copy of the table in Arrow)."""
    in_day = "bucket_start >= $lo AND bucket_start < $hi"  # the one statement of "inside the day"
    bounds = {"lo": w.lo, "hi": w.hi}
    params = {"d": w.day} | bounds
    con.register("_pieces", result.per_request_bucket)
    con.register("_buckets", result.per_device_bucket)
    con.execute(
        f"INSERT INTO {SCRATCH}.request_energy_pieces BY NAME SELECT $d AS partition_date, * FROM _pieces "
        f"WHERE {in_day}",
        params,
    )
    con.execute(f"INSERT INTO {SCRATCH}.device_energy_buckets SELECT $d, * FROM _buckets WHERE {in_day}", params)
    metered, idle = con.execute(
        f"SELECT sum(metered_energy_j), sum(idle_energy_j) FROM _buckets WHERE {in_day}", bounds
    ).fetchall()[0]
    (attributed,) = con.execute(f"SELECT sum(energy_j) FROM _pieces WHERE {in_day}", bounds).fetchall()[0]
    con.unregister("_pieces")
    con.unregister("_buckets")
    totals["request_device_rows"] += n_requests
    totals["telemetry_rows"] += n_samples
    totals["metered"] += float(metered or 0.0)
    totals["attributed"] += float(attributed or 0.0)
    totals["idle"] += float(idle or 0.0)
    totals["dropped"] += result.dropped_samples
    totals["counter_intervals"] += result.counter_intervals
    totals["counter_resets"] += result.counter_resets


def _attribute_groups(
    con: duckdb.DuckDBPyConnection, w: _Window, groups: list[DeviceGroup], *, max_gap_s: float, progress, **options
) -> tuple[dict, list[dict]]:
    """Attribute and store each device group in turn (whole hosts, so that a fleet-day's telemetry never sits in
    memory at once), the inventory's idle_w beside each device. Returns the day's totals and the clock-skew rows.
    ``options``: the kernel's prompt_token_weight and placement."""
    totals = {
        "request_device_rows": 0,
        "telemetry_rows": 0,
        "metered": 0.0,
        "attributed": 0.0,
        "idle": 0.0,
        "dropped": 0,
        "counter_intervals": 0,
        "counter_resets": 0,
    }
    skew: list[dict] = []
    bucket_s = bucket_seconds(con)
    idle_w = con.sql("SELECT device_id, idle_w FROM raw_inventory WHERE idle_w IS NOT NULL").to_arrow_table()
    # a group's clock-skew check (numpy, one core) runs beside the next group's query and kernel, on the core
    # they leave idle; one check waits at most, so at most two groups' inputs are held at once
    with ThreadPoolExecutor(1, thread_name_prefix="clock-skew") as skew_pool:
        checking = None
        for i, group in enumerate(groups, start=1):
            requests, telemetry = group_inputs(con, group.devices, w, group.day_rowids)
            # prefill and decode share power as two phases where first_token_at is logged (phases.py)
            result = attribute_energy_by_phase(
                requests.select(KERNEL_COLUMNS),
                telemetry,
                max_gap_s=max_gap_s,
                bucket_s=bucket_s,
                idle_w=idle_w,
                **options,
            )
            _store_group(con, w, result, totals, requests.num_rows, telemetry.num_rows)
            del result  # stored: its memory is free again
            if checking is not None:
                skew += checking.result()
            checking = skew_pool.submit(group_skew, requests, telemetry, max_gap_s)
            if progress:
                progress(i, len(groups), totals)
            del requests, telemetry
            release_freed_memory()
        if checking is not None:
            skew += checking.result()
    return totals, skew


_SKEW_COLUMNS = ("host", "best_lag_s", "suggested_offset_s", "corr_at_best", "corr_at_zero", "likely_skew")


def _store_skew(con: duckdb.DuckDBPyConnection, day: date, skew: list[dict]) -> None:
    if skew:
        con.executemany(
            "INSERT INTO clock_skew_checks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [[day, *(r[c] for c in _SKEW_COLUMNS), r["applied_offset_s"]] for r in skew],
        )


def attribute_day(
    con: duckdb.DuckDBPyConnection,
    day: date,
    *,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    prompt_token_weight: float = DEFAULT_PROMPT_TOKEN_WEIGHT,
    placement: str = DEFAULT_ENERGY_PLACEMENT,
    progress=None,
) -> DayAttribution:
    """Attribute one UTC day; ``progress(groups_done, groups_total, totals)`` is called after each device group."""
    warm_up()  # load the compiled kernel in the background while the day's inputs are queried
    ensure_raw_tables(con)
    create_tables(con, "request_energy_pieces", "device_energy_buckets", "unattributed_requests", "clock_skew_checks")
    lo = datetime.combine(day, time(), tzinfo=UTC)
    w = _Window(day, lo, lo + timedelta(days=1), timedelta(seconds=max_gap_s + 60))
    load_day_requests(con, w.lo, w.hi)
    record_unattributed(con, day, w.lo)
    groups = _device_groups(con, w.lo - w.margin, w.hi + w.margin, day)
    options = {"prompt_token_weight": prompt_token_weight, "placement": placement}
    with day_scratch(con, day):
        totals, skew = _attribute_groups(con, w, groups, max_gap_s=max_gap_s, progress=progress, **options)
        con.execute("BEGIN TRANSACTION")  # the day's old results replaced at once
        try:
            replace_day(con, day)
            con.execute("DELETE FROM clock_skew_checks WHERE partition_date = ?", [day])
            _store_skew(con, day, skew)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    n_unattributed = scalar(con, "SELECT count(*) FROM unattributed_requests WHERE partition_date = ?", [day])
    n_requests = scalar(con, "SELECT count(DISTINCT raw_rowid) FROM _day_requests")  # a raw row is a request
    return DayAttribution(
        day=day,
        requests=n_requests,
        request_device_rows=totals["request_device_rows"],
        telemetry_rows=totals["telemetry_rows"],
        unattributed=n_unattributed,
        metered_energy_j=totals["metered"],
        attributed_energy_j=totals["attributed"],
        idle_energy_j=totals["idle"],
        dropped_samples=totals["dropped"],
        counter_intervals=totals["counter_intervals"],
        counter_resets=totals["counter_resets"],
        skewed_hosts=[r["host"] for r in skew if r["likely_skew"]],
    )
