"""Secrets stay out of errors: a malformed webhook URL, a non-ASCII SMTP password and unreachable hosts fail their
sink only, reported by name and kind, with no token or password in any output, and the other sinks still deliver."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from pipelines.outputs.alerts import deliver, sinks_from_env
from tests.test_alerts import ALERTS, Mailbox, Receiver, free_port

REPO = Path(__file__).resolve().parents[1]
TOKEN = "xoxb-T0KEN-never-print-me"
PASSWORD = "pässwörd-Σ-never-print-me"
SECRETS = [TOKEN, PASSWORD, "pässwörd", "Σ", "\\xe4", "\\u03a3", "never-print-me"]


def assert_no_secret(*texts):
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, (secret, text[-500:])


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def smtp_with_auth():
    """A real SMTP server on 127.0.0.1 that offers AUTH without TLS and accepts any credentials."""
    box = Mailbox()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=free_port(),
        auth_require_tls=False,
        authenticator=lambda *args: AuthResult(success=True),
    )
    controller.start()
    yield controller, box
    controller.stop()


def test_bad_url_and_non_ascii_password_fail_alone_and_say_nothing_secret(
    receiver, smtp_with_auth, tmp_path, capfd, caplog
):
    controller, box = smtp_with_auth
    jsonl = tmp_path / "alerts.jsonl"
    env = {
        "INFERCOST_ALERT_SLACK_WEBHOOK_URL": f"{receiver.url}/services/{TOKEN} /x",  # a space: InvalidURL
        "INFERCOST_ALERT_WEBHOOK_URL": receiver.url + "/hook",
        "INFERCOST_ALERT_SMTP_HOST": "127.0.0.1",
        "INFERCOST_ALERT_SMTP_PORT": str(controller.port),
        "INFERCOST_ALERT_SMTP_USER": "alerts",
        "INFERCOST_ALERT_SMTP_PASSWORD": PASSWORD,
        "INFERCOST_ALERT_SMTP_TO": "finops@example.test",
        "INFERCOST_ALERT_JSONL_PATH": str(jsonl),
    }
    logs = []
    with caplog.at_level(logging.DEBUG):
        report = deliver(
            ALERTS, sinks_from_env(env), state_file=tmp_path / "sent.json", backoff_s=0.01, log=logs.append
        )
    assert report.failed == {"slack": "InvalidURL", "smtp": "UnicodeEncodeError: a credential or address is not ASCII"}
    assert report.sent == {"webhook": 2, "jsonl": 2}
    # a malformed URL or password does not heal: one attempt each, not four
    assert sum("slack: attempt" in m for m in logs) == 1 and sum("smtp: attempt" in m for m in logs) == 1
    # the sinks after the failed ones still received the alerts
    assert [r["path"] for r in receiver.requests] == ["/hook"]
    assert len(jsonl.read_text().splitlines()) == 2
    assert box.messages == []
    # the login went out without TLS: said once
    assert report.warnings == [w for w in report.warnings if "without TLS" in w] and len(report.warnings) == 1
    assert "without TLS" in report.text()
    out, err = capfd.readouterr()
    assert_no_secret(
        "\n".join(logs),
        report.text(),
        json.dumps(report.failed),
        out,
        err,
        caplog.text,
        (tmp_path / "sent.json").read_text(),
    )


def test_unreachable_hosts_fail_without_leaking_and_the_file_sink_still_gets_the_alerts(tmp_path, capfd):
    jsonl = tmp_path / "alerts.jsonl"
    env = {
        "INFERCOST_ALERT_SLACK_WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/services/{TOKEN}",
        "INFERCOST_ALERT_WEBHOOK_URL": f"http://unreachable.invalid/hook?token={TOKEN}",
        "INFERCOST_ALERT_SMTP_HOST": "127.0.0.1",
        "INFERCOST_ALERT_SMTP_PORT": str(free_port()),
        "INFERCOST_ALERT_SMTP_USER": "alerts",
        "INFERCOST_ALERT_SMTP_PASSWORD": PASSWORD,
        "INFERCOST_ALERT_SMTP_STARTTLS": "true",
        "INFERCOST_ALERT_SMTP_TO": "finops@example.test",
        "INFERCOST_ALERT_JSONL_PATH": str(jsonl),
    }
    logs = []
    report = deliver(
        ALERTS, sinks_from_env(env), state_file=tmp_path / "sent.json", attempts=2, backoff_s=0.01, log=logs.append
    )
    assert set(report.failed) == {"slack", "webhook", "smtp"} and report.sent == {"jsonl": 2}
    assert report.failed["slack"] == "ConnectionRefusedError" and report.failed["smtp"] == "ConnectionRefusedError"
    assert report.warnings == []  # STARTTLS is on
    assert len(jsonl.read_text().splitlines()) == 2
    out, err = capfd.readouterr()
    assert_no_secret("\n".join(logs), report.text(), out, err)


def test_a_sink_raising_anything_else_is_reported_by_class_name_only(tmp_path):
    from pipelines.outputs.sinks import JsonlFile, Sink

    class Leaky(Sink):
        name = "leaky"

        def send(self, alerts):
            raise KeyError(f"https://hooks.example/{TOKEN}")

    jsonl = tmp_path / "a.jsonl"
    logs = []
    report = deliver(ALERTS, [Leaky(), JsonlFile(str(jsonl))], state_file=tmp_path / "sent.json", log=logs.append)
    assert report.failed == {"leaky": "KeyError"} and report.sent == {"jsonl": 2}
    assert_no_secret("\n".join(logs), report.text())


def test_the_sensor_and_alerts_send_keep_a_bad_url_to_themselves(receiver, tmp_path, monkeypatch):
    """The two ways alerts go out: the Dagster sensor (whose messages Dagster stores and shows) and
    `infercost alerts send` from cron (stdout and stderr)."""
    import dagster as dg

    from pipelines.defs.alerts import alert_sensor
    from pipelines.warehouse.connection import connect
    from pipelines.warehouse.publish import publish
    from pipelines.warehouse.tables import create_sql

    env = {
        "INFERCOST_HOME": str(tmp_path),
        "INFERCOST_WAREHOUSE": str(tmp_path / "w.duckdb"),
        "INFERCOST_ALERT_SLACK_WEBHOOK_URL": f"{receiver.url}/services/{TOKEN} /x",
        "INFERCOST_ALERT_WEBHOOK_URL": receiver.url + "/hook",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with connect(tmp_path / "w.duckdb") as con:
        con.execute(create_sql("cost_anomalies"))
        con.execute(
            "INSERT INTO cost_anomalies VALUES ('abc', DATE '2026-11-08', 'model', 'm', "
            "'j_per_output_token', 3.0, 4.5, 9.0, 50.0, 'slower decoding (throttling?)', now())"
        )
        publish(con)
    result = alert_sensor(dg.build_sensor_context())
    assert "slack: failed (InvalidURL)" in result.skip_message and "webhook: 1 sent" in result.skip_message
    assert_no_secret(result.skip_message)
    (tmp_path / "alerts" / "sent.json").unlink()
    cli = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "alerts", "send"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={**os.environ, **env},
        timeout=300,
    )
    assert cli.returncode == 1 and "slack: failed (InvalidURL)" in cli.stdout, cli.stdout + cli.stderr
    assert_no_secret(cli.stdout, cli.stderr)
    assert [r["path"] for r in receiver.requests] == ["/hook", "/hook"]
