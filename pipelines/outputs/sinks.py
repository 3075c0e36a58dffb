"""Where alerts go. Sinks come from environment variables only (secrets never live in files, logs or the UI):

| sink | variables |
|---|---|
| Slack-compatible incoming webhook | INFERCOST_ALERT_SLACK_WEBHOOK_URL |
| generic JSON webhook, HMAC-signed | INFERCOST_ALERT_WEBHOOK_URL, INFERCOST_ALERT_WEBHOOK_SECRET |
| email over SMTP | INFERCOST_ALERT_SMTP_HOST, _PORT (25), _USER, _PASSWORD, _FROM, _TO (comma-separated), _STARTTLS |
| local JSONL file | INFERCOST_ALERT_JSONL_PATH |

The JSON webhook's body is signed: header ``X-Infercost-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>.<body>" with the secret>`` and ``X-Infercost-Timestamp``.

A sink raises ``SendError`` whose message is the kind of failure only, never a URL or credential.

Pure Python; imports no Dagster.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import smtplib
import time
import urllib.error
import urllib.request
from dataclasses import asdict
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.settings import AlertSettings

if TYPE_CHECKING:
    from pipelines.outputs.alerts import Alert


class Sink:
    name = "sink"

    def send(self, alerts: list[Alert]) -> None:  # raises on failure
        raise NotImplementedError

    def warnings(self) -> list[str]:
        """Risks in how the sink is configured, reported once per delivery."""
        return []


def _post(url: str, body: bytes, headers: dict, timeout: float = 10.0) -> None:
    try:
        req = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json", **headers}, method="POST"
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            if resp.status >= 300:
                raise SendError(f"HTTP {resp.status}")
    except urllib.error.HTTPError as exc:
        raise SendError(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        # the URL may hold a token: report the kind of failure only
        raise SendError(type(getattr(exc, "reason", exc)).__name__) from None
    except (ValueError, http.client.InvalidURL) as exc:
        # a malformed URL (a space, no scheme, a non-ASCII character): its text would show the token
        raise SendError(type(exc).__name__, retryable=False) from None
    except http.client.HTTPException as exc:
        raise SendError(type(exc).__name__) from None


class SendError(RuntimeError):
    """A send failed; the message (the kind of failure) never contains the sink's URL or credentials. A failure
    that a retry cannot mend (a malformed URL, a password that cannot be encoded) is not retried."""

    def __init__(self, kind: str, retryable: bool = True):
        super().__init__(kind)
        self.retryable = retryable


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
        except UnicodeError as exc:
            # smtplib sends credentials and addresses as ASCII; the error's text would quote the character
            raise SendError(f"{type(exc).__name__}: a credential or address is not ASCII", retryable=False) from None
        except smtplib.SMTPAuthenticationError:
            raise SendError("SMTPAuthenticationError", retryable=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise SendError(type(exc).__name__) from None

    def warnings(self):
        if self._user and not self._starttls:
            return ["smtp: the user and password are sent without TLS (set INFERCOST_ALERT_SMTP_STARTTLS=true)"]
        return []


class JsonlFile(Sink):
    name = "jsonl"

    def __init__(self, path: str):
        self._path = Path(path)

    def send(self, alerts):
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._path, "a") as f:
            f.writelines(json.dumps(asdict(a), default=str) + "\n" for a in alerts)


def sinks_from_env(env: dict | None = None) -> list[Sink]:
    """The sinks the INFERCOST_ALERT_* variables configure (``env``, else the process environment)."""
    alerts = AlertSettings.from_env(os.environ if env is None else env)
    sinks: list[Sink] = []
    if alerts.slack_webhook_url:
        sinks.append(SlackWebhook(alerts.slack_webhook_url))
    if alerts.webhook_url:
        sinks.append(JsonWebhook(alerts.webhook_url, alerts.webhook_secret))
    if alerts.smtp_host:
        sinks.append(
            SmtpEmail(
                alerts.smtp_host,
                alerts.smtp_port,
                alerts.smtp_user,
                alerts.smtp_password,
                alerts.smtp_from,
                list(alerts.smtp_to),
                alerts.smtp_starttls,
            )
        )
    if alerts.jsonl_path:
        sinks.append(JsonlFile(alerts.jsonl_path))
    return sinks
