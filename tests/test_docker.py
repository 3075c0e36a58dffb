"""The container: the Dockerfile and compose.yaml are linted here (hadolint, and what they must hold for
`infercost serve` to work in them); where a Docker daemon answers, the image is also built.

This sandbox has no Docker daemon (the build could not be tried here); the lint runs everywhere."""

import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from dockerfile_parse import DockerfileParser

from pipelines.settings import DEFAULT_API_PORT, DEFAULT_UI_PORT, Settings
from tests.conftest import REPO


def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(path=str(REPO / "Dockerfile"))
    return parser


def instructions(name: str) -> list[str]:
    return [i["value"] for i in dockerfile().structure if i["instruction"] == name]


def docker_daemon() -> str | None:
    """docker, where a daemon answers and already holds the base image: the build needs no registry then (this
    workplace reaches only PyPI and Debian's mirrors, so a build that had to pull the base image would fail for
    want of a network, not for a fault of the Dockerfile)."""
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        return None
    (base, *_) = instructions("FROM")[0].split()
    has_base = subprocess.run([docker, "image", "inspect", base], capture_output=True).returncode == 0
    return docker if has_base else None


def test_hadolint_passes_and_the_image_builds_where_docker_runs():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    done = subprocess.run([hadolint, "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    docker = docker_daemon()
    if docker:  # not in this sandbox (no daemon, no registry): there the lint is the check
        built = subprocess.run(
            [docker, "build", "-t", "infercost-test", str(REPO)], capture_output=True, text=True, timeout=1800
        )
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]


def test_the_image_runs_serve_as_a_non_root_user_on_the_exposed_ports():
    parser = dockerfile()
    assert parser.baseimage.startswith("python:3.11-") and ":latest" not in parser.baseimage
    users = instructions("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert {int(p) for e in instructions("EXPOSE") for p in e.split()} == {DEFAULT_UI_PORT, DEFAULT_API_PORT}
    assert instructions("CMD") == ['["infercost", "serve"]']
    assert instructions("ENTRYPOINT") == ['["tini", "--"]']  # PID 1 forwards SIGTERM and reaps orphans
    env = parser.envs
    # listening on loopback inside a container would make the published ports useless
    assert env["INFERCOST_API_HOST"] == env["INFERCOST_UI_HOST"] == "0.0.0.0"
    assert {k for k in env if k.startswith("INFERCOST_")} <= set(Settings.variables())
    assert any("-c constraints.txt" in r for r in instructions("RUN"))
    healthcheck = " ".join(instructions("HEALTHCHECK"))
    assert f"127.0.0.1:{DEFAULT_API_PORT}/healthz" in healthcheck


def test_the_build_context_leaves_generated_files_out():
    ignored = (REPO / ".dockerignore").read_text().split()
    for generated in (".venv", ".infercost", "dbt/target", "dbt/logs", "bench_data", "*.duckdb", ".git"):
        assert generated in ignored, generated
    for source in ("pyproject.toml", "constraints.txt", "README.md"):
        assert (REPO / source).exists()


def test_compose_mounts_the_warehouse_and_landing_where_the_image_reads_them():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    (service,) = compose["services"].values()
    assert service["build"] == "."
    env = dockerfile().envs
    targets = {v["target"]: v["source"] for v in service["volumes"]}
    assert set(targets) == {env["INFERCOST_HOME"], env["INFERCOST_LANDING"]}
    assert set(instructions("VOLUME")[0].strip("[]").replace('"', "").replace(",", " ").split()) == set(targets)
    kinds = {v["target"]: v["type"] for v in service["volumes"]}
    assert kinds[env["INFERCOST_HOME"]] == "volume" and targets[env["INFERCOST_HOME"]] in compose["volumes"]
    assert kinds[env["INFERCOST_LANDING"]] == "bind"  # the user's own folder of logs
    published = {int(p.rsplit(":", 1)[1]) for p in service["ports"]}
    assert published == {DEFAULT_UI_PORT, DEFAULT_API_PORT}
    assert all(p.startswith("127.0.0.1:") for p in service["ports"])
    assert int(service["stop_grace_period"].rstrip("s")) > 15  # the supervisor's own grace period
    readme = (REPO / "README.md").read_text()
    serving = readme[readme.index("## Serving") :]
    for target in targets:
        assert target in serving, f"the README's Serving section does not say what {target} holds"
