"""The requests of one attribution day, held by DuckDB while the day's device groups are attributed (day.py).

``_day_requests`` has one row per request and device it ran on (a tensor-parallel replica's every device, through
the deployments table, or the request's own device_id), its times moved onto the telemetry clock. It is the
attribution's largest piece of DuckDB memory (15.9M rows on a 1,000-accelerator day), so it holds numbers where it
can: the device and the host as numbers into two small temporary tables (``_day_devices``, ``_day_hosts``, the
latter with each host's clock offset), and the raw row a request came from instead of the columns only the
requests without a device need (they are looked up again for those rows alone). A 40-character device id, a host
name, a replica id and a logged device id per row made it about 3.3 GB there.

Pure DuckDB; imports no Dagster.
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb

# the request logs' partitions that may hold a request overlapping the day starting at $lo
_PARTITIONS = "partition_date BETWEEN $lo::DATE - 2 AND $lo::DATE"


def _load_keys(con: duckdb.DuckDBPyConnection, lo: datetime) -> None:
    """_day_devices: every device a request of the partitions may map to, numbered; _day_hosts: every host they
    log, numbered, with its clock offset (fleet/clock_offsets.csv)."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _day_devices AS
        SELECT device_id, (row_number() OVER (ORDER BY device_id))::INTEGER AS day_device
        FROM (SELECT device_id FROM raw_deployments WHERE device_id IS NOT NULL
              UNION SELECT device_id FROM raw_requests WHERE {_PARTITIONS} AND device_id IS NOT NULL)
        """,
        {"lo": lo},
    ).fetchall()
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _day_hosts AS
        SELECT h.host, (row_number() OVER (ORDER BY h.host))::INTEGER AS day_host,
               coalesce(o.offset_s, 0) AS applied_offset_s
        FROM (SELECT DISTINCT host FROM raw_requests WHERE {_PARTITIONS} AND host IS NOT NULL) h
        LEFT JOIN raw_clock_offsets o USING (host)
        """,
        {"lo": lo},
    ).fetchall()


def load_day_requests(con: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime) -> None:
    """_day_requests: the requests overlapping the day [lo, hi), one row per device they ran on (day_device NULL:
    none found), clocks corrected; requests served from cache (status cache_hit) are left out: fct_request_cost
    gives them 0 J."""
    _load_keys(con, lo)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _day_requests AS
        WITH shifted AS (
            -- request-log clocks moved onto the telemetry clock
            SELECT r.rowid AS raw_rowid, r.request_id, r.replica_id, r.device_id, r.prompt_tokens,
                   r.completion_tokens, h.day_host,
                   r.started_at + to_microseconds(CAST(round(coalesce(h.applied_offset_s, 0) * 1e6) AS BIGINT))
                       AS started_at,
                   r.ended_at + to_microseconds(CAST(round(coalesce(h.applied_offset_s, 0) * 1e6) AS BIGINT))
                       AS ended_at,
                   r.first_token_at + to_microseconds(CAST(round(coalesce(h.applied_offset_s, 0) * 1e6) AS BIGINT))
                       AS first_token_at
            FROM raw_requests r LEFT JOIN _day_hosts h ON r.host = h.host
            WHERE r.{_PARTITIONS}
              -- answered from a gateway cache (LiteLLM cache_hit): no GPU served it, so it takes no device energy
              AND r.status IS DISTINCT FROM 'cache_hit'
        )
        SELECT r.raw_rowid, r.request_id, r.started_at, r.first_token_at, r.ended_at, r.prompt_tokens,
               r.completion_tokens, r.day_host, dd.day_device
        FROM shifted r
        LEFT JOIN raw_deployments d
          ON r.replica_id = d.replica_id AND r.started_at >= d.valid_from
         AND (d.valid_to IS NULL OR r.started_at < d.valid_to)
        -- a request that logs the instance it ran on (a MIG- UUID) as its device
        LEFT JOIN raw_deployments part
          ON d.device_id IS NULL AND r.device_id = part.instance_id AND r.started_at >= part.valid_from
         AND (part.valid_to IS NULL OR r.started_at < part.valid_to)
        -- a partitioned GPU (MIG, MPS, time slices): telemetry is per GPU, so its requests run on the GPU
        LEFT JOIN _day_devices dd ON dd.device_id = coalesce(d.device_id, part.device_id, r.device_id)
        WHERE r.started_at < $hi AND (r.ended_at > $lo OR r.started_at >= $lo)
        """,
        {"lo": lo, "hi": hi},
    ).fetchall()


def record_unattributed(con: duckdb.DuckDBPyConnection, day: date, lo: datetime) -> None:
    """The day's requests that cannot be placed on a device, with the reason (their replica and logged device read
    back from their raw rows)."""
    con.execute("DELETE FROM unattributed_requests WHERE partition_date = ?", [day]).fetchall()
    con.execute(
        f"""
        INSERT INTO unattributed_requests
        SELECT $day, r.request_id, r.replica_id, r.device_id,
               CASE WHEN r.replica_id IS NOT NULL THEN 'replica has no deployment at started_at'
                    ELSE 'no device' END
        FROM raw_requests r
        JOIN _day_requests u ON r.rowid = u.raw_rowid AND u.day_device IS NULL AND u.started_at >= $lo
        WHERE r.{_PARTITIONS}
        """,
        {"day": day, "lo": lo},
    ).fetchall()


# the device_id of every device the day's requests ran on (day._device_groups)
DAY_REQUEST_DEVICES = "SELECT device_id FROM _day_devices WHERE day_device IN (SELECT day_device FROM _day_requests)"
