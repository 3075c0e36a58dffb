"""One device group's inputs for day.py: its requests and telemetry read from DuckDB, and its clock-skew check.

Pure DuckDB, Arrow and numpy; imports no Dagster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.attribution.skew import detect_clock_skew

if TYPE_CHECKING:
    from pipelines.attribution.day import _Window


def _device_ids(table: pa.Table, devices: pa.Array) -> pa.Table:
    """The table with its device_code column (a number into ``devices``) as a dictionary-encoded device_id, in
    first place: no 40-character id per row crosses from DuckDB, and the kernel takes the codes as they are."""
    chunks = [pa.DictionaryArray.from_arrays(c.cast(pa.int32()), devices) for c in table["device_code"].chunks]
    device_id = pa.chunked_array(chunks, type=pa.dictionary(pa.int32(), pa.string()))
    return table.drop_columns(["device_code"]).add_column(0, "device_id", device_id)


def group_inputs(
    con: duckdb.DuckDBPyConnection, devices: list[str], w: _Window, day_rowids: tuple[int, int] | None = None
) -> tuple[pa.Table, pa.Table]:
    """The requests (with their host and applied clock offset) and telemetry of one device group, each in
    (device_id, time) order, device_id dictionary-encoded. The group's devices are numbered in device_id order and
    both queries sort by that number: sorting by an integer rather than the 40-character id halves the time of the
    telemetry query. ``day_rowids``: the rowids between which all the group's samples of the day's own partition
    lie (day.DeviceGroup), so that DuckDB reads that band of raw_telemetry instead of the whole day (None: all)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _group_devices AS SELECT device_id, dd.day_device, "
        "(row_number() OVER (ORDER BY device_id) - 1)::INTEGER AS device_code "
        "FROM (SELECT unnest(?::VARCHAR[]) AS device_id) LEFT JOIN _day_devices dd USING (device_id)",
        [devices],
    )
    ids = con.sql("SELECT device_id FROM _group_devices ORDER BY device_code").to_arrow_table()["device_id"]
    ids = ids.combine_chunks().cast(pa.string())
    # _day_requests holds numbers for devices and hosts (day_requests.py): the host and its offset joined back
    requests = con.sql(
        "SELECT g.device_code, r.request_id, r.started_at, r.first_token_at, r.ended_at, r.completion_tokens, "
        "r.prompt_tokens, h.host, coalesce(h.applied_offset_s, 0) AS applied_offset_s "
        "FROM _day_requests r JOIN _group_devices g ON r.day_device = g.day_device "
        "LEFT JOIN _day_hosts h ON r.day_host = h.day_host "
        "ORDER BY g.device_code, r.started_at"
    ).to_arrow_table()
    samples = (
        "SELECT g.device_code, t.ts, t.power_w, t.power_window_s, t.energy_counter_j "
        "FROM raw_telemetry t JOIN _group_devices g ON t.device_id = g.device_id "
        "WHERE t.ts >= $lo AND t.ts <= $hi AND "
    )
    # the day's own partition within its band of rowids (all of it when the band is unknown), then the margins
    # from the neighbouring days, whose row groups DuckDB skips by their timestamps
    telemetry = con.sql(
        f"{samples} t.partition_date = $d AND t.rowid BETWEEN $first AND $last "
        f"UNION ALL {samples} t.partition_date IN ($d - 1, $d + 1) "
        "ORDER BY device_code, ts",
        params={
            "lo": w.lo - w.margin,
            "hi": w.hi + w.margin,
            "d": w.day,
            "first": day_rowids[0] if day_rowids else 0,
            "last": day_rowids[1] if day_rowids else 2**62,
        },
    ).to_arrow_table()
    return _device_ids(requests, ids), _device_ids(telemetry, ids)


# the columns the kernel reads (phases.py); host and applied_offset_s are for the clock-skew check
KERNEL_COLUMNS = [
    "request_id",
    "device_id",
    "started_at",
    "first_token_at",
    "ended_at",
    "completion_tokens",
    "prompt_tokens",
]


def group_skew(requests: pa.Table, telemetry: pa.Table, max_gap_s: float) -> list[dict]:
    """The clock-skew check of the group's hosts, with the offset already applied to each (one per host: it comes
    from joining raw_clock_offsets on the host)."""
    skew_requests = requests.select(["host", "device_id", "started_at", "ended_at", "applied_offset_s"])
    skew_requests = skew_requests.filter(pc.is_valid(skew_requests["host"]))
    last = skew_requests.group_by("host", use_threads=False).aggregate([("applied_offset_s", "last")])
    offsets = dict(zip(last["host"].to_pylist(), last["applied_offset_s_last"].to_pylist(), strict=True))
    return [
        {**row, "applied_offset_s": offsets.get(row["host"], 0.0)}
        for row in detect_clock_skew(skew_requests, telemetry, max_gap_s=max_gap_s)
    ]
