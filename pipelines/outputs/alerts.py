"""Alerts: cost anomalies and failed data-quality checks, delivered to the sinks the user configures
(pipelines/outputs/sinks.py).

Sends retry with exponential backoff; an alert a sink accepted is recorded in ``$INFERCOST_HOME/alerts/sent.json``
and never sent to that sink again, so a re-run does not alert twice.

Secrets stay out of errors: every failure of a sink is caught and reported by the sink's name and the kind of
failure only (``InvalidURL``, ``HTTP 503``, ``UnicodeEncodeError``), never the URL, token, password or the
exception's text, which may hold them; the other sinks are still tried. Alerts are read from the published copy
(``collect_published``), which no run locks, so reading them never delays or fails a run.

Pure Python; imports no Dagster.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines.outputs.sinks import SendError, Sink, sign, sinks_from_env  # noqa: F401 - the sinks' API, here too
from pipelines.warehouse.connection import connect, infercost_home, table_exists
from pipelines.warehouse.publish import published_path


@dataclass(frozen=True)
class Alert:
    key: str
    kind: str  # cost_anomaly | quality_check | budget
    day: str
    title: str
    text: str
    details: dict = field(default_factory=dict)


def collect(con: duckdb.DuckDBPyConnection) -> list[Alert]:
    """Every alertable finding in the warehouse (anomalies and failed checks), oldest first."""
    alerts = []
    if table_exists(con, "cost_anomalies"):
        for row in con.execute(
            "SELECT anomaly_id, day, dimension, series_key, metric, expected, observed, score, effect_pct, "
            "likely_cause FROM cost_anomalies ORDER BY day, dimension, series_key, metric"
        ).fetchall():
            aid, day, dim, key, metric, expected, observed, score, effect, cause = row
            alerts.append(
                Alert(
                    key=f"anomaly:{aid}",
                    kind="cost_anomaly",
                    day=str(day),
                    title=f"Cost anomaly: {metric} of {dim} {key} on {day}",
                    text=(
                        f"{metric} was {observed:.4g} against an expected {expected:.4g} ({effect:+.0f} %, score "
                        f"{score:.1f}); likely cause: {cause}"
                    ),
                    details={
                        "dimension": dim,
                        "series_key": key,
                        "metric": metric,
                        "expected": expected,
                        "observed": observed,
                        "score": score,
                        "effect_pct": effect,
                        "likely_cause": cause,
                    },
                )
            )
    if table_exists(con, "quality_check_results"):
        for day, check, description, failures in con.execute(
            # unexpected_sample holds each failed expectation in words with the offending values it names
            "SELECT partition_date, check_name, any_value(description), "
            "string_agg(coalesce(nullif(unexpected_sample, ''), expectation), '; ' ORDER BY expectation, column_name) "
            "FROM quality_check_results WHERE NOT success GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall():
            alerts.append(
                Alert(
                    key=f"check:{day}:{check}",
                    kind="quality_check",
                    day=str(day),
                    title=f"Data-quality check failed: {check} on {day}",
                    text=f"{description} Failed: {failures}",
                    details={"check": check, "failures": failures},
                )
            )
    return alerts + _budget_alerts(con)


def _budget_alerts(con: duckdb.DuckDBPyConnection) -> list[Alert]:
    """A budget over, or forecast over, its limit: one alert per budget, month and status (a budget that goes from
    forecast over to over alerts twice, never daily)."""
    if not table_exists(con, "budget_status"):
        return []
    rows = con.execute(
        "SELECT budget, scope, unit, month, as_of, limit_amount, spent_to_date, forecast_month_end, status "
        "FROM budget_status WHERE status <> 'ok' "
        "QUALIFY as_of = max(as_of) OVER (PARTITION BY budget, month) ORDER BY month, budget"
    ).fetchall()
    alerts = []
    for name, scope, unit, month, as_of, limit, spent, forecast, status in rows:
        verb = "is over" if status == "over" else "is forecast to exceed"
        alerts.append(
            Alert(
                key=f"budget:{name}:{month:%Y-%m}:{status}",
                kind="budget",
                day=str(as_of),
                title=f"Budget {name} ({scope}) {verb} its limit for {month:%Y-%m}",
                text=(
                    f"spent {spent:,.2f} {unit} through {as_of} of {limit:,.2f}; forecast {forecast:,.2f} {unit} "
                    f"({100 * forecast / limit:.0f} % of the limit) by the month's end"
                ),
                details={"budget": name, "scope": scope, "unit": unit, "status": status, "forecast": forecast},
            )
        )
    return alerts


def collect_published(path: Path | None = None) -> list[Alert]:
    """The alerts in the published copy of the warehouse, which no run locks (the live file is the runs')."""
    path = Path(path or published_path())
    if not path.exists():
        raise FileNotFoundError(f"no published warehouse at {path}: run `infercost materialize` first")
    with connect(path, read_only=True) as con:
        return collect(con)


def state_path() -> Path:
    return infercost_home() / "alerts" / "sent.json"


def _load_state(path: Path) -> dict[str, list[str]]:
    return json.loads(path.read_text()) if path.exists() else {}


def _save_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    tmp.replace(path)


@dataclass
class DeliveryReport:
    sent: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # sink -> kind of failure (never its text)
    warnings: list[str] = field(default_factory=list)

    def text(self) -> str:
        parts = [f"{name}: {n} sent" for name, n in self.sent.items()]
        parts += [f"{name}: failed ({why}), will retry" for name, why in self.failed.items()]
        parts += [f"warning: {w}" for w in self.warnings]
        return "; ".join(parts) or "nothing to send"


def _failure_kind(exc: Exception) -> tuple[str, bool]:
    """What to report of a failed send, and whether to retry: a SendError's message is safe by construction; of
    any other exception only its class name is (its text may quote a URL or a password)."""
    if isinstance(exc, SendError):
        return str(exc), exc.retryable
    return type(exc).__name__, False


def deliver(
    alerts: list[Alert],
    sinks: list[Sink],
    *,
    state_file: Path | None = None,
    attempts: int = 4,
    backoff_s: float = 0.5,
    log=lambda msg: None,
) -> DeliveryReport:
    """Send each sink the alerts it has not accepted yet, in one batch, with retries and backoff. A sink's failure
    never stops the others and is reported by its kind only."""
    state_file = state_file or state_path()
    state = _load_state(state_file)
    report = DeliveryReport()
    for sink in sinks:
        done = set(state.get(sink.name, []))
        todo = [a for a in alerts if a.key not in done]
        if not todo:
            continue
        for warning in sink.warnings():
            log(f"alert sink {warning}")
            report.warnings.append(warning)
        for attempt in range(attempts):
            try:
                sink.send(todo)
            except Exception as exc:  # noqa: BLE001 - any failure of one sink is reported, and the next tried
                kind, retryable = _failure_kind(exc)
                log(f"alert sink {sink.name}: attempt {attempt + 1} failed ({kind})")
                if retryable and attempt + 1 < attempts:
                    time.sleep(backoff_s * 2**attempt)
                    continue
                report.failed[sink.name] = kind
                break
            state[sink.name] = sorted(done | {a.key for a in todo})
            _save_state(state_file, state)
            report.sent[sink.name] = len(todo)
            log(f"alert sink {sink.name}: sent {len(todo)} alert(s)")
            break
    return report
