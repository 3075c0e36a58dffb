"""generate(): simulate every replica of a fleet and write its files, with optional planted anomalies."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.devtools.generate.fleet import (
    CONFIG_EFFECT,
    DAY_S,
    DEVICE_TYPES,
    MODELS,
    REGIONS,
    TENANTS,
    Replica,
    build_fleet,
)
from pipelines.devtools.generate.simulate import power_w, simulate_replica
from pipelines.devtools.generate.writers import (
    GzWriter,
    fmt_ts,
    lines_bytes,
    price_day,
    write_carbon,
    write_fleet_files,
    write_prices,
    write_telemetry,
)
from pipelines.ingest.device_power import power_draw_window_s


@dataclass(frozen=True)
class Plant:
    """Anomalies to plant on one day (0-based), for testing checks and alerts."""

    day: int
    throttle_replica: str | None = None  # replica_id whose GPUs run at half speed and 60 % dynamic power
    price_spike_region: str | None = None  # region whose prices 17:00-20:59 UTC are multiplied (x60)
    price_spike_factor: float = 60.0


def _json_words(values) -> pa.Array:
    """Values of a few distinct JSON-safe words (tenants, statuses) as JSON strings."""
    words = pa.array(np.asarray(values).astype(str))
    if pc.any(pc.match_substring_regex(words, r'["\\\x00-\x1f]')).as_py():
        raise ValueError("a generated word needs JSON escaping")
    return pc.binary_join_element_wise('"', words, '"', "")


def _request_lines(rep: Replica, reqs: dict, t_start: float, days: int, rng) -> dict[int, bytes]:
    """The replica's requests as OpenAI-style JSON lines (the text ``json.dumps`` writes, built column-wise), by
    day (0-based) of arrival."""
    quant, spec, batching = rep.config
    n = len(reqs["arrival"])
    tenants = rng.choice(TENANTS, n, p=[0.35, 0.3, 0.2, 0.1, 0.05])

    def num(values) -> pa.Array:
        return pa.array(np.asarray(values).astype(np.int64)).cast(pa.string())

    ids = pc.utf8_lpad(num(np.arange(n)), width=7, padding="0")
    line = pc.binary_join_element_wise(
        f'{{"id":"cmpl-{rep.replica_id}-',
        ids,
        '","object":"chat.completion","created":',
        num(np.floor(t_start + reqs["arrival"])),
        f',"model":{json.dumps(rep.model)},"usage":{{"prompt_tokens":',
        num(reqs["prompt"]),
        ',"completion_tokens":',
        num(reqs["out"]),
        ',"total_tokens":',
        num(np.asarray(reqs["prompt"]) + np.asarray(reqs["out"])),
        ',"prompt_tokens_details":{"cached_tokens":',
        num(reqs["cached"]),
        '}},"started_at":"',
        fmt_ts(t_start + reqs["arrival"]),
        '","first_token_at":"',
        fmt_ts(t_start + reqs["first"]),
        '","ended_at":"',
        fmt_ts(t_start + reqs["end"]),
        f'","replica_id":{json.dumps(rep.replica_id)},"host":{json.dumps(rep.host)},"status":',
        _json_words(reqs["status"]),
        ',"metadata":{"tenant":',
        _json_words(tenants),
        f',"quantization":{json.dumps(quant)},"speculative":{json.dumps(spec)},"batching":{json.dumps(batching)}}}}}',
        "",
    )
    day_of = (reqs["arrival"] // DAY_S).astype(int)
    return {d: lines_bytes(line.filter(pa.array(day_of == d))) for d in range(days) if (day_of == d).any()}


def _device_power(rep: Replica, batch: np.ndarray, busy: np.ndarray, throttled, rng, n_seconds: int) -> dict:
    """Per device index of the replica: (uuid, power W, utilization %, memory MiB, marketing name) per second.
    Every device of the replica draws power from the replica's batch."""
    m = MODELS[rep.model]
    dt = DEVICE_TYPES[rep.device_type]
    quant = rep.config[0]
    p_eff, _ = CONFIG_EFFECT[rep.config]
    mem_base = 1024 * (m.params_b * (1.0 if quant in ("int8", "fp8") else 0.5 if quant == "int4" else 2.0) / m.tp + 3)
    out = {}
    for j, dev_index in enumerate(rep.indices):
        dyn = (power_w(batch, p_eff) - 71.0) * m.power_scale * dt.power_scale
        if throttled is not None:
            dyn = np.where(throttled, 0.6 * dyn, dyn)
        p = np.minimum(dt.idle_w + dyn * rng.lognormal(0, 0.02, n_seconds), dt.tdp_w)
        util = np.round(100 * busy)
        mem = np.round(mem_base + 900 * batch)  # allocator-rounded: no sample noise
        out[dev_index] = (rep.devices[j], np.round(p, 2), util, mem, dt.marketing_name)
    return out


def _simulate(
    rep: Replica, t_start: float, days: int, load: float, plant: Plant | None, scratch: Path, rng
) -> tuple[int, dict]:
    """Simulate one replica: its request lines go to a scratch file per day; returns its request count and its
    devices' per-second power."""
    n_seconds = days * DAY_S
    throttled = None
    if plant and plant.throttle_replica == rep.replica_id:
        throttled = np.zeros(n_seconds, dtype=bool)
        throttled[plant.day * DAY_S : (plant.day + 1) * DAY_S] = True
    reqs, batch, busy = simulate_replica(
        rep, t_start, n_seconds, rng, load, None if throttled is None else np.where(throttled, 2.0, 1.0)
    )
    lines_of_day = _request_lines(rep, reqs, t_start, days, rng)
    for d, text in lines_of_day.items():
        (scratch / f"{rep.replica_id}-.d{d}").write_bytes(text)
    n_requests = len(reqs["arrival"])
    del lines_of_day
    return n_requests, _device_power(rep, batch, busy, throttled, rng, n_seconds)


def _write_days(
    out: Path, scratch: Path, start: date, days: int, t_start: float, plant: Plant | None, rng, gz: GzWriter
) -> None:
    """Each day's request file from the replicas' scratch files, in id order; each region's prices and carbon."""
    for d in range(days):
        day = start + timedelta(days=d)
        # ids are cmpl-<replica>-<n>: replicas in the order of "<replica>-", each in its own order, is id order
        parts = sorted(scratch.glob(f"*.d{d}"), key=lambda f: f.name.rsplit(".d", 1)[0])
        gz.write(out / "requests" / f"{day.isoformat()}.jsonl.gz", b"".join(part.read_bytes() for part in parts))
        for part in parts:
            part.unlink()
        for region in REGIONS.values():
            prices = price_day(region, t_start + d * DAY_S, rng)
            if plant and plant.day == d and plant.price_spike_region == region.region:
                prices[17:21] = np.round(prices[17:21] * plant.price_spike_factor, 2)
            write_prices(out / "prices" / f"{region.region}_{day.isoformat()}.csv", region, day, prices)
            write_carbon(out / "carbon" / f"{region.region}_{day.isoformat()}.csv", region, day, rng)


def generate(
    out: Path,
    *,
    devices: int = 24,
    days: int = 1,
    seed: int = 7,
    start: date = date(2026, 11, 2),
    load: float = 1.0,
    progress=print,
    plant: Plant | None = None,
) -> dict:
    """Write a fleet of ``devices`` accelerators over ``days`` days into ``out``. Returns counts."""
    rng = np.random.default_rng(seed)
    out = Path(out)
    for sub in ("requests", "telemetry", "prices", "carbon", "fleet"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    inventory, replicas = build_fleet(devices, rng)
    t_start = datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()
    write_fleet_files(out / "fleet", inventory, replicas, t_start)

    # each replica's request lines go to a scratch file per day as it is simulated (a 1,000-accelerator day is
    # some 8 GB of JSON: it is never held in memory); each day's file is then written from them in id order
    scratch = out / "requests" / ".replicas"
    scratch.mkdir(exist_ok=True)
    host_power: dict[str, dict[int, tuple]] = {}
    counts = {"requests": 0, "telemetry_rows": 0}
    for i, rep in enumerate(replicas):
        n_requests, power = _simulate(rep, t_start, days, load, plant, scratch, rng)
        host_power.setdefault(rep.host, {}).update(power)
        counts["requests"] += n_requests
        progress(f"  simulated replica {i + 1}/{len(replicas)} {rep.replica_id}: {n_requests:,} requests")
    gz = GzWriter()
    try:
        _write_days(out, scratch, start, days, t_start, plant, rng, gz)
        for host, devs in host_power.items():
            device_type = next(d["device_type"] for d in inventory if d["host"] == host)
            counts["telemetry_rows"] += write_telemetry(
                out / "telemetry", host, devs, t_start, days, rng, power_draw_window_s(device_type) == 0, gz
            )
            progress(f"  wrote telemetry for {host}")
    finally:
        gz.close()
    shutil.rmtree(scratch)
    return counts
