"""A seeded generator of a realistic inference fleet, written in the file formats a real fleet produces.

* requests/<date>.jsonl.gz: one JSON object per request with an OpenAI-style ``usage`` object, timing fields and
  gateway metadata naming the serving replica and its techniques;
* telemetry/<host>_<date>.csv.gz: ``nvidia-smi --query-gpu=timestamp,index,uuid,name,power.draw,
  utilization.gpu,memory.used --format=csv,nounits -lms 1000`` output, one file per host and day, timestamps in
  UTC; power.draw is the 1 s average the driver reports;
* prices/<region>_<date>.csv: hourly day-ahead prices as ``Datetime,Price (<CUR>/MWh)``;
* carbon/<region>_<date>.csv: hourly grid carbon intensity as ``Datetime,Carbon Intensity (gCO2eq/kWh)``;
* fleet/*.csv: inventory, deployments, models, regions and fx_rates (the version-controlled fleet files).

Power and speed are calibrated to figures measured on an H100 SXM 80GB: idle about 71 W; an 8B model decoding at
batch 1 about 160 W and 9 J per output token; batch 8 about 260 W; batch 32 about 430 W and 1.2 J per output
token; prompt-lookup speculative decoding at batch 1 about 190 W and 6 J per output token; an MoE model at batch
16 about 440 W. Everything is vectorized per replica so that ``--devices 1000`` stays practical.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
import math
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from pipelines.ingest.device_power import power_draw_window_s

DAY_S = 86_400

# H100 SXM, 8B bf16, continuous batching: (batch, board W) and (batch, J per output token)
_H100_POWER = ((0.0, 71.0), (1.0, 160.0), (8.0, 260.0), (32.0, 430.0), (128.0, 620.0))
_H100_J_PER_TOKEN = ((1.0, 9.0), (32.0, 1.2))


@dataclass(frozen=True)
class DeviceType:
    name: str
    marketing_name: str
    tdp_w: float
    idle_w: float
    purchase_cost: float
    currency: str
    amortization_years: float
    overhead_per_hour: float
    power_scale: float  # dynamic power relative to H100
    speed_scale: float  # time per token relative to H100


DEVICE_TYPES = {
    "H100-SXM": DeviceType("H100-SXM", "NVIDIA H100 80GB HBM3", 700, 71, 35_000, "USD", 4, 0.42, 1.0, 1.0),
    "A100-SXM4": DeviceType("A100-SXM4", "NVIDIA A100-SXM4-80GB", 400, 55, 14_000, "EUR", 4, 0.28, 0.58, 1.7),
}


@dataclass(frozen=True)
class Region:
    region: str
    market: str
    price_timezone: str
    utc_offset_h: int  # for the diurnal shapes only
    currency: str
    pue: float


REGIONS = {
    "us-west": Region("us-west", "CAISO-DAM-NP15", "UTC", -8, "USD", 1.2),
    "eu-central": Region("eu-central", "EPEX-DA-DE-LU", "Europe/Berlin", 1, "EUR", 1.3),
}


@dataclass(frozen=True)
class Model:
    model: str
    family: str
    params_b: float
    active_params_b: float
    is_moe: bool
    distilled_from: str | None
    baseline_model: str
    tp: int
    power_scale: float  # dynamic power per GPU relative to the 8B calibration
    speed_scale: float  # time per output token relative to the 8B calibration
    prefill_tok_per_s: float
    output_median: float


MODELS = {
    m.model: m
    for m in (
        Model("llama-3.1-70b-instruct", "llama-3.1", 70.6, 70.6, False, None, "llama-3.1-70b-instruct", 4, 1.10, 1.7,
              6_000, 220),
        Model("llama-3.1-8b-instruct", "llama-3.1", 8.0, 8.0, False, None, "llama-3.1-8b-instruct", 1, 1.0, 1.0,
              12_000, 180),
        Model("llama-3.2-3b-distill", "llama-3.1", 3.2, 3.2, False, "llama-3.1-8b-instruct", "llama-3.1-8b-instruct",
              1, 0.75, 0.55, 25_000, 170),
        Model("mixtral-8x7b-instruct", "mixtral", 46.7, 12.9, True, None, "llama-3.1-70b-instruct", 2, 1.36, 1.25,
              8_000, 200),
    )
}

# engine configurations: (quantization, speculative, batching) -> (factor on dynamic power above idle, factor on
# J/token), both at batch 1, fading towards batch 32
_CONFIG_EFFECT = {
    (None, None, "continuous"): (1.0, 1.0),
    ("int8", None, "continuous"): (0.95, 0.72),
    ("fp8", None, "continuous"): (0.97, 0.70),
    ("int4", None, "continuous"): (0.92, 0.62),
    (None, "prompt_lookup", "continuous"): ((190 - 71) / (160 - 71), 6 / 9),  # 190 W and 6 J/token at batch 1
    (None, None, "static"): (0.95, 1.35),
}

# replica layouts of one 8-device host, by host kind
_HOST_LAYOUTS = {
    "h100-large": [("llama-3.1-70b-instruct", (None, None, "continuous")),
                   ("llama-3.1-70b-instruct", ("fp8", None, "continuous"))],
    "h100-small": [("llama-3.1-8b-instruct", c) for c in (
        (None, None, "continuous"), (None, None, "continuous"), ("int8", None, "continuous"),
        ("int8", None, "continuous"), (None, "prompt_lookup", "continuous"), (None, "prompt_lookup", "continuous"),
        (None, None, "static"), ("int4", None, "continuous"))],
    "a100": [("mixtral-8x7b-instruct", (None, None, "continuous")),
             ("mixtral-8x7b-instruct", (None, None, "continuous")),
             ("llama-3.2-3b-distill", (None, None, "continuous")),
             ("llama-3.2-3b-distill", (None, None, "continuous")),
             ("llama-3.2-3b-distill", ("int8", None, "continuous")),
             ("llama-3.2-3b-distill", (None, None, "continuous"))],
}
_HOST_CYCLE = ("h100-large", "h100-small", "a100")

TENANTS = ("team-search", "team-assistant", "team-code", "customer-acme", "customer-globex")


def power_w(batch: np.ndarray, effect_at_1: float = 1.0) -> np.ndarray:
    """H100 board power for an 8B model at a (fractional) decode batch, per the calibration points."""
    xs = np.log2(1.0 + np.array([b for b, _ in _H100_POWER]))
    ys = np.array([p for _, p in _H100_POWER])
    base = np.interp(np.log2(1.0 + np.asarray(batch, dtype=float)), xs, ys)
    # a technique's power effect is strongest at batch 1 and fades by batch 32
    fade = np.clip(np.log2(np.maximum(batch, 1.0)) / 5.0, 0, 1)
    factor = effect_at_1 + (1.0 - effect_at_1) * fade
    return 71.0 + (base - 71.0) * np.where(np.asarray(batch) > 0, factor, 1.0)


def j_per_token(batch: np.ndarray, effect_at_1: float = 1.0) -> np.ndarray:
    (b1, j1), (b2, j2) = _H100_J_PER_TOKEN
    b = np.maximum(np.asarray(batch, dtype=float), 1.0)
    base = j1 * (j2 / j1) ** (np.log2(b) / np.log2(b2))
    fade = np.clip(np.log2(b) / 5.0, 0, 1)
    return base * (effect_at_1 + (1.0 - effect_at_1) * fade * 0.3)


def time_per_token_s(batch, config) -> np.ndarray:
    """Seconds per decode step at a batch: batch x J/token / power (the calibration's own identity)."""
    p_eff, j_eff = _CONFIG_EFFECT[config]
    b = np.maximum(np.asarray(batch, dtype=float), 1.0)
    return b * j_per_token(b, j_eff) / power_w(b, p_eff)


@dataclass
class Replica:
    replica_id: str
    host: str
    region: str
    device_type: str
    model: str
    config: tuple
    devices: list[str]
    indices: list[int]


def _uuid(rng: np.random.Generator) -> str:
    return "GPU-" + str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | int(rng.integers(0, 2**63)), version=4))


def build_fleet(n_devices: int, rng: np.random.Generator) -> tuple[list[dict], list[Replica]]:
    if n_devices < 8 or n_devices % 8:
        raise ValueError("--devices must be a multiple of 8 (hosts of 8 accelerators), at least 8")
    inventory, replicas = [], []
    for h in range(n_devices // 8):
        kind = _HOST_CYCLE[h % len(_HOST_CYCLE)]
        dtype = DEVICE_TYPES["A100-SXM4" if kind == "a100" else "H100-SXM"]
        region = REGIONS["eu-central" if kind == "a100" else "us-west"]
        host = f"{region.region}-{kind}-{h:03d}"
        uuids = [_uuid(rng) for _ in range(8)]
        for i, u in enumerate(uuids):
            inventory.append(
                {
                    "device_id": u, "host": host, "region": region.region, "device_type": dtype.name,
                    "purchase_cost": dtype.purchase_cost, "currency": dtype.currency,
                    "in_service_from": "2025-01-01", "amortization_years": dtype.amortization_years,
                    "tdp_w": dtype.tdp_w, "idle_w": dtype.idle_w, "pue": region.pue,
                    "overhead_per_hour": dtype.overhead_per_hour,
                }
            )
        slot = 0
        for r, (model, config) in enumerate(_HOST_LAYOUTS[kind]):
            tp = MODELS[model].tp
            idx = list(range(slot, slot + tp))
            slot += tp
            replicas.append(
                Replica(f"{host}-r{r}", host, region.region, dtype.name, model, config, [uuids[i] for i in idx], idx)
            )
    return inventory, replicas


def _diurnal(t_s: np.ndarray, utc_offset_h: int) -> np.ndarray:
    """Relative load in [0.25, 1]: low at night, peak mid-afternoon local time, a little lower on weekends."""
    local_h = (t_s / 3600.0 + utc_offset_h) % 24
    shape = 0.25 + 0.75 * np.exp(-0.5 * ((local_h - 14.5) / 4.0) ** 2)
    return shape


def _coverage_per_second(starts: np.ndarray, ends: np.ndarray, n_seconds: int) -> np.ndarray:
    """Average number of active intervals in each second [k, k+1), k = 0..n_seconds-1 (times in seconds)."""
    grid = np.arange(n_seconds + 1, dtype=float)
    ss, es = np.sort(starts), np.sort(ends)
    cs, ce = np.concatenate([[0.0], np.cumsum(ss)]), np.concatenate([[0.0], np.cumsum(es)])
    ns, ne = np.searchsorted(ss, grid), np.searchsorted(es, grid)
    integral = grid * ns - cs[ns] - (grid * ne - ce[ne])
    return np.diff(integral)


def _busy_per_second(starts: np.ndarray, ends: np.ndarray, n_seconds: int) -> np.ndarray:
    """Fraction of each second with at least one active interval (union of intervals)."""
    if len(starts) == 0:
        return np.zeros(n_seconds)
    order = np.argsort(starts)
    s, e = starts[order], ends[order]
    run_end = np.maximum.accumulate(e)
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] > run_end[:-1]
    gid = np.cumsum(new) - 1
    ms = s[new]
    me = np.maximum.reduceat(e, np.flatnonzero(new))
    del gid
    return _coverage_per_second(ms, me, n_seconds)


def simulate_replica(rep: Replica, t0: float, n_seconds: int, rng: np.random.Generator, load: float,
                     slowdown: np.ndarray | None = None):
    """Requests (dict of arrays, seconds since t0) and per-second decode batch of one replica. ``slowdown`` is a
    per-second factor on time per token (a throttled GPU)."""
    m = MODELS[rep.model]
    region = REGIONS[rep.region]
    dt = DEVICE_TYPES[rep.device_type]
    grid = np.arange(n_seconds, dtype=float)
    target_peak_batch = 7.0 * load
    # arrival rate per second so that concurrency ~ target at peak (Little's law with the mean duration at that batch)
    mean_out = m.output_median * math.exp(0.8**2 / 2)
    rel = _diurnal(t0 + grid, region.utc_offset_h)
    batch_exp = np.maximum(target_peak_batch * rel, 0.3)
    tpot_exp = time_per_token_s(batch_exp, rep.config) * m.speed_scale * dt.speed_scale
    if slowdown is not None:
        tpot_exp = tpot_exp * slowdown
    lam = batch_exp / (mean_out * tpot_exp + 0.4)
    cum = np.concatenate([[0.0], np.cumsum(lam)])
    n = rng.poisson(cum[-1])
    arr = np.sort(np.interp(rng.uniform(0, cum[-1], n), cum, np.arange(n_seconds + 1, dtype=float)))
    prompt = np.clip(np.round(rng.lognormal(math.log(700), 1.0, n)), 8, 16_000).astype(np.int64)
    out = np.clip(np.round(rng.lognormal(math.log(m.output_median), 0.8, n)), 1, 4_096).astype(np.int64)
    cached = np.where(rng.random(n) < 0.35, (prompt * rng.uniform(0.2, 0.9, n)).astype(np.int64), 0)
    sec = np.clip(arr.astype(np.int64), 0, n_seconds - 1)
    b = batch_exp[sec]
    queue = rng.exponential(0.05 + 0.02 * b)
    prefill = (prompt - cached) / (m.prefill_tok_per_s / dt.speed_scale)
    tpot = tpot_exp[sec] * rng.lognormal(0.0, 0.08, n)
    first = arr + queue + prefill + tpot
    end = first + (out - 1) * tpot
    status = np.where(rng.random(n) < 0.004, "error", "ok")
    out = np.where(status == "error", np.minimum(out, rng.integers(0, 8, n)), out)
    keep = end < n_seconds - 2  # the window's last requests finish in the next day's logs
    reqs = {"arrival": arr, "first": first, "end": end, "prompt": prompt, "out": out, "cached": cached,
            "status": status}
    reqs = {k: v[keep] for k, v in reqs.items()}
    batch = _coverage_per_second(reqs["arrival"], reqs["end"], n_seconds)
    busy = _busy_per_second(reqs["arrival"], reqs["end"], n_seconds)
    return reqs, batch, busy


def _fmt_ts(epoch_s: np.ndarray) -> list[str]:
    us = np.round(np.asarray(epoch_s) * 1e6).astype("int64").astype("datetime64[us]")
    return [s + "Z" for s in np.datetime_as_string(us, unit="us")]


def _write_gz(path: Path, text: str) -> None:
    # mtime=0 keeps the output byte-identical for the same seed
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(text.encode())


def _price_day(region: Region, day_start: float, rng: np.random.Generator) -> np.ndarray:
    hours = np.arange(24)
    local = (hours + region.utc_offset_h) % 24
    if region.region == "us-west":  # duck curve: solar trough mid-day, evening ramp
        p = 55 - 38 * np.exp(-0.5 * ((local - 12.5) / 2.2) ** 2) + 65 * np.exp(-0.5 * ((local - 19) / 1.6) ** 2)
    else:  # two peaks, cheap nights
        p = 70 + 45 * np.exp(-0.5 * ((local - 8) / 1.5) ** 2) + 75 * np.exp(-0.5 * ((local - 19) / 1.8) ** 2)
        p -= 25 * np.exp(-0.5 * ((local - 3) / 2.0) ** 2)
    p = p * rng.lognormal(0, 0.06, 24) + rng.normal(0, 2, 24)
    return np.round(p, 2)


@dataclass(frozen=True)
class Plant:
    """Anomalies to plant on one day (0-based), for testing checks and alerts."""

    day: int
    throttle_replica: str | None = None  # replica_id whose GPUs run at half speed and 60 % dynamic power
    price_spike_region: str | None = None  # region whose prices 17:00-20:59 UTC are multiplied (x60)
    price_spike_factor: float = 60.0


def generate(out: Path, *, devices: int = 24, days: int = 1, seed: int = 7, start: date = date(2026, 11, 2),
             load: float = 1.0, progress=print, plant: Plant | None = None) -> dict:
    """Write a fleet of ``devices`` accelerators over ``days`` days into ``out``. Returns counts."""
    rng = np.random.default_rng(seed)
    out = Path(out)
    for sub in ("requests", "telemetry", "prices", "carbon", "fleet"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    inventory, replicas = build_fleet(devices, rng)
    t_start = datetime(start.year, start.month, start.day, tzinfo=timezone.utc).timestamp()
    n_seconds = days * DAY_S
    _write_fleet_files(out / "fleet", inventory, replicas, t_start)

    # each replica's request lines go to a scratch file per day as it is simulated (a 1,000-accelerator day is
    # some 8 GB of JSON: it is never held in memory); each day's file is then written from them in id order
    scratch = out / "requests" / ".replicas"
    scratch.mkdir(exist_ok=True)
    host_power: dict[str, dict[int, tuple]] = {}
    counts = {"requests": 0, "telemetry_rows": 0}
    for i, rep in enumerate(replicas):
        throttled = None
        if plant and plant.throttle_replica == rep.replica_id:
            throttled = np.zeros(n_seconds, dtype=bool)
            throttled[plant.day * DAY_S:(plant.day + 1) * DAY_S] = True
        reqs, batch, busy = simulate_replica(rep, t_start, n_seconds, rng, load,
                                             None if throttled is None else np.where(throttled, 2.0, 1.0))
        quant, spec, batching = rep.config
        m = MODELS[rep.model]
        dt = DEVICE_TYPES[rep.device_type]
        ids = [f"cmpl-{rep.replica_id}-{k:07d}" for k in range(len(reqs["arrival"]))]
        tenants = rng.choice(TENANTS, len(ids), p=[0.35, 0.3, 0.2, 0.1, 0.05])
        started = _fmt_ts(t_start + reqs["arrival"])
        first = _fmt_ts(t_start + reqs["first"])
        ended = _fmt_ts(t_start + reqs["end"])
        day_of = (reqs["arrival"] // DAY_S).astype(int)
        lines_of_day: dict[int, list[str]] = {d: [] for d in range(days)}
        for k in range(len(ids)):
            obj = {
                "id": ids[k], "object": "chat.completion", "created": int(t_start + reqs["arrival"][k]),
                "model": rep.model,
                "usage": {"prompt_tokens": int(reqs["prompt"][k]), "completion_tokens": int(reqs["out"][k]),
                          "total_tokens": int(reqs["prompt"][k] + reqs["out"][k]),
                          "prompt_tokens_details": {"cached_tokens": int(reqs["cached"][k])}},
                "started_at": started[k], "first_token_at": first[k], "ended_at": ended[k],
                "replica_id": rep.replica_id, "host": rep.host, "status": str(reqs["status"][k]),
                "metadata": {"tenant": str(tenants[k]), "quantization": quant, "speculative": spec,
                             "batching": batching},
            }
            lines_of_day[int(day_of[k])].append(json.dumps(obj, separators=(",", ":")))
        for d, lines in lines_of_day.items():
            if lines:
                (scratch / f"{rep.replica_id}-.d{d}").write_text("\n".join(lines) + "\n")
        del lines_of_day
        # every device of the replica draws power from the replica's batch
        p_eff, _ = _CONFIG_EFFECT[rep.config]
        mem_base = 1024 * (m.params_b * (1.0 if quant in ("int8", "fp8") else 0.5 if quant == "int4" else 2.0)
                           / m.tp + 3)
        for j, dev_index in enumerate(rep.indices):
            dyn = (power_w(batch, p_eff) - 71.0) * m.power_scale * dt.power_scale
            if throttled is not None:
                dyn = np.where(throttled, 0.6 * dyn, dyn)
            p = np.minimum(dt.idle_w + dyn * rng.lognormal(0, 0.02, n_seconds), dt.tdp_w)
            util = np.round(100 * busy)
            mem = np.round(mem_base + 900 * batch)  # allocator-rounded: no sample noise
            host_power.setdefault(rep.host, {})[dev_index] = (rep.devices[j], np.round(p, 2), util, mem,
                                                               dt.marketing_name)
        counts["requests"] += len(ids)
        progress(f"  simulated replica {i + 1}/{len(replicas)} {rep.replica_id}: {len(ids):,} requests")

    for d in range(days):
        day = start + timedelta(days=d)
        # ids are cmpl-<replica>-<n>: replicas in the order of "<replica>-", each in its own order, is id order
        parts = sorted(scratch.glob(f"*.d{d}"), key=lambda f: f.name.rsplit(".d", 1)[0])
        with open(out / "requests" / f"{day.isoformat()}.jsonl.gz", "wb") as raw, \
                gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as gz:
            for part in parts:
                gz.write(part.read_bytes())
                part.unlink()
        for region in REGIONS.values():
            prices = _price_day(region, t_start + d * DAY_S, rng)
            if plant and plant.day == d and plant.price_spike_region == region.region:
                prices[17:21] = np.round(prices[17:21] * plant.price_spike_factor, 2)
            _write_prices(out / "prices" / f"{region.region}_{day.isoformat()}.csv", region, day, prices)
            _write_carbon(out / "carbon" / f"{region.region}_{day.isoformat()}.csv", region, day, rng)
    shutil.rmtree(scratch)
    for host, devs in host_power.items():
        device_type = next(d["device_type"] for d in inventory if d["host"] == host)
        counts["telemetry_rows"] += _write_telemetry(out / "telemetry", host, devs, t_start, days, rng,
                                                     instantaneous=power_draw_window_s(device_type) == 0)
        progress(f"  wrote telemetry for {host}")
    return counts


def _write_fleet_files(fleet: Path, inventory, replicas, t_start) -> None:
    def write(name, rows):
        with open(fleet / f"{name}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)

    write("inventory", inventory)
    valid_from = datetime.fromtimestamp(t_start - 30 * DAY_S, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    write("deployments", [{"replica_id": r.replica_id, "device_id": d, "valid_from": valid_from, "valid_to": ""}
                          for r in replicas for d in r.devices])
    write("models", [{"model": m.model, "family": m.family, "params_b": m.params_b,
                      "active_params_b": m.active_params_b, "is_moe": str(m.is_moe).lower(),
                      "distilled_from": m.distilled_from or "", "baseline_precision": "bf16",
                      "baseline_model": m.baseline_model} for m in MODELS.values()])
    write("regions", [{"region": r.region, "market": r.market, "price_timezone": r.price_timezone,
                       "interval_minutes": 60} for r in REGIONS.values()])
    write("fx_rates", [{"currency": "USD", "usd_per_unit": 1.0}, {"currency": "EUR", "usd_per_unit": 1.08}])


def _hour_stamps(region: Region, day: date) -> list[datetime]:
    """The 24 UTC hours of a day as naive timestamps in the region's price_timezone (as its feeds publish them)."""
    utc0 = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    if region.price_timezone == "UTC":
        return [(utc0 + timedelta(hours=h)).replace(tzinfo=None) for h in range(24)]
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(region.price_timezone)
    return [(utc0 + timedelta(hours=h)).astimezone(tz).replace(tzinfo=None) for h in range(24)]


def _write_prices(path: Path, region: Region, day: date, prices: np.ndarray) -> None:
    """Hourly prices; naive timestamps in the region's price_timezone (UTC or local, as markets publish)."""
    lines = [f"Datetime,Price ({region.currency}/MWh)"]
    lines += [f"{s:%Y-%m-%d %H:%M:%S},{p:.2f}" for s, p in zip(_hour_stamps(region, day), prices)]
    path.write_text("\n".join(lines) + "\n")


def _write_carbon(path: Path, region: Region, day: date, rng) -> None:
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


def _write_telemetry(folder: Path, host: str, devs: dict, t_start: float, days: int, rng,
                     instantaneous: bool) -> int:
    """nvidia-smi CSV (nounits), one sample per device per second, sampled at the end of each second."""
    rows = 0
    header = "timestamp, index, uuid, name, power.draw [W], utilization.gpu [%], memory.used [MiB]"
    for d in range(days):
        lo, hi = d * DAY_S, (d + 1) * DAY_S
        # a 1 s average (power.draw on Hopper) is stamped at the end of its second k+1; an instantaneous reading
        # (power.draw on GA100) at the start, k (+ a few ms of polling jitter either way)
        secs = np.arange(lo, hi)
        jitter = np.round(rng.uniform(0.001, 0.012, len(secs)), 3)
        stamps = t_start + secs + (0 if instantaneous else 1) + jitter
        keep = stamps < t_start + hi
        text_ts = [s.replace("T", " ").replace("-", "/")[:23] for s in
                   np.datetime_as_string(np.round(stamps * 1e3).astype("int64").astype("datetime64[ms]"), unit="ms")]
        buf = io.StringIO()
        buf.write(header + "\n")
        order = sorted(devs)
        for k in np.flatnonzero(keep):
            for idx in order:
                uid, p, util, mem, name = devs[idx]
                buf.write(f"{text_ts[k]}, {idx}, {uid}, {name}, {p[secs[k]]:.2f}, {int(util[secs[k]])}, "
                          f"{int(mem[secs[k]])}\n")
                rows += 1
        day = (datetime.fromtimestamp(t_start, timezone.utc) + timedelta(days=d)).date()
        _write_gz(folder / f"{host}_{day.isoformat()}.csv.gz", buf.getvalue())
    return rows
