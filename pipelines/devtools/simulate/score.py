"""Score attribution rules against the simulator's truth, per request, per phase group and per regime.

A rule is a telemetry kind, the column read from it, and kernel options; a new kernel option is one more entry in
``rule_options`` (each is run with every kind and column). ``use_phases`` runs the prefill/decode split
(attribution/phases.py) instead of the whole-request rule.

Figures, each over the requests that ran in the simulated capture:
* group error: (attributed - true) / true of a phase group's total (the requests of one few-second configuration
  of one regime, as a benchmark phase scored against a hardware counter would be); median and p90 of its absolute
  value over all groups;
* worst regime total: the largest absolute error of a regime's total;
* request median: the median absolute error per request;
* conservation: the largest |metered - attributed - idle| / metered of the run (the kernel's invariant).

Pure numpy/pyarrow/DuckDB; imports no Dagster.
"""

from __future__ import annotations

import inspect
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipelines.attribution.kernel import attribute_energy
from pipelines.attribution.phases import attribute_energy_by_phase
from pipelines.devtools.simulate.loggers import TS_TYPE, logger_tables, write_logger_files
from pipelines.devtools.simulate.workload import DeviceRun, simulate_fleet

# kind -> (column choice -> description); "file" reads the logger's file through the ingest's reader as shipped
COLUMNS = {
    "nvidia_smi_1s": {
        "file": "default reader",
        "power.draw.instant": "power.draw.instant",
        "power.draw": "power.draw (1 s avg)",
    },
    "dcgm_1s": {"file": "default reader (counter)", "power": "POWER_USAGE only"},
    "nvml_100ms": {"file": "default reader (counter)", "power": "instant power only"},
}
READER_FORMATS = {
    "nvidia_smi_1s": "nvidia_smi_csv",
    "dcgm_1s": "prometheus_range_json",
    "nvml_100ms": "energy_counter_csv",
}


def rule_options() -> list[dict]:
    """The kernel option sets to compare: acc-kernel's placement when the kernel has it."""
    if "placement" in inspect.signature(attribute_energy).parameters:
        return [{"placement": "flat"}, {"placement": "activity"}]
    return [{}]


@dataclass(frozen=True)
class Rule:
    kind: str
    column: str
    use_phases: bool = False
    options: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        opts = ", ".join(f"{v}" for v in self.options.values())
        return f"{COLUMNS[self.kind][self.column]}{', ' + opts if opts else ''}{', phases' if self.use_phases else ''}"

    @property
    def label_key(self) -> tuple:
        """(kind, column, use_phases, options) as a hashable key."""
        return (self.kind, self.column, self.use_phases, tuple(sorted(self.options.items())))


def default_rules() -> list[Rule]:
    return [
        Rule(kind, column, phases, options)
        for kind, columns in COLUMNS.items()
        for column in columns
        for options in rule_options()
        for phases in (False, True)
    ]


def requests_table(runs: list[DeviceRun]) -> pa.Table:
    def cat(key):
        return np.concatenate([r.requests[key] for r in runs])

    return pa.table(
        {
            "request_id": pa.array(cat("request_id"), pa.string()),
            "device_id": pa.array(np.concatenate([[r.device_id] * len(r.requests["request_id"]) for r in runs])),
            "started_at": pa.array(cat("started_at_us"), pa.int64()).cast(TS_TYPE),
            "first_token_at": pa.array(cat("first_token_at_us"), pa.int64()).cast(TS_TYPE),
            "ended_at": pa.array(cat("ended_at_us"), pa.int64()).cast(TS_TYPE),
            "prompt_tokens": pa.array(cat("prompt_tokens"), pa.int64()),
            "completion_tokens": pa.array(cat("completion_tokens"), pa.int64()),
            "group": pa.array(cat("group"), pa.string()),
            "true_energy_j": cat("true_energy_j"),
            "true_prefill_j": cat("true_prefill_j"),
            "true_decode_j": cat("true_decode_j"),
        }
    )


def read_with_ingest(path: Path, kind: str, day) -> pa.Table:
    """A logger file loaded by the ingest's reader for its format, into a scratch warehouse: raw_telemetry."""
    from pipelines.ingest.loader import ingest_feed
    from pipelines.warehouse.connection import connect

    landing = path.parent.parent
    with tempfile.TemporaryDirectory() as scratch:
        con = connect(Path(scratch) / "w.duckdb")
        try:
            ingest_feed(con, "telemetry", landing, day, fmt=READER_FORMATS[kind])
            return con.sql(
                "SELECT device_id, ts, power_w, power_window_s, energy_counter_j FROM raw_telemetry "
                "ORDER BY device_id, ts"
            ).to_arrow_table()
        finally:
            con.close()


def telemetry_for(rule: Rule, tables: dict[str, pa.Table], read: dict[str, pa.Table]) -> pa.Table:
    """The telemetry a rule sees: the file through its reader, or one column of the logger's table."""
    if rule.column == "file":
        return read[rule.kind]
    t = tables[rule.kind]
    if rule.kind == "nvidia_smi_1s":
        instant = rule.column == "power.draw.instant"
        power = t["power_draw_instant_w"] if instant else t["power_draw_w"]
        return pa.table(
            {
                "device_id": t["device_id"],
                "ts": t["ts"],
                "power_w": power,
                "power_window_s": np.full(t.num_rows, 0.0 if instant else 1.0),
            }
        )
    return t.drop_columns(["energy_counter_j"])  # power only


@dataclass
class Score:
    rule: Rule
    group_median: float
    group_p90: float
    worst_regime: float
    request_median: float
    conservation: float
    regimes: dict


def _errors(attributed: np.ndarray, true: np.ndarray) -> np.ndarray:
    return np.abs(attributed - true) / np.where(true > 0, true, np.nan)


def score(rule: Rule, requests: pa.Table, telemetry: pa.Table, idle_w: dict | None = None) -> Score:
    """One rule's errors. idle_w: each device's idle power as its inventory row would give it, passed to a kernel
    that takes it (as the daily run passes the inventory's)."""
    kernel_in = requests.select(
        ["request_id", "device_id", "started_at", "first_token_at", "ended_at", "prompt_tokens", "completion_tokens"]
    )
    options = dict(rule.options)
    if idle_w is not None and "idle_w" in inspect.signature(attribute_energy).parameters:
        options["idle_w"] = idle_w
    if rule.use_phases:
        result = attribute_energy_by_phase(kernel_in, telemetry, **options)
    else:
        result = attribute_energy(kernel_in.drop_columns(["first_token_at"]), telemetry, **options)
    got = result.per_request.select(["request_id", "energy_j"])
    joined = requests.select(["request_id", "group", "true_energy_j"]).join(got, "request_id")
    attributed = np.nan_to_num(joined["energy_j"].to_numpy(zero_copy_only=False))
    true = joined["true_energy_j"].to_numpy()
    groups = joined["group"].to_numpy(zero_copy_only=False).astype(str)
    regimes = np.array([g.split("#")[0] for g in groups])
    gcodes, ginv = np.unique(groups, return_inverse=True)
    g_err = _errors(np.bincount(ginv, attributed), np.bincount(ginv, true))
    rcodes, rinv = np.unique(regimes, return_inverse=True)
    r_att, r_true = np.bincount(rinv, attributed), np.bincount(rinv, true)
    metered = result.metered_energy_j
    return Score(
        rule,
        float(np.nanmedian(g_err)),
        float(np.nanquantile(g_err, 0.9)),
        float(np.max(_errors(r_att, r_true))),
        float(np.nanmedian(_errors(attributed, true))),
        abs(metered - result.attributed_energy_j - result.idle_energy_j) / metered,
        {str(name): float((a - t) / t) for name, a, t in zip(rcodes, r_att, r_true)},
    )


def run_simulation(seed: int = 12, seconds: float = 600.0, rules: list[Rule] | None = None, folder=None):
    """Simulate, write the loggers' files, read them with the ingest, score every rule. Returns (scores, runs,
    requests table, logger tables)."""
    runs = simulate_fleet(seed, seconds)
    tables = logger_tables(runs, seed)
    day = datetime.fromtimestamp(runs[0].t0_us / 1e6, UTC).date()
    with tempfile.TemporaryDirectory() as scratch:
        paths = write_logger_files(Path(folder or scratch), tables, day.isoformat())
        read = {kind: read_with_ingest(path, kind, day) for kind, path in paths.items()}
    requests = requests_table(runs)
    idle_w = {run.device_id: run.regime.idle_w for run in runs}  # the simulated fleet's inventory
    scores = [score(rule, requests, telemetry_for(rule, tables, read), idle_w) for rule in rules or default_rules()]
    return scores, runs, requests, tables


def pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def table_text(scores: list[Score], requests: pa.Table, runs: list[DeviceRun]) -> str:
    """The side-by-side table (markdown), one row per telemetry kind and rule."""
    n_groups = len(set(requests["group"].to_pylist()))
    lines = [
        f"simulated {len(runs)} devices, {requests.num_rows:,} requests in {n_groups} phase groups "
        f"({', '.join(r.regime.name for r in runs)}); error = |attributed - true| / true",
        "",
        "| telemetry | rule | group median | group p90 | worst regime total | request median | conservation |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        lines.append(
            f"| {s.rule.kind} | {s.rule.label} | {pct(s.group_median)} | {pct(s.group_p90)} | "
            f"{pct(s.worst_regime)} | {pct(s.request_median)} | {s.conservation:.1e} |"
        )
    return "\n".join(lines)


__all__ = ["Rule", "Score", "default_rules", "run_simulation", "score", "table_text"]
