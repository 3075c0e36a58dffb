"""A seeded inference workload and the fine power truth it draws: the ground truth of `validate-energy --simulate`.

Each regime runs on its own device as a sequence of *phases* (a few seconds of one configuration: batch size,
request lengths), with idle gaps between them. A request has a prefill [started_at, first_token_at), compute-bound,
whose load is ``prefill_coef x prompt tokens / prefill time``, and a decode [first_token_at, ended_at),
memory-bound, whose load is ``output tokens / decode time`` (tokens per second of that sequence). Power is drawn
every ``STEP_S`` (10 ms): the idle floor plus a dynamic part that saturates with the device's total load, passed
through a first-order ramp (the power rises and falls over tens of ms), plus noise; regimes add their own shape
(speculative decoding's draft/verify pulses, an MoE's per-step expert load, fp32's higher draw and slower prefill).

The truth of a request: at each step, the step's energy is shared among the requests running in it in proportion
to their load (decode loads times the step's modulation). Steps with no request are idle. So the requests' truths
plus the idle energy equal the device's energy exactly, which the tests check.

Pure numpy; imports no Dagster. Times are int64 microseconds since the unix epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STEP_S = 0.01
STEP_US = 10_000
RAMP_TAU_S = 0.04  # the first-order time constant of power rising and falling
LOAD_SCALE = 450.0  # the load at which the dynamic power reaches 63 % of its range


@dataclass(frozen=True)
class Regime:
    """One workload: request lengths (s), batch sizes, prompt tokens, and the device's power shape."""

    name: str
    duration_s: tuple[float, float]
    batch: tuple[int, int]
    prompt_tokens: tuple[int, int]
    idle_w: float = 70.0
    dynamic_w: float = 560.0
    prefill_tok_s: float = 12_000.0
    decode_tok_s: float = 45.0
    prefill_coef: float = 0.06
    noise: float = 0.03
    speculative: bool = False
    moe: bool = False


REGIMES = (
    Regime("short_requests", (0.05, 0.4), (1, 8), (30, 600)),
    Regime("big_batches", (0.5, 3.0), (16, 32), (100, 2000), decode_tok_s=30.0),
    Regime("speculative", (0.2, 2.0), (1, 16), (50, 1500), decode_tok_s=90.0, speculative=True, prefill_coef=0.08),
    Regime("fp32", (0.5, 3.0), (1, 8), (100, 1500), dynamic_w=610.0, prefill_tok_s=3_000.0, decode_tok_s=20.0,
           prefill_coef=0.15),
    Regime("moe", (0.1, 3.0), (1, 32), (50, 2000), decode_tok_s=60.0, moe=True, prefill_coef=0.05, noise=0.05),
    Regime("mixed", (0.05, 3.0), (1, 32), (20, 3000), prefill_coef=0.1),
)  # fmt: skip


@dataclass
class DeviceRun:
    """One device's simulated requests and its power truth."""

    device_id: str
    regime: Regime
    t0_us: int
    power_w: np.ndarray
    """power in each 10 ms step from t0_us"""
    requests: dict
    """request_id, started_at_us, first_token_at_us, ended_at_us, prompt_tokens, completion_tokens, group,
    true_energy_j, true_prefill_j, true_decode_j (numpy arrays)"""

    @property
    def energy_j(self) -> float:
        return float(self.power_w.sum() * STEP_S)

    @property
    def idle_energy_j(self) -> float:
        return self.energy_j - float(self.requests["true_energy_j"].sum())


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _phase_requests(rng, reg: Regime, start: int, steps: int) -> list[tuple[int, int, int, int, int]]:
    """(start, first token, end step, prompt tokens, output tokens) of one phase: ``batch`` slots, each running
    requests back to back with short gaps until the phase ends."""
    batch = int(round(_log_uniform(rng, reg.batch[0], reg.batch[1] + 0.49)))
    out = []
    for _ in range(batch):
        s = start + int(rng.integers(0, 20))
        while s < start + steps:
            d = max(5, int(round(_log_uniform(rng, *reg.duration_s) / STEP_S)))
            prompt = int(round(_log_uniform(rng, *reg.prompt_tokens)))
            pre = int(np.clip(round(prompt / reg.prefill_tok_s / STEP_S), 1, d // 2))
            tok_s = reg.decode_tok_s * (1.0 - 0.35 * (batch - 1) / 31)  # a busier batch decodes each sequence slower
            output = max(1, int(round((d - pre) * STEP_S * tok_s * rng.uniform(0.8, 1.2))))
            out.append((s, s + pre, s + d, prompt, output))
            s += d + int(rng.integers(0, 6))
    return out


def _schedule(rng, reg: Regime, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Every request of a device (rows of start, first token, end step, prompt, output) and its phase number."""
    rows, phase_of = [], []
    t, total, phase = 50, int(seconds / STEP_S), 0
    while t < total:
        steps = int(rng.uniform(3.0, 15.0) / STEP_S)
        reqs = _phase_requests(rng, reg, t, min(steps, total - t))
        rows += reqs
        phase_of += [phase] * len(reqs)
        t = max(r[2] for r in reqs) + (0 if rng.random() < 0.25 else int(rng.uniform(0.1, 3.0) / STEP_S))
        phase += 1
    return np.array(rows, dtype=np.int64), np.array(phase_of, dtype=np.int64)


def _step_sum(n: int, lo: np.ndarray, hi: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Per step, the sum of value over the rows whose [lo, hi) covers it."""
    diff = np.zeros(n + 1)
    np.add.at(diff, lo, value)
    np.add.at(diff, hi, -value)
    return np.cumsum(diff)[:n]


def _modulation(rng, reg: Regime, n: int) -> np.ndarray:
    """The decode load's shape over the steps: speculative draft/verify pulses, an MoE's routed expert load."""
    m = np.ones(n)
    if reg.speculative:  # a verify pass of 20 ms every 60 ms, drafting in between
        m = np.where(np.arange(n) % 6 < 2, 1.9, 0.55)
    if reg.moe:
        m = m * rng.lognormal(0.0, 0.35, n)
    return m


def _power(rng, reg: Regime, load: np.ndarray) -> np.ndarray:
    """The idle floor plus saturating dynamic power, ramped (first order) and noisy, never below 90 % of idle."""
    target = reg.dynamic_w * (1.0 - np.exp(-load / LOAD_SCALE))
    alpha = 1.0 - np.exp(-STEP_S / RAMP_TAU_S)
    ramped = np.empty_like(target)
    level = 0.0
    for k, x in enumerate(target.tolist()):
        level += alpha * (x - level)
        ramped[k] = level
    noise = rng.normal(0.0, 1.0, len(load)) * (reg.noise * ramped + 1.0)
    return np.maximum(reg.idle_w + ramped + noise, 0.9 * reg.idle_w)


def simulate_device(rng, reg: Regime, device_id: str, t0_us: int, seconds: float) -> DeviceRun:
    """One device running one regime for about ``seconds`` (the last phase runs to its end)."""
    rows, phase = _schedule(rng, reg, seconds)
    s, f, e, prompt, output = rows.T
    n = int(e.max()) + 100  # idle after the last request: the ramp settles
    pre_load = reg.prefill_coef * prompt / ((f - s) * STEP_S)
    dec_load = output / ((e - f) * STEP_S)
    mod = _modulation(rng, reg, n)
    pre_total = _step_sum(n, s, f, pre_load)
    dec_total = _step_sum(n, f, e, dec_load)
    active = _step_sum(n, s, e, np.ones(len(s))) > 0.5  # counted, so that a sum's rounding is never activity
    load = np.where(active, pre_total + mod * dec_total, 0.0)
    power = _power(rng, reg, load)
    step_j = power * STEP_S
    per_load = np.where(active, step_j / np.where(active, load, 1.0), 0.0)
    cum_pre = np.concatenate(([0.0], np.cumsum(per_load)))
    cum_dec = np.concatenate(([0.0], np.cumsum(per_load * mod)))
    true_pre = pre_load * (cum_pre[f] - cum_pre[s])
    true_dec = dec_load * (cum_dec[e] - cum_dec[f])
    ids = np.array([f"{device_id}-r{i}" for i in range(len(s))], dtype=object)
    requests = {
        "request_id": ids,
        "started_at_us": t0_us + s * STEP_US,
        "first_token_at_us": t0_us + f * STEP_US,
        "ended_at_us": t0_us + e * STEP_US,
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "group": np.array([f"{reg.name}#{p:03d}" for p in phase], dtype=object),
        "true_energy_j": true_pre + true_dec,
        "true_prefill_j": true_pre,
        "true_decode_j": true_dec,
    }
    return DeviceRun(device_id, reg, t0_us, power, requests)


def simulate_fleet(seed: int = 12, seconds: float = 600.0, regimes=REGIMES, t0_us: int = 1_793_613_600_000_000):
    """One device per regime, each ``seconds`` long, from the same start (default 2026-11-02 10:00 UTC)."""
    rng = np.random.default_rng(seed)
    return [simulate_device(rng, reg, f"GPU-sim-{i:02d}-{reg.name}", t0_us, seconds) for i, reg in enumerate(regimes)]
