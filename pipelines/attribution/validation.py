"""Compare attributed energy with a measured ground truth (hardware counters, a meter, an engine's own log).

The ground truth is a CSV with a header and ``energy_j`` (joules) and either ``request_id`` (compared with the
request's attributed energy summed over its devices and pieces) or ``device_id, window_start, window_end``
(compared with the energy the telemetry meters on that device over the window, integrated by the kernel's rules).
A window bound is ISO 8601 (``2024-03-29T12:43:09Z``, ``2024-03-29 08:43:09-04:00``; without an offset it is UTC)
or unix seconds (``1711716189`` or ``1711716189.25``). An optional ``group`` column gives per-group totals (a
workload phase, a model, a batch size). A cell that cannot be read is a ``GroundTruthError`` naming the file, row
and column.

Pure DuckDB, Arrow and numpy; imports no Dagster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from pipelines.attribution.arrays import TS_TYPE
from pipelines.attribution.kernel import attribute_energy
from pipelines.settings import DEFAULT_MAX_GAP_S
from pipelines.warehouse.archive import with_lake


class GroundTruthError(ValueError):
    """A ground-truth file that cannot be read: the message names the file, row (1 = first data row) and column."""


_UNIX_SECONDS = re.compile(r"^[+-]?\d+(\.\d*)?$")


def parse_instant(text: str) -> datetime:
    """A UTC instant from ISO 8601 (no offset = UTC) or unix seconds; ValueError otherwise."""
    text = text.strip()
    if _UNIX_SECONDS.match(text):
        return datetime.fromtimestamp(float(text), UTC)
    moment = datetime.fromisoformat(text)  # Python 3.11: Z and offsets
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _column(truth: pa.Table, name: str, parse, path: Path, what: str) -> list:
    out = []
    for row, value in enumerate(truth[name].to_pylist(), start=1):
        try:
            if value is None or not value.strip():
                raise ValueError("empty")
            out.append(parse(value))
        except (ValueError, OverflowError, OSError):
            raise GroundTruthError(f"{path}: row {row}: {name} {value!r} is not {what}") from None
    return out


@dataclass
class ValidationReport:
    rows: list[dict]
    """Per ground-truth row: key, group, measured_j, attributed_j, error (relative, signed)."""
    groups: list[dict] = field(default_factory=list)
    missing: int = 0
    """Ground-truth rows with nothing to compare (unknown request, no telemetry)."""

    def abs_errors(self) -> np.ndarray:
        return np.array([abs(r["error"]) for r in self.rows])

    @property
    def median_abs_error(self) -> float:
        return float(np.median(self.abs_errors())) if self.rows else float("nan")

    @property
    def p90_abs_error(self) -> float:
        return float(np.quantile(self.abs_errors(), 0.9)) if self.rows else float("nan")

    def text(self) -> str:
        lines = [
            f"compared {len(self.rows)} rows ({self.missing} without attributed energy)",
            (
                f"|error| median {100 * self.median_abs_error:.2f} %, p90 {100 * self.p90_abs_error:.2f} %, "
                f"max {100 * (self.abs_errors().max() if self.rows else float('nan')):.2f} %"
            ),
            "group                     n      measured_j    attributed_j   total_error",
        ]
        for g in self.groups:
            lines.append(
                f"{str(g['group'])[:22]:22} {g['n']:4d} {g['measured_j']:15.1f} "
                f"{g['attributed_j']:15.1f} {100 * g['error']:11.2f} %"
            )
        return "\n".join(lines)


def _group_totals(rows: list[dict]) -> list[dict]:
    groups: dict = {}
    for r in rows:
        g = groups.setdefault(r["group"], {"group": r["group"], "n": 0, "measured_j": 0.0, "attributed_j": 0.0})
        g["n"] += 1
        g["measured_j"] += r["measured_j"]
        g["attributed_j"] += r["attributed_j"]
    out = sorted(groups.values(), key=lambda g: str(g["group"]))
    total = {
        "group": "(all)",
        "n": sum(g["n"] for g in out),
        "measured_j": sum(g["measured_j"] for g in out),
        "attributed_j": sum(g["attributed_j"] for g in out),
    }
    for g in out + [total]:
        g["error"] = (g["attributed_j"] - g["measured_j"]) / g["measured_j"] if g["measured_j"] else float("nan")
    return out + [total]


def _read_truth(con: duckdb.DuckDBPyConnection, path: Path) -> pa.Table:
    try:
        truth = con.sql(
            "SELECT * FROM read_csv($p, header = true, all_varchar = true)", params={"p": str(path)}
        ).to_arrow_table()
    except duckdb.Error as exc:
        raise GroundTruthError(f"{path}: not a readable CSV with a header ({str(exc).splitlines()[0]})") from None
    if "energy_j" not in truth.column_names:
        raise GroundTruthError(f"{path}: needs an energy_j column (joules); it has {', '.join(truth.column_names)}")
    return truth


def _per_request(con, truth: pa.Table, groups: list, measured: list) -> tuple[list[dict], int]:
    """Ground truth per request: the attributed energy of each logged request_id."""
    con.register("_truth", truth)
    got = dict(
        con.execute(
            "SELECT CAST(t.request_id AS VARCHAR), sum(p.energy_j) FROM _truth t "
            "JOIN request_energy_pieces p ON p.request_id = CAST(t.request_id AS VARCHAR) GROUP BY 1"
        ).fetchall()
    )
    con.unregister("_truth")
    rows, missing = [], 0
    for rid, g, m in zip(truth["request_id"].to_pylist(), groups, measured):
        if str(rid) not in got:
            missing += 1
            continue
        rows.append({"key": str(rid), "group": g, "measured_j": m, "attributed_j": got[str(rid)]})
    return rows, missing


def _window_energy_j(con, dev: str, ws, we, max_gap_s: float) -> float | None:
    """The energy telemetry attributes to one device window, None where it does not cover the whole window."""
    tel = con.sql(
        f"SELECT device_id, ts, power_w, power_window_s, energy_counter_j FROM {with_lake(con, 'raw_telemetry')} "
        "WHERE device_id = $d AND ts BETWEEN $lo::TIMESTAMPTZ - INTERVAL 1 MINUTE "
        "AND $hi::TIMESTAMPTZ + INTERVAL 1 MINUTE",
        params={"d": dev, "lo": ws, "hi": we},
    ).to_arrow_table()
    if tel.num_rows == 0:
        return None
    window = pa.table(
        {
            "request_id": ["w"],
            "device_id": [dev],
            "started_at": pa.array([ws], TS_TYPE),
            "ended_at": pa.array([we], TS_TYPE),
            "weight": [1.0],
        }
    )
    result = attribute_energy(window, tel, max_gap_s=max_gap_s)
    if result.per_request["unmetered_s"][0].as_py() > 0:
        return None
    return result.per_request["energy_j"][0].as_py()


def _per_window(
    con, truth: pa.Table, path: Path, groups: list, measured: list, max_gap_s: float
) -> tuple[list[dict], int]:
    """Ground truth per device window (window_start, window_end as ISO 8601 or unix seconds)."""
    what = "ISO 8601 or unix seconds"
    starts = _column(truth, "window_start", parse_instant, path, what)
    ends = _column(truth, "window_end", parse_instant, path, what)
    for row, (ws, we) in enumerate(zip(starts, ends), start=1):
        if we <= ws:
            raise GroundTruthError(
                f"{path}: row {row}: window_end {we.isoformat()} is not after window_start {ws.isoformat()}"
            )
    rows, missing = [], 0
    for dev, ws, we, g, m in zip(truth["device_id"].to_pylist(), starts, ends, groups, measured):
        attributed = _window_energy_j(con, str(dev), ws, we, max_gap_s)
        if attributed is None:
            missing += 1
            continue
        rows.append({"key": f"{dev} {ws.isoformat()}", "group": g, "measured_j": m, "attributed_j": attributed})
    return rows, missing


def validate_energy(
    con: duckdb.DuckDBPyConnection, ground_truth: Path, *, max_gap_s: float = DEFAULT_MAX_GAP_S
) -> ValidationReport:
    path = Path(ground_truth)
    truth = _read_truth(con, path)
    cols = set(truth.column_names)
    groups = truth["group"].to_pylist() if "group" in cols else [None] * truth.num_rows
    measured = _column(truth, "energy_j", float, path, "a number of joules")
    if "request_id" in cols:
        rows, missing = _per_request(con, truth, groups, measured)
    elif {"device_id", "window_start", "window_end"} <= cols:
        rows, missing = _per_window(con, truth, path, groups, measured, max_gap_s)
    else:
        raise GroundTruthError(
            f"{path}: needs request_id, or device_id, window_start and window_end (it has "
            f"{', '.join(truth.column_names)})"
        )
    for r in rows:
        r["error"] = (r["attributed_j"] - r["measured_j"]) / r["measured_j"] if r["measured_j"] else float("nan")
    return ValidationReport(rows=rows, groups=_group_totals(rows), missing=missing)
