"""Serving: `api` (the allocation API alone) and `serve` (the Dagster UI, the Dagster daemon and the API together,
stopped together)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pipelines.cli.helpers import add_command, ensure_manifest, prepare_environment, prepare_instance_storage, say
from pipelines.settings import REPO_ROOT, current


def cmd_api(args) -> None:
    from pipelines.serve.api import run_api

    settings = current()
    host, port = args.host or settings.api_host, args.port or settings.api_port
    say(f"allocation API on http://{host}:{port} (reading {settings.published}; Ctrl-C stops it)")
    run_api(host, port)


def serve_commands(ui_host: str, ui_port: int) -> list:
    """The three children of `infercost serve`."""
    from pipelines.serve.supervisor import Command

    bin_dir = Path(sys.executable).parent
    workspace = str(REPO_ROOT / "workspace.yaml")
    return [
        Command(
            "dagster-webserver",
            [str(bin_dir / "dagster-webserver"), "-w", workspace, "-h", ui_host, "-p", str(ui_port)],
        ),
        Command("dagster-daemon", [str(bin_dir / "dagster-daemon"), "run", "-w", workspace]),
        Command("allocation-api", [sys.executable, "-m", "pipelines.cli", "api"]),
    ]


def cmd_serve(args) -> None:
    from pipelines.serve.supervisor import Supervisor

    prepare_environment()
    ensure_manifest()
    prepare_instance_storage()
    # the mode that runs the daemon is the one where the daily schedule should run (unless it was set off)
    os.environ.setdefault("INFERCOST_SCHEDULE_RUNNING", "true")
    settings = current()
    supervisor = Supervisor(serve_commands(settings.ui_host, settings.ui_port), dict(os.environ), REPO_ROOT, say)
    say(
        f"serving: Dagster UI http://{settings.ui_host}:{settings.ui_port}, allocation API "
        f"http://{settings.api_host}:{settings.api_port}, daemon (schedule "
        f"{'on' if settings.schedule_running else 'off'}, alert sensor on); SIGTERM or Ctrl-C stops them all"
    )
    supervisor.start()
    raise SystemExit(supervisor.wait())


def add_api(sub) -> None:
    s = add_command(sub, "api", help="serve the allocation API over the published warehouse (read-only)")
    s.add_argument("--host", help="address to listen on (default $INFERCOST_API_HOST or 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (default $INFERCOST_API_PORT or 8000)")
    s.set_defaults(func=cmd_api)


def add_serve(sub) -> None:
    s = add_command(
        sub, "serve", help="run the Dagster UI, the daemon (schedule, alert sensor) and the allocation API together"
    )
    s.set_defaults(func=cmd_serve)
