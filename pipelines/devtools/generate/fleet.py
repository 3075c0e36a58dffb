"""The sample fleet's shape: device types, regions, models, engine configurations, host layouts and replicas.

Power and speed are calibrated to figures measured on an H100 SXM 80GB (simulate.py); here are the per-device-type
and per-model factors applied to that calibration.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np

DAY_S = 86_400


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
        Model(
            "llama-3.1-70b-instruct",
            "llama-3.1",
            70.6,
            70.6,
            False,
            None,
            "llama-3.1-70b-instruct",
            4,
            1.10,
            1.7,
            6_000,
            220,
        ),
        Model(
            "llama-3.1-8b-instruct",
            "llama-3.1",
            8.0,
            8.0,
            False,
            None,
            "llama-3.1-8b-instruct",
            1,
            1.0,
            1.0,
            12_000,
            180,
        ),
        Model(
            "llama-3.2-3b-distill",
            "llama-3.1",
            3.2,
            3.2,
            False,
            "llama-3.1-8b-instruct",
            "llama-3.1-8b-instruct",
            1,
            0.75,
            0.55,
            25_000,
            170,
        ),
        Model(
            "mixtral-8x7b-instruct",
            "mixtral",
            46.7,
            12.9,
            True,
            None,
            "llama-3.1-70b-instruct",
            2,
            1.36,
            1.25,
            8_000,
            200,
        ),
    )
}

# engine configurations: (quantization, speculative, batching) -> (factor on dynamic power above idle, factor on
# J/token), both at batch 1, fading towards batch 32
CONFIG_EFFECT = {
    (None, None, "continuous"): (1.0, 1.0),
    ("int8", None, "continuous"): (0.95, 0.72),
    ("fp8", None, "continuous"): (0.97, 0.70),
    ("int4", None, "continuous"): (0.92, 0.62),
    (None, "prompt_lookup", "continuous"): ((190 - 71) / (160 - 71), 6 / 9),  # 190 W and 6 J/token at batch 1
    (None, None, "static"): (0.95, 1.35),
}

# replica layouts of one 8-device host, by host kind
_HOST_LAYOUTS = {
    "h100-large": [
        ("llama-3.1-70b-instruct", (None, None, "continuous")),
        ("llama-3.1-70b-instruct", ("fp8", None, "continuous")),
    ],
    "h100-small": [
        ("llama-3.1-8b-instruct", c)
        for c in (
            (None, None, "continuous"),
            (None, None, "continuous"),
            ("int8", None, "continuous"),
            ("int8", None, "continuous"),
            (None, "prompt_lookup", "continuous"),
            (None, "prompt_lookup", "continuous"),
            (None, None, "static"),
            ("int4", None, "continuous"),
        )
    ],
    "a100": [
        ("mixtral-8x7b-instruct", (None, None, "continuous")),
        ("mixtral-8x7b-instruct", (None, None, "continuous")),
        ("llama-3.2-3b-distill", (None, None, "continuous")),
        ("llama-3.2-3b-distill", (None, None, "continuous")),
        ("llama-3.2-3b-distill", ("int8", None, "continuous")),
        ("llama-3.2-3b-distill", (None, None, "continuous")),
    ],
}
_HOST_CYCLE = ("h100-large", "h100-small", "a100")

TENANTS = ("team-search", "team-assistant", "team-code", "customer-acme", "customer-globex")


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
        for u in uuids:
            inventory.append(
                {
                    "device_id": u,
                    "host": host,
                    "region": region.region,
                    "device_type": dtype.name,
                    "purchase_cost": dtype.purchase_cost,
                    "currency": dtype.currency,
                    "in_service_from": "2025-01-01",
                    "amortization_years": dtype.amortization_years,
                    "tdp_w": dtype.tdp_w,
                    "idle_w": dtype.idle_w,
                    "pue": region.pue,
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
