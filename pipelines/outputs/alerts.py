"""Alerts: cost anomalies and failed data-quality checks, delivered to the sinks the user configures.

Sinks come from environment variables only (secrets never live in files, logs or the UI):

| sink | variables |
|---|---|
| Slack-compatible incoming webhook | INFERCOST_ALERT_SLACK_WEBHOOK_URL |
| generic JSON webhook, HMAC-signed | INFERCOST_ALERT_WEBHOOK_URL, INFERCOST_ALERT_WEBHOOK_SECRET |
| email over SMTP | INFERCOST_ALERT_SMTP_HOST, _PORT (25), _USER, _PASSWORD, _FROM, _TO (comma-separated), _STARTTLS |
| local JSONL file | INFERCOST_ALERT_JSONL_PATH |

The JSON webhook's body is signed: header ``X-Infercost-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>.<body>" with the secret>`` and ``X-Infercost-Timestamp``. Sends retry with exponential backoff; an
alert a sink accepted is recorded in ``$INFERCOST_HOME/alerts/sent.json`` and never sent to that sink again, so a
re-run does not alert twice.

Pure Python; imports no Dagster.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import smtplib
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from pathlib import Path

import duckdb

from pipelines.settings import AlertSettings
from pipelines.warehouse.connection import infercost_home, table_exists


@dataclass(frozen=True)
class Alert:
    key: str
    kind: str  # cost_anomaly | quality_check
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
            alerts.append(Alert(
                key=f"anomaly:{aid}", kind="cost_anomaly", day=str(day),
                title=f"Cost anomaly: {metric} of {dim} {key} on {day}",
                text=(f"{metric} was {observed:.4g} against an expected {expected:.4g} ({effect:+.0f} %, score "
                      f"{score:.1f}); likely cause: {cause}"),
                details={"dimension": dim, "series_key": key, "metric": metric, "expected": expected,
                         "observed": observed, "score": score, "effect_pct": effect, "likely_cause": cause},
            ))
    if table_exists(con, "quality_check_results"):
        for day, check, description, failures in con.execute(
            # unexpected_sample holds each failed expectation in words with the offending values it names
            "SELECT partition_date, check_name, any_value(description), "
            "string_agg(coalesce(nullif(unexpected_sample, ''), expectation), '; ' ORDER BY expectation, column_name) "
            "FROM quality_check_results WHERE NOT success GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall():
            alerts.append(Alert(
                key=f"check:{day}:{check}", kind="quality_check", day=str(day),
                title=f"Data-quality check failed: {check} on {day}",
                text=f"{description} Failed: {failures}",
                details={"check": check, "failures": failures},
            ))
    return alerts


class Sink:
    name = "sink"

    def send(self, alerts: list[Alert]) -> None:  # raises on failure
        raise NotImplementedError


def _post(url: str, body: bytes, headers: dict, timeout: float = 10.0) -> None:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers},
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            if resp.status >= 300:
                raise SendError(f"HTTP {resp.status}")
    except urllib.error.HTTPError as exc:
        raise SendError(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        # the URL may hold a token: report the kind of failure only
        raise SendError(type(getattr(exc, "reason", exc)).__name__) from None


class SendError(RuntimeError):
    """A send failed; the message never contains the sink's URL or credentials."""


class SlackWebhook(Sink):
    name = "slack"

    def __init__(self, url: str):
        self._url = url

    def send(self, alerts):
        lines = [f"*infercost: {len(alerts)} alert(s)*"] + [f"- *{a.title}*: {a.text}" for a in alerts]
        _post(self._url, json.dumps({"text": "\n".join(lines)}).encode(), {})


class JsonWebhook(Sink):
    name = "webhook"

    def __init__(self, url: str, secret: str | None):
        self._url = url
        self._secret = secret

    def send(self, alerts):
        body = json.dumps({"source": "infercost", "alerts": [asdict(a) for a in alerts]}, default=str).encode()
        headers = {}
        if self._secret:
            stamp = str(int(time.time()))
            headers["X-Infercost-Timestamp"] = stamp
            headers["X-Infercost-Signature"] = "sha256=" + sign(self._secret, stamp, body)
        _post(self._url, body, headers)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class SmtpEmail(Sink):
    name = "smtp"

    def __init__(self, host, port, user, password, sender, recipients, starttls):
        self._host, self._port, self._user, self._password = host, port, user, password
        self._sender, self._recipients, self._starttls = sender, recipients, starttls

    def send(self, alerts):
        msg = EmailMessage()
        msg["Subject"] = f"infercost: {len(alerts)} alert(s)" + (f" - {alerts[0].title}" if len(alerts) == 1 else "")
        msg["From"] = self._sender
        msg["To"] = ", ".join(self._recipients)
        msg.set_content("\n\n".join(f"{a.title}\n{a.text}" for a in alerts))
        try:
            with smtplib.SMTP(self._host, self._port, timeout=10) as smtp:
                if self._starttls:
                    smtp.starttls()
                if self._user:
                    smtp.login(self._user, self._password or "")
                smtp.send_message(msg)
        except (smtplib.SMTPException, OSError) as exc:
            raise SendError(type(exc).__name__) from None


class JsonlFile(Sink):
    name = "jsonl"

    def __init__(self, path: str):
        self._path = Path(path)

    def send(self, alerts):
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._path, "a") as f:
            for a in alerts:
                f.write(json.dumps(asdict(a), default=str) + "\n")


def sinks_from_env(env: dict | None = None) -> list[Sink]:
    """The sinks the INFERCOST_ALERT_* variables configure (``env``, else the process environment)."""
    alerts = AlertSettings.from_env(os.environ if env is None else env)
    sinks: list[Sink] = []
    if alerts.slack_webhook_url:
        sinks.append(SlackWebhook(alerts.slack_webhook_url))
    if alerts.webhook_url:
        sinks.append(JsonWebhook(alerts.webhook_url, alerts.webhook_secret))
    if alerts.smtp_host:
        sinks.append(SmtpEmail(alerts.smtp_host, alerts.smtp_port, alerts.smtp_user, alerts.smtp_password,
                               alerts.smtp_from, list(alerts.smtp_to), alerts.smtp_starttls))
    if alerts.jsonl_path:
        sinks.append(JsonlFile(alerts.jsonl_path))
    return sinks


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
    failed: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        parts = [f"{name}: {n} sent" for name, n in self.sent.items()]
        parts += [f"{name}: failed ({why}), will retry" for name, why in self.failed.items()]
        return "; ".join(parts) or "nothing to send"


def deliver(alerts: list[Alert], sinks: list[Sink], *, state_file: Path | None = None, attempts: int = 4,
            backoff_s: float = 0.5, log=lambda msg: None) -> DeliveryReport:
    """Send each sink the alerts it has not accepted yet, in one batch, with retries and backoff."""
    state_file = state_file or state_path()
    state = _load_state(state_file)
    report = DeliveryReport()
    for sink in sinks:
        done = set(state.get(sink.name, []))
        todo = [a for a in alerts if a.key not in done]
        if not todo:
            continue
        for attempt in range(attempts):
            try:
                sink.send(todo)
            except SendError as exc:
                log(f"alert sink {sink.name}: attempt {attempt + 1} failed ({exc})")
                if attempt + 1 < attempts:
                    time.sleep(backoff_s * 2**attempt)
                else:
                    report.failed[sink.name] = str(exc)
                continue
            state[sink.name] = sorted(done | {a.key for a in todo})
            _save_state(state_file, state)
            report.sent[sink.name] = len(todo)
            log(f"alert sink {sink.name}: sent {len(todo)} alert(s)")
            break
    return report
