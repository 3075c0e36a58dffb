"""Telemetry formats: nvidia-smi CSV, DCGM exporter scrapes and range queries, energy-counter CSV."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from pipelines.lib.contracts import load_contract
from pipelines.lib.device_power import power_draw_window_sql
from pipelines.lib.formats.common import ParseContext, _empty_mapped, _finish, _register, _sql_str

_NVSMI_FIELDS = {
    "timestamp": "ts",
    "uuid": "uuid",
    "index": "index",
    "pci.bus_id": "pci_bus_id",
    "power.draw": "power_draw",
    "power.draw.average": "power_draw_average",
    "power.draw.instant": "power_draw_instant",
    "utilization.gpu": "util_pct",
    "memory.used": "mem_used_mib",
}


class NvidiaSmiCsv:
    """``nvidia-smi --query-gpu=... --format=csv[,nounits]`` output, fields in any subset and order.

    Device id: uuid, else pci.bus_id, else <host>:<index>. Host: the file name up to its first ``_`` (or the
    ``host`` option). Power: power.draw.instant (an instantaneous reading, window 0) when present, else
    power.draw.average (a 1 s average), else power.draw, whose meaning depends on the device type in the inventory
    (pipelines/lib/device_power.py: a 1 s average on Ampere and newer except GA100, instantaneous on GA100 and
    Volta and older) unless the ``power_draw_window_s`` option says. A file with no uuid, pci.bus_id or index is one device named by its
    host. Timestamps are ``YYYY/MM/DD HH:MM:SS.fff`` in the ``timezone``
    option (default UTC). Values may carry units ("160.5 W"); "[N/A]" and "[Not Supported]" read as missing.
    """

    patterns = ("*.csv", "*.csv.gz")

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        if lines.num_rows == 0:
            return _finish(ctx, load_contract("telemetry"), _empty_mapped(load_contract("telemetry")))
        header = lines["raw_text"][0].as_py()
        names = [re.sub(r"\s*\[.*\]$", "", h.strip()) for h in header.split(",")]
        pos = {}
        for i, n in enumerate(names, start=1):
            if n in _NVSMI_FIELDS:
                pos[_NVSMI_FIELDS[n]] = i
        if "ts" not in pos or not ({"power_draw", "power_draw_average", "power_draw_instant"} & set(pos)):
            raise ValueError(f"{path}: not an nvidia-smi CSV with timestamp and power.draw (header: {header!r})")
        tz = ctx.options.get("timezone", "UTC")
        window = ctx.options.get("power_draw_window_s")
        host = ctx.options.get("host") or path.name.split("_")[0].removesuffix(".csv").removesuffix(".gz")
        src = _register(ctx, lines.slice(1))

        def val(key):
            if key not in pos:
                return "NULL::VARCHAR"
            return (f"nullif(nullif(regexp_replace(trim(parts[{pos[key]}]), '\\s*(W|%|MiB|MHz|J)$', ''), '[N/A]'),"
                    f" '[Not Supported]')")

        if "power_draw_instant" in pos:
            power_key, window_sql = "power_draw_instant", "0.0"
        elif "power_draw_average" in pos:
            power_key, window_sql = "power_draw_average", "1.0"
        else:  # power.draw: its meaning depends on the device type (pipelines/lib/device_power.py)
            power_key = "power_draw"
            window_sql = (str(float(window)) if window is not None else
                          f"coalesce(power_draw_window_s, {power_draw_window_sql('device_type')})")
        if "uuid" in pos:
            device = val("uuid")
        elif "pci_bus_id" in pos:
            device = val("pci_bus_id")
        elif "index" in pos:
            device = f"{_sql_str(host)} || ':' || {val('index')}"
        else:  # a file of one device: the host names it
            device = _sql_str(host)
        ts_fmt = "['%Y/%m/%d %H:%M:%S.%f', '%Y/%m/%d %H:%M:%S', '%Y-%m-%d %H:%M:%S.%f', '%Y-%m-%d %H:%M:%S']"
        mapped = f"""
            WITH s0 AS (SELECT *, string_split(raw_text, ',') AS parts FROM {src}),
            s AS (SELECT s0.*, inv.device_type, inv.power_draw_window_s FROM s0
                  LEFT JOIN raw_inventory inv ON inv.device_id = {device.replace("parts[", "s0.parts[")})
            SELECT source_file, source_line, raw_text,
                CASE WHEN trim(raw_text) = {_sql_str(header.strip())} THEN 'repeated header line'
                     WHEN len(parts) <> {len(names)} THEN 'expected {len(names)} fields, got ' || len(parts)
                END AS pre_reason,
                {device} AS device_id__raw, {device} AS device_id,
                {val('ts')} AS ts__raw,
                timezone({_sql_str(tz)}, try_strptime({val('ts')}, {ts_fmt})) AS ts,
                {val(power_key)} AS power_w__raw, TRY_CAST({val(power_key)} AS DOUBLE) AS power_w,
                {window_sql}::VARCHAR AS power_window_s__raw, ({window_sql})::DOUBLE AS power_window_s,
                NULL AS energy_counter_j__raw, NULL::DOUBLE AS energy_counter_j,
                {val('util_pct')} AS util_pct__raw, TRY_CAST({val('util_pct')} AS DOUBLE) AS util_pct,
                {val('mem_used_mib')} AS mem_used_mib__raw,
                TRY_CAST({val('mem_used_mib')} AS DOUBLE) AS mem_used_mib,
                {_sql_str(host)} AS host__raw, {_sql_str(host)} AS host
            FROM s
        """
        return _finish(ctx, load_contract("telemetry"), mapped)


