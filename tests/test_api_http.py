"""The allocation API over real HTTP: `infercost api` started as a subprocess on a free port, asked with urllib,
stopped by its PID. The warehouse is test_allocation's hand-worked one, published where the server looks."""

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import duckdb
import jsonschema
import pytest

from pipelines.outputs.allocation import allocate
from tests.conftest import REPO, cli_env
from tests.test_allocation import build_warehouse

TOKEN = "s3cret-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """The local IPv4 addresses a socket listens on at ``port`` (from /proc/net/tcp, state 0A = LISTEN)."""
    out = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            out.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return out


def get(base: str, path: str, token: str | None = TOKEN) -> tuple[int, str, str]:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["content-type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["content-type"], exc.read().decode()


def wait_until_up(base: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the API exited early: {process.stderr.read().decode()}"
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the API did not answer on {base} in {timeout} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("api")
    published = home / "published" / "warehouse.duckdb"
    port = free_port()
    env = cli_env(home=home, INFERCOST_API_TOKEN=TOKEN, INFERCOST_API_PORT=str(port))
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "api"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process)
        yield base, published, port
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down, then re-raises the signal to die of it as a plain process would
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert not listening_addresses(port)


def test_before_anything_is_published_the_api_says_so_then_serves_the_new_copy(server):
    base, published, port = server
    assert listening_addresses(port) == {"127.0.0.1"}  # bound to loopback unless configured
    status, _, body = get(base, "/allocation?window=2d")
    assert status == 503 and "no published warehouse" in json.loads(body)["error"]
    published.parent.mkdir(parents=True, exist_ok=True)
    build_warehouse(published)
    status, _, body = get(base, "/allocation?window=2d&aggregate=model")
    assert status == 200 and json.loads(body)["latest_day"] == "2026-11-03"


@pytest.fixture
def published(server):
    base, published, _ = server
    if not published.exists():
        published.parent.mkdir(parents=True, exist_ok=True)
        build_warehouse(published)
    return base, published


def test_the_answer_is_the_query_modules(published):
    base, path = published
    query = "window=2026-11-02T00:00:00Z,2026-11-04T00:00:00Z&aggregate=tenant,day&idle_policy=even"
    status, content_type, body = get(base, "/allocation?" + query)
    assert status == 200 and content_type.startswith("application/json")
    answer = json.loads(body)
    with duckdb.connect(str(path), read_only=True) as con:
        direct = allocate(con, "2026-11-02,2026-11-04", "tenant,day", "even")
    assert answer["data"] == json.loads(json.dumps(direct["data"]))
    assert answer["idle_policy"] == "even" and answer["published_at"].endswith("+00:00")


def test_a_token_is_asked_for(published):
    base, _ = published
    for token in (None, "wrong"):
        status, _, body = get(base, "/allocation", token=token)
        assert status == 401 and "bearer token" in json.loads(body)["error"]
    assert get(base, "/metrics", token=None)[0] == 401
    assert get(base, "/healthz", token=None)[0] == 200


@pytest.mark.parametrize(
    "query, message",
    [
        ("window=2026-11-02T06:00:00Z,2026-11-03T00:00:00Z", "not midnight UTC"),
        ("window=soon", "not understood"),
        ("aggregate=model%3B%20DROP%20TABLE%20fct_request_cost", "not a dimension"),
        ("aggregate=label:x%27%20OR%201%3D1", "label key"),
        ("idle_policy=fair", "idle_policy"),
        ("aggregrate=model", "unknown parameter aggregrate"),
        ("window=1d&window=2d", "more than once"),
    ],
)
def test_bad_parameters_are_400_with_a_reason(published, query, message):
    status, _, body = get(published[0], "/allocation?" + query)
    assert status == 400 and message in json.loads(body)["error"]


def test_metrics(published):
    from prometheus_client.parser import text_string_to_metric_families

    status, content_type, body = get(published[0], "/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body)}
    joules = {s.labels["model"]: s.value for s in families["infercost_energy_per_output_token_joules"].samples}
    assert joules == {"m1": pytest.approx(1800 / 2000)}  # the latest day holds q3 only


def test_openapi_is_valid_and_describes_the_answers(published):
    from openapi_spec_validator import validate

    base, _ = published
    status, _, body = get(base, "/openapi.json")
    spec = json.loads(body)
    validate(spec)
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    answer = json.loads(get(base, "/allocation?window=2d&aggregate=model,region")[2])
    jsonschema.Draft202012Validator({**spec, "$ref": "#/components/schemas/Allocation"}).validate(answer)
    error = json.loads(get(base, "/allocation?window=x")[2])
    jsonschema.Draft202012Validator({**spec, "$ref": "#/components/schemas/Error"}).validate(error)


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_answer_off_the_description(published, tmp_path):
    """Property-based requests generated from /openapi.json: no 5xx, every status, content type and body as the
    description says, the token enforced. Left out: "a schema-valid request is accepted", since a window such as
    `2024-13-01,2024-12-02` fits the string schema and is rightly a 400."""
    base, _ = published
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            base + "/openapi.json",
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "25",
            "--seed",
            "15",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=cli_env(),
        cwd=tmp_path,  # its cache folder (.schemathesis/) goes there, not into the repo
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout
    generated = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert generated and int(generated.group(2)) >= 20, done.stdout[-2000:]
