"""Running the pipeline: `demo`, `materialize`, `dev`."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date
from pathlib import Path

from pipelines.cli.helpers import (
    UserError,
    add_command,
    add_day_args,
    days_arg,
    ensure_manifest,
    open_warehouse,
    prepare_environment,
    prepare_instance_storage,
    print_query,
    say,
)
from pipelines.cli.progress import quiet_run
from pipelines.cli.run_checks import check_run, landing_days
from pipelines.cli.runlock import run_lock
from pipelines.serve.supervisor import Command, Supervisor
from pipelines.settings import REPO_ROOT
from pipelines.warehouse.connection import infercost_home, landing_dir, warehouse_path

DEMO_MODEL_SQL = (
    "SELECT request_date, model, requests, completion_tokens, round(energy_kwh, 2) AS energy_kwh, "
    "round(fully_loaded_cost_usd, 2) AS cost_usd, round(cost_per_1m_output_tokens_usd, 3) AS usd_per_1m_out, "
    "round(j_per_output_token, 2) AS j_per_out_token, round(utilization, 3) AS utilization, "
    "round(idle_share, 3) AS idle_share FROM agg_daily_model_cost ORDER BY request_date, model"
)
DEMO_TECHNIQUE_SQL = (
    "SELECT request_date, model, technique, requests, round(energy_kwh, 2) AS energy_kwh, "
    "round(cost_per_1m_output_tokens_usd, 3) AS usd_per_1m_out, round(j_per_output_token, 2) AS j_per_out_token "
    "FROM agg_daily_technique_cost ORDER BY request_date, model, technique"
)
COMPARISON_SQL = "SELECT summary FROM technique_comparison ORDER BY family, model, technique"


def materialize(start: date, end: date, verbose: bool = False) -> None:
    """Run the daily job over [start, end] as one run in the local Dagster instance (one run per home at a time).

    The run's inputs are checked first (run_checks.py): a problem is one line, and no table is touched. Unless
    ``verbose``, Dagster's and dbt's logs go to a file under INFERCOST_HOME/logs and the terminal gets the summary
    (pipelines/cli/progress.py)."""
    check_run(landing_dir(), start, end)
    with run_lock(infercost_home(), f"materialize {start}..{end}"):
        prepare_environment(colour=verbose and sys.stdout.isatty())
        ensure_manifest()
        _execute_job(start, end, verbose)


def _execute_job(start: date, end: date, verbose: bool = False) -> None:
    import dagster as dg

    from pipelines.definitions import defs
    from pipelines.defs.runs import fail_orphaned_runs

    job = defs.resolve_job_def("daily_cost_job")
    tags = {
        "dagster/asset_partition_range_start": start.isoformat(),
        "dagster/asset_partition_range_end": end.isoformat(),
    }
    say(f"materializing {start} .. {end} into {warehouse_path()} (landing: {landing_dir()})")
    t0 = time.time()
    with quiet_run(infercost_home(), "materialize", verbose, say) as log, dg.DagsterInstance.get() as instance:
        fail_orphaned_runs(instance, log=say)
        result = job.execute_in_process(
            instance=instance,
            tags=tags,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
        windows = _step_windows(instance, result.run_id)
    if not result.success:
        if log:
            say(f"the run's full log: {log}")
        for event in result.all_events:
            if event.is_failure:
                say(f"FAILED: {_failure_text(event)}")
        raise UserError("materialization failed (see the messages above, or `infercost dev` for the run)")
    say("step seconds: " + ", ".join(f"{k} {end - start:.1f}" for k, (start, end) in windows.items()))
    if verbose:  # for the benchmarks: each step's wall-clock window, to place memory samples in it
        say("step windows: " + json.dumps(windows))
    say(f"materialized in {time.time() - t0:.1f} s")


def _failure_text(event) -> str:
    """What a failed step says: the error it raised (the innermost cause of Dagster's wrapper: a refused ingest's
    own words), not only that it failed."""
    data = event.step_failure_data if event.is_step_failure else None
    error = data.error if data is not None else None
    if error is None:
        return event.message
    while error.cause is not None:
        error = error.cause
    return f"{event.step_key}: {error.message.strip()}"


def _step_windows(instance, run_id: str) -> dict[str, tuple[float, float]]:
    """Each step's start and end (Unix seconds) in a run, from the run's event log (start to success or failure)."""
    import dagster as dg

    started, windows = {}, {}
    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    for entry in instance.all_logs(run_id, of_type=kinds):
        event = entry.dagster_event
        if event.event_type == dg.DagsterEventType.STEP_START:
            started[event.step_key] = entry.timestamp
        elif event.step_key in started:
            windows[event.step_key] = (started[event.step_key], entry.timestamp)
    return windows


def cmd_materialize(args) -> None:
    days = days_arg(args)
    if args.landing:
        os.environ["INFERCOST_LANDING"] = str(Path(args.landing).resolve())
    materialize(*days, verbose=args.verbose)


def cmd_demo(args) -> None:
    from pipelines.warehouse.publish import published_path

    landing = Path(args.landing).resolve() if args.landing else REPO_ROOT / "sample_logs"
    os.environ["INFERCOST_LANDING"] = str(landing)
    days = landing_days(landing) if landing.is_dir() else []
    if not days:
        raise UserError(f"no dated request logs under {landing}/requests (file names must hold a YYYY-MM-DD day)")
    materialize(days[0], days[-1], verbose=args.verbose)
    with open_warehouse() as con:
        say("\nDaily cost per model (agg_daily_model_cost):")
        print_query(con, DEMO_MODEL_SQL)
        say("\nDaily cost per technique (agg_daily_technique_cost):")
        print_query(con, DEMO_TECHNIQUE_SQL)
        say("\nTechniques against their baselines (technique_comparison, 95 % bootstrap intervals):")
        for (line,) in con.execute(COMPARISON_SQL).fetchall():
            say("  " + line)
    say(
        f"\nwarehouse: {warehouse_path()}\npublished copy for queries: {published_path()}  "
        f'(infercost sql "SELECT * FROM fct_request_cost LIMIT 5")'
    )


def cmd_dev(args) -> None:
    prepare_environment()
    ensure_manifest()
    prepare_instance_storage()
    cmd = [
        str(Path(sys.executable).parent / "dagster"),
        "dev",
        "-w",
        str(REPO_ROOT / "workspace.yaml"),
        "-h",
        "127.0.0.1",
        "-p",
        str(args.port),
    ]
    say(f"serving the Dagster UI on http://127.0.0.1:{args.port} (Ctrl-C or SIGTERM stops it and its children)")
    os.environ["DAGSTER_IS_DEV_CLI"] = "1"
    # `dagster dev` in its own process group, stopped as a group: killing only its PID leaves its webserver,
    # daemon and code servers running and holding the port
    supervisor = Supervisor([Command("dagster dev", cmd)], dict(os.environ), REPO_ROOT, say)
    supervisor.start()
    raise SystemExit(supervisor.wait())


def add_verbose(s) -> None:
    s.add_argument(
        "--verbose",
        action="store_true",
        help="show Dagster's and dbt's logs as the run goes (default: a summary; the logs go to INFERCOST_HOME/logs)",
    )


def add_demo(sub) -> None:
    s = add_command(sub, "demo", help="ingest sample_logs, materialize everything, print the daily rollups")
    s.add_argument("--landing", help="landing directory (default: the repo's sample_logs/)")
    add_verbose(s)
    s.set_defaults(func=cmd_demo)


def add_materialize(sub) -> None:
    s = add_command(sub, "materialize", help="run the daily job (ingest, attribution, dbt) for a day or range")
    add_day_args(s)
    s.add_argument(
        "--landing",
        help="landing directory (default $INFERCOST_LANDING or sample_logs/); its readers "
        "come from $INFERCOST_CONFIG_DIR/formats.yaml",
    )
    add_verbose(s)
    s.set_defaults(func=cmd_materialize)


def add_dev(sub) -> None:
    s = add_command(sub, "dev", help="serve the Dagster UI on 127.0.0.1")
    s.add_argument("--port", type=int, default=3000)
    s.set_defaults(func=cmd_dev)
