"""Writers of the generated fleet's files, in the formats a real fleet produces (see the package docstring)."""

from __future__ import annotations

import csv
import gzip
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.devtools.generate.fleet import DAY_S, MODELS, REGIONS, Region

GZIP_LEVEL = 1
"""The fastest level: on a 64-accelerator day level 6 (gzip's default) took 2.5x its CPU for files 20 % smaller, and
level 9 was half the generator's time; DuckDB decompresses all of them at the same speed."""


def fmt_ts(epoch_s: np.ndarray) -> pa.Array:
    """Epoch seconds as ISO-8601 UTC text with microseconds (``2026-11-02T00:00:01.250000Z``), as Arrow strings."""
    us = np.round(np.asarray(epoch_s) * 1e6).astype("int64").astype("datetime64[us]")
    return pc.binary_join_element_wise(pa.array(np.datetime_as_string(us, unit="us")), "Z", "")


def lines_bytes(lines: pa.Array) -> bytes:
    """The UTF-8 text of an Arrow string array's values, each ended by a newline."""
    ended = pc.binary_join_element_wise(lines, "\n", "")
    parts = []
    for chunk in ended.chunks if isinstance(ended, pa.ChunkedArray) else [ended]:
        if len(chunk):
            offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32)[chunk.offset : chunk.offset + len(chunk) + 1]
            lo, hi = int(offsets[0]), int(offsets[-1])
            parts.append(chunk.buffers()[2][lo:hi].to_pybytes())
    return b"".join(parts)


class GzWriter:
    """Writes gzip files on a background thread (zlib compresses without the GIL, beside the formatting of the
    next file); ``close`` waits for all and raises the first error. mtime=0 keeps the bytes the same per seed."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=2)
        self._pending: list[Future] = []

    def write(self, path: Path, data: bytes) -> None:
        while len(self._pending) >= 3:  # at most three files' text waiting in memory
            self._pending.pop(0).result()
        self._pending.append(
            self._pool.submit(lambda: Path(path).write_bytes(gzip.compress(data, GZIP_LEVEL, mtime=0)))
        )

    def close(self) -> None:
        try:
            for f in self._pending:
                f.result()
        finally:
            self._pool.shutdown()


def price_day(region: Region, day_start: float, rng: np.random.Generator) -> np.ndarray:
    hours = np.arange(24)
    local = (hours + region.utc_offset_h) % 24
    if region.region == "us-west":  # duck curve: solar trough mid-day, evening ramp
        p = 55 - 38 * np.exp(-0.5 * ((local - 12.5) / 2.2) ** 2) + 65 * np.exp(-0.5 * ((local - 19) / 1.6) ** 2)
    else:  # two peaks, cheap nights
        p = 70 + 45 * np.exp(-0.5 * ((local - 8) / 1.5) ** 2) + 75 * np.exp(-0.5 * ((local - 19) / 1.8) ** 2)
        p -= 25 * np.exp(-0.5 * ((local - 3) / 2.0) ** 2)
    p = p * rng.lognormal(0, 0.06, 24) + rng.normal(0, 2, 24)
    return np.round(p, 2)


def write_fleet_files(fleet: Path, inventory, replicas, t_start) -> None:
    def write(name, rows):
        with open(fleet / f"{name}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)

    write("inventory", inventory)
    valid_from = datetime.fromtimestamp(t_start - 30 * DAY_S, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    write(
        "deployments",
        [
            {"replica_id": r.replica_id, "device_id": d, "valid_from": valid_from, "valid_to": ""}
            for r in replicas
            for d in r.devices
        ],
    )
    write(
        "models",
        [
            {
                "model": m.model,
                "family": m.family,
                "params_b": m.params_b,
                "active_params_b": m.active_params_b,
                "is_moe": str(m.is_moe).lower(),
                "distilled_from": m.distilled_from or "",
                "baseline_precision": "bf16",
                "baseline_model": m.baseline_model,
            }
            for m in MODELS.values()
        ],
    )
    write(
        "regions",
        [
            {"region": r.region, "market": r.market, "price_timezone": r.price_timezone, "interval_minutes": 60}
            for r in REGIONS.values()
        ],
    )
    write("fx_rates", [{"currency": "USD", "usd_per_unit": 1.0}, {"currency": "EUR", "usd_per_unit": 1.08}])


def _hour_stamps(region: Region, day: date) -> list[datetime]:
    """The 24 UTC hours of a day as naive timestamps in the region's price_timezone (as its feeds publish them)."""
    utc0 = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if region.price_timezone == "UTC":
        return [(utc0 + timedelta(hours=h)).replace(tzinfo=None) for h in range(24)]
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(region.price_timezone)
    return [(utc0 + timedelta(hours=h)).astimezone(tz).replace(tzinfo=None) for h in range(24)]


def write_prices(path: Path, region: Region, day: date, prices: np.ndarray) -> None:
    """Hourly prices; naive timestamps in the region's price_timezone (UTC or local, as markets publish)."""
    lines = [f"Datetime,Price ({region.currency}/MWh)"]
    lines += [f"{s:%Y-%m-%d %H:%M:%S},{p:.2f}" for s, p in zip(_hour_stamps(region, day), prices)]
    path.write_text("\n".join(lines) + "\n")


def write_carbon(path: Path, region: Region, day: date, rng) -> None:
    """Hourly grid carbon intensity: solar lowers California's midday; Germany follows its coal and gas peaks."""
    hours = np.arange(24)
    local = (hours + region.utc_offset_h) % 24
    if region.region == "us-west":
        g = 290 - 120 * np.exp(-0.5 * ((local - 12.5) / 2.5) ** 2)
    else:
        g = 380 + 60 * np.exp(-0.5 * ((local - 8) / 2.0) ** 2) + 80 * np.exp(-0.5 * ((local - 19) / 2.0) ** 2)
    g = np.round(g * rng.lognormal(0, 0.04, 24), 1)
    lines = ["Datetime,Carbon Intensity (gCO2eq/kWh)"]
    lines += [f"{s:%Y-%m-%d %H:%M:%S},{v:.1f}" for s, v in zip(_hour_stamps(region, day), g)]
    path.write_text("\n".join(lines) + "\n")


def _fixed2(values: np.ndarray) -> pa.Array:
    """Non-negative values already rounded to 2 decimals, as ``f"{v:.2f}"`` writes them."""
    cents = np.round(np.asarray(values) * 100).astype(np.int64)
    frac = pc.utf8_lpad(pa.array(cents % 100).cast(pa.string()), width=2, padding="0")
    return pc.binary_join_element_wise(pa.array(cents // 100).cast(pa.string()), frac, ".")


def write_telemetry(
    folder: Path, host: str, devs: dict, t_start: float, days: int, rng, instantaneous: bool, gz: GzWriter
) -> int:
    """nvidia-smi CSV (nounits), one sample per device per second, sampled at the end of each second."""
    rows = 0
    header = b"timestamp, index, uuid, name, power.draw [W], utilization.gpu [%], memory.used [MiB]\n"
    order = sorted(devs)
    n_dev = len(order)
    for d in range(days):
        lo, hi = d * DAY_S, (d + 1) * DAY_S
        # a 1 s average (power.draw on Hopper) is stamped at the end of its second k+1; an instantaneous reading
        # (power.draw on GA100) at the start, k (+ a few ms of polling jitter either way)
        secs = np.arange(lo, hi)
        jitter = np.round(rng.uniform(0.001, 0.012, len(secs)), 3)
        stamps = t_start + secs + (0 if instantaneous else 1) + jitter
        keep = stamps < t_start + hi
        ms = np.round(stamps[keep] * 1e3).astype("int64").astype("datetime64[ms]")
        text_ts = pc.replace_substring(
            pc.replace_substring(pa.array(np.datetime_as_string(ms, unit="ms")), "T", " "), "-", "/"
        )
        kept = secs[keep]
        # rows: every device of the host for each second, in index order
        column = {
            "ts": pc.take(text_ts, pa.array(np.repeat(np.arange(len(kept)), n_dev))),
            "index": pa.array(np.tile(np.array(order, dtype=np.int64), len(kept))).cast(pa.string()),
            "uuid": pa.array(np.tile(np.array([devs[i][0] for i in order]), len(kept))),
            "name": pa.array(np.tile(np.array([devs[i][4] for i in order]), len(kept))),
            "power": _fixed2(np.stack([devs[i][1][kept] for i in order], axis=1).ravel()),
            "util": pa.array(np.stack([devs[i][2][kept] for i in order], axis=1).ravel().astype(np.int64)),
            "mem": pa.array(np.stack([devs[i][3][kept] for i in order], axis=1).ravel().astype(np.int64)),
        }
        lines = pc.binary_join_element_wise(
            column["ts"],
            column["index"],
            column["uuid"],
            column["name"],
            column["power"],
            column["util"].cast(pa.string()),
            column["mem"].cast(pa.string()),
            ", ",
        )
        rows += len(lines)
        day = (datetime.fromtimestamp(t_start, UTC) + timedelta(days=d)).date()
        gz.write(folder / f"{host}_{day.isoformat()}.csv.gz", header + lines_bytes(lines))
    return rows
