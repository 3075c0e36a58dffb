"""Alert delivery to a real HTTP server and a real SMTP server on 127.0.0.1: content, signature, retries, no
duplicates, no secrets in logs."""

import json
import socket
import subprocess
import sys
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from pipelines.outputs.alerts import Alert, deliver, sign, sinks_from_env

ALERTS = [
    Alert(
        key="anomaly:1",
        kind="cost_anomaly",
        day="2026-11-08",
        title="Cost anomaly: j_per_output_token",
        text="+40 %",
        details={"likely_cause": "slower decoding (throttling?)"},
    ),
    Alert(
        key="check:2026-11-08:prices_within_bounds",
        kind="quality_check",
        day="2026-11-08",
        title="Data-quality check failed: prices_within_bounds",
        text="1 unexpected",
    ),
]
SECRET = "s3cr3t-hmac-key"


class Receiver:
    """An HTTP server that records every POST; the first ``fail_first`` requests get a 503."""

    def __init__(self, fail_first=0):
        self.requests = []
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.fail_first > 0:
                    outer.fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content))
        return "250 OK"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_slack_and_signed_webhook_receive_the_alerts_once(receiver, tmp_path):
    env = {
        "INFERCOST_ALERT_SLACK_WEBHOOK_URL": receiver.url + "/slack/T000/B000/tokenpart",
        "INFERCOST_ALERT_WEBHOOK_URL": receiver.url + "/hook",
        "INFERCOST_ALERT_WEBHOOK_SECRET": SECRET,
    }
    logs = []
    report = deliver(ALERTS, sinks_from_env(env), state_file=tmp_path / "sent.json", log=logs.append)
    assert report.sent == {"slack": 2, "webhook": 2} and not report.failed
    slack = next(r for r in receiver.requests if r["path"].startswith("/slack"))
    assert "prices_within_bounds" in json.loads(slack["body"])["text"]
    hook = next(r for r in receiver.requests if r["path"] == "/hook")
    payload = json.loads(hook["body"])
    assert [a["key"] for a in payload["alerts"]] == [a.key for a in ALERTS]
    assert payload["alerts"][0]["details"]["likely_cause"] == "slower decoding (throttling?)"
    stamp = hook["headers"]["X-Infercost-Timestamp"]
    assert hook["headers"]["X-Infercost-Signature"] == "sha256=" + sign(SECRET, stamp, hook["body"])
    # a re-run sends nothing new
    again = deliver(ALERTS, sinks_from_env(env), state_file=tmp_path / "sent.json", log=logs.append)
    assert again.sent == {} and len(receiver.requests) == 2
    # only the new alert goes out
    new = Alert(key="anomaly:2", kind="cost_anomaly", day="2026-11-09", title="t", text="x")
    deliver(ALERTS + [new], sinks_from_env(env), state_file=tmp_path / "sent.json")
    last = json.loads(receiver.requests[-1]["body"])
    assert [a["key"] for a in last["alerts"]] == ["anomaly:2"]
    assert not any("tokenpart" in m or SECRET in m for m in logs)


def test_retries_with_backoff_then_succeeds(tmp_path):
    flaky = Receiver(fail_first=2)
    try:
        logs = []
        report = deliver(
            ALERTS,
            sinks_from_env({"INFERCOST_ALERT_WEBHOOK_URL": flaky.url + "/x?token=abc123"}),
            state_file=tmp_path / "sent.json",
            backoff_s=0.01,
            log=logs.append,
        )
        assert report.sent == {"webhook": 2}
        assert sum("failed (HTTP 503)" in m for m in logs) == 2
        assert not any("abc123" in m for m in logs)
    finally:
        flaky.close()


def test_unreachable_sink_fails_without_recording_and_without_leaking(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/hook?key=topsecret"
    logs = []
    report = deliver(
        ALERTS,
        sinks_from_env({"INFERCOST_ALERT_WEBHOOK_URL": url}),
        state_file=tmp_path / "sent.json",
        attempts=2,
        backoff_s=0.01,
        log=logs.append,
    )
    assert "webhook" in report.failed and not report.sent
    assert not (tmp_path / "sent.json").exists()  # nothing recorded: the next run tries again
    assert not any("topsecret" in m for m in logs) and "topsecret" not in report.text()


def test_email_over_smtp(tmp_path):
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        env = {
            "INFERCOST_ALERT_SMTP_HOST": "127.0.0.1",
            "INFERCOST_ALERT_SMTP_PORT": str(port),
            "INFERCOST_ALERT_SMTP_FROM": "infercost@example.test",
            "INFERCOST_ALERT_SMTP_TO": "finops@example.test, oncall@example.test",
        }
        report = deliver(ALERTS, sinks_from_env(env), state_file=tmp_path / "sent.json")
        assert report.sent == {"smtp": 2}
        ((rcpts, content),) = box.messages
        assert rcpts == ["finops@example.test", "oncall@example.test"]
        msg = message_from_bytes(content)
        assert msg["Subject"] == "infercost: 2 alert(s)"
        assert "prices_within_bounds" in msg.get_payload()
    finally:
        controller.stop()


def test_jsonl_sink(tmp_path):
    path = tmp_path / "alerts.jsonl"
    deliver(ALERTS, sinks_from_env({"INFERCOST_ALERT_JSONL_PATH": str(path)}), state_file=tmp_path / "sent.json")
    deliver(ALERTS, sinks_from_env({"INFERCOST_ALERT_JSONL_PATH": str(path)}), state_file=tmp_path / "sent.json")
    lines = path.read_text().splitlines()
    assert [json.loads(x)["key"] for x in lines] == [a.key for a in ALERTS]


def test_the_dagster_sensor_delivers_new_alerts_once_from_the_published_copy(receiver, tmp_path, monkeypatch):
    import dagster as dg

    from pipelines.defs.alerts import alert_sensor
    from pipelines.warehouse.connection import connect
    from pipelines.warehouse.publish import publish
    from pipelines.warehouse.tables import create_sql

    live = tmp_path / "w.duckdb"
    monkeypatch.setenv("INFERCOST_HOME", str(tmp_path))
    monkeypatch.setenv("INFERCOST_WAREHOUSE", str(live))
    monkeypatch.setenv("INFERCOST_ALERT_WEBHOOK_URL", receiver.url + "/hook")
    with connect(live) as con:
        con.execute(create_sql("cost_anomalies"))
        con.execute(
            "INSERT INTO cost_anomalies VALUES ('abc', DATE '2026-11-08', 'model', 'm', "
            "'j_per_output_token', 3.0, 4.5, 9.0, 50.0, 'slower decoding (throttling?)', now())"
        )
    assert "no published warehouse" in alert_sensor(dg.build_sensor_context()).skip_message
    with connect(live) as con:
        publish(con)
    monkeypatch.delenv("INFERCOST_ALERT_WEBHOOK_URL")
    assert "no alert sinks" in alert_sensor(dg.build_sensor_context()).skip_message
    monkeypatch.setenv("INFERCOST_ALERT_WEBHOOK_URL", receiver.url + "/hook")
    # another process holds the live file for writing all along: the sensor reads the published copy regardless
    hold = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(live)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        first = alert_sensor(dg.build_sensor_context())
        second = alert_sensor(dg.build_sensor_context())
    finally:
        holder.kill()
        holder.wait()
    assert "webhook: 1 sent" in first.skip_message and second.skip_message == "nothing to send"
    (req,) = receiver.requests
    assert json.loads(req["body"])["alerts"][0]["details"]["likely_cause"] == "slower decoding (throttling?)"
