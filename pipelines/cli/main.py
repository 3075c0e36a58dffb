"""The infercost command: demo, generate, ingest, materialize, sql, compare, whatif, report, export, docs,
validate-energy, alerts, bench, dev."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from pipelines.settings import REPO_ROOT
from pipelines.warehouse.connection import infercost_home, landing_dir, warehouse_path

_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")


def _say(msg: str) -> None:
    print(msg, flush=True)


def _prepare_environment() -> None:
    """One data directory: the warehouse, Dagster's instance, dbt's target all resolve from INFERCOST_HOME."""
    home = infercost_home()
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("INFERCOST_WAREHOUSE", str(warehouse_path()))
    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str(home / "dagster")))
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").touch()
    # the dbt executable lives beside this Python
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def _ensure_manifest() -> None:
    """(Re)parse the dbt project when its manifest is missing or older than any of its files."""
    from pipelines.dbt_project import dbt_project

    manifest = dbt_project.manifest_path
    project_dir = Path(dbt_project.project_dir)
    sources = [p for sub in ("models", "macros", "tests") for p in (project_dir / sub).rglob("*") if p.is_file()]
    sources += [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    newest = max(p.stat().st_mtime for p in sources)
    if not manifest.exists() or manifest.stat().st_mtime < newest:
        _say("preparing the dbt manifest (dbt parse) ...")
        dbt_project.preparer.prepare(dbt_project)


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise SystemExit(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _days_arg(args) -> tuple[date, date]:
    if args.partition:
        d = _parse_day(args.partition)
        return d, d
    if args.start and args.end:
        start, end = _parse_day(args.start), _parse_day(args.end)
        if end < start:
            raise SystemExit("--to is before --from")
        return start, end
    raise SystemExit("give --partition DATE, or --from DATE --to DATE")


def landing_days(landing: Path) -> list[date]:
    """Days named in the request log file names of a landing directory."""
    days = set()
    for p in (landing / "requests").glob("*"):
        m = _DATE.search(p.name)
        if m:
            days.add(date.fromisoformat(m.group(1)))
    return sorted(days)


def materialize(start: date, end: date) -> None:
    """Run the daily job over [start, end] as one run in the local Dagster instance."""
    _prepare_environment()
    _ensure_manifest()
    import dagster as dg

    from pipelines.definitions import defs

    job = defs.resolve_job_def("daily_cost_job")
    tags = {
        "dagster/asset_partition_range_start": start.isoformat(),
        "dagster/asset_partition_range_end": end.isoformat(),
    }
    _say(f"materializing {start} .. {end} into {warehouse_path()} (landing: {landing_dir()})")
    t0 = time.time()
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance, tags=tags, raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
        steps = _step_seconds(instance, result.run_id)
    if not result.success:
        for event in result.all_events:
            if event.is_failure:
                _say(f"FAILED: {event.message}")
        raise SystemExit("materialization failed (see the messages above, or `infercost dev` for the run)")
    _say("step seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in steps.items()))
    _say(f"materialized in {time.time() - t0:.1f} s")


def _step_seconds(instance, run_id: str) -> dict:
    """Wall seconds of each step of a run, from the run's event log (step start to success or failure)."""
    import dagster as dg

    started, seconds = {}, {}
    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    for entry in instance.all_logs(run_id, of_type=kinds):
        event = entry.dagster_event
        if event.event_type == dg.DagsterEventType.STEP_START:
            started[event.step_key] = entry.timestamp
        elif event.step_key in started:
            seconds[event.step_key] = entry.timestamp - started[event.step_key]
    return seconds


def cmd_materialize(args) -> None:
    materialize(*_days_arg(args))


def cmd_generate(args) -> None:
    from pipelines.devtools.generate import generate

    t0 = time.time()
    counts = generate(Path(args.out), devices=args.devices, days=args.days, seed=args.seed,
                      start=_parse_day(args.start), load=args.load, progress=_say)
    _say(f"wrote {counts['requests']:,} requests and {counts['telemetry_rows']:,} telemetry rows to {args.out} "
         f"in {time.time() - t0:.1f} s")


def cmd_ingest(args) -> None:
    _prepare_environment()
    from pipelines.warehouse.contracts import FEEDS, FLEET_TABLES
    from pipelines.ingest.loader import day_range, ingest_feed, ingest_fleet_table
    from pipelines.warehouse.connection import connect

    landing = Path(args.landing).resolve() if args.landing else landing_dir()
    start, end = _days_arg(args)
    feeds = [args.feed] if args.feed else list(FEEDS)
    options = {}
    for item in args.option or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--option takes KEY=VALUE, not {item!r}")
        options[key] = value
    if (args.format or options) and not args.feed:
        raise SystemExit("--format and --option apply to one feed: give --feed too")
    with connect() as con:
        for name in FLEET_TABLES:
            _say(ingest_fleet_table(con, name, landing).summary())
        for day in day_range(start, end):
            for feed in feeds:
                t0 = time.time()
                report = ingest_feed(con, feed, landing, day, fmt=args.format,
                                     options=options if feed == args.feed else None)
                _say(f"{report.summary()} ({time.time() - t0:.1f} s)")


def _print_query(con, sql: str, max_rows: int = 50) -> None:
    rel = con.sql(sql)
    if rel is None:
        return
    table = rel.to_arrow_table()
    cols = table.column_names
    rows = table.slice(0, max_rows).to_pylist()

    def fmt(v):
        if isinstance(v, float):
            text = f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) < 1e6 else f"{v:.0f}"
            return text
        return "" if v is None else str(v)

    cells = [[fmt(r[c]) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.rjust(w) if v[:1].isdigit() or v[:1] == "-" else v.ljust(w) for v, w in zip(row, widths)))
    if table.num_rows > max_rows:
        print(f"... {table.num_rows - max_rows} more rows")


_WRITES = re.compile(r"^\s*(insert|update|delete|create|drop|alter|attach|detach|copy|install|load|"
                     r"pragma|set|call|checkpoint|vacuum|export|import)\b", re.IGNORECASE)


def cmd_sql(args) -> None:
    import duckdb

    from pipelines.warehouse.connection import connect

    from pipelines.warehouse.publish import published_path

    if _WRITES.match(args.query):
        raise SystemExit("infercost sql runs read-only queries; statements that write are refused")
    # the published copy: readable while a run holds the live warehouse
    path = published_path() if not args.live else warehouse_path()
    if not path.exists():
        raise SystemExit(f"no warehouse at {path}: run `infercost demo` or `infercost materialize` first")
    with connect(path, read_only=True) as con:
        try:
            _print_query(con, args.query, args.max_rows)
        except duckdb.Error as exc:
            raise SystemExit(f"query failed: {exc}") from None


def cmd_validate_energy(args) -> None:
    from pipelines.attribution.validation import validate_energy
    from pipelines.settings import current
    from pipelines.warehouse.connection import connect

    path = warehouse_path()
    if not path.exists():
        raise SystemExit(f"no warehouse at {path}: run `infercost materialize` first")
    with connect(path, read_only=True) as con:
        report = validate_energy(con, Path(args.ground_truth), max_gap_s=current().max_gap_s)
    _say(report.text())
    if not report.rows:
        raise SystemExit("nothing to compare: no ground-truth row matched attributed energy")


def cmd_bench(args) -> None:
    from pipelines.devtools.bench import fleet_day, run

    if args.fleet_day:
        _prepare_environment()
        fleet_day(args.devices, say=_say)
    else:
        run(args.scale, args.repeat, say=_say)


def cmd_docs(args) -> None:
    """dbt docs for the marts, generated offline from a copy of the published warehouse."""
    import shutil

    from pipelines.warehouse.publish import published_path

    _prepare_environment()
    _ensure_manifest()
    source = published_path()
    if not source.exists():
        raise SystemExit(f"no published warehouse at {source}: run `infercost demo` or `infercost materialize` first")
    out = infercost_home() / "docs"
    out.mkdir(parents=True, exist_ok=True)
    catalog_db = out / "catalog.duckdb"
    shutil.copyfile(source, catalog_db)  # dbt opens its database for writing: never the published copy itself
    env = {**os.environ, "INFERCOST_WAREHOUSE": str(catalog_db)}
    cmd = [str(Path(sys.executable).parent / "dbt"), "docs", "generate", "--static", "--project-dir",
           str(REPO_ROOT / "dbt"), "--profiles-dir", str(REPO_ROOT / "dbt"), "--target-path", str(out / "site")]
    rc = subprocess.call(cmd, env=env)
    catalog_db.unlink(missing_ok=True)
    if rc != 0:
        raise SystemExit("dbt docs generate failed")
    _say(f"docs: {out / 'site' / 'static_index.html'} (one self-contained file; open it in a browser)")


def cmd_report(args) -> None:
    from pipelines.warehouse.publish import published_path
    from pipelines.outputs.report import write_report
    from pipelines.warehouse.connection import connect

    path = published_path()
    if not path.exists():
        raise SystemExit(f"no published warehouse at {path}: run `infercost demo` or `infercost materialize` first")
    start, end = _parse_day(args.start), _parse_day(args.end)
    with connect(path, read_only=True) as con:
        out = write_report(con, start, end, Path(args.out))
    _say(f"wrote {out} (self-contained; opens offline)")


def cmd_export(args) -> None:
    from pipelines.outputs.focus import export_focus
    from pipelines.warehouse.publish import published_path
    from pipelines.warehouse.connection import connect

    path = published_path()
    if not path.exists():
        raise SystemExit(f"no published warehouse at {path}: run `infercost demo` or `infercost materialize` first")
    start = _parse_day(args.start) if args.start else None
    end = _parse_day(args.end) if args.end else None
    with connect(path, read_only=True) as con:
        n = export_focus(con, Path(args.out), start, end)
    _say(f"wrote {n:,} FOCUS 1.2 rows to {args.out}")


def cmd_whatif(args) -> None:
    from pipelines.analysis import whatif
    from pipelines.warehouse.publish import published_path
    from pipelines.warehouse.connection import connect

    path = published_path()
    if not path.exists():
        raise SystemExit(f"no published warehouse at {path}: run `infercost demo` or `infercost materialize` first")
    with connect(path, read_only=True) as con:
        try:
            if args.kind == "technique":
                projection = whatif.technique(con, args.model, args.technique)
            elif args.kind == "prices":
                projection = whatif.prices(con, args.region, args.price_region)
            else:
                projection = whatif.device(con, args.model, args.device_type)
        except whatif.NoMeasurement as exc:
            raise SystemExit(f"cannot project: {exc}") from None
    _say(projection.text())


def cmd_compare(args) -> None:
    from pipelines.warehouse.publish import published_path
    from pipelines.warehouse.connection import connect

    path = published_path()
    if not path.exists():
        raise SystemExit(f"no published warehouse at {path}: run `infercost demo` or `infercost materialize` first")
    with connect(path, read_only=True) as con:
        for (line,) in con.execute("SELECT summary FROM technique_comparison ORDER BY family, model, technique"
                                   ).fetchall():
            _say(line)


def cmd_alerts(args) -> None:
    from pipelines.outputs.alerts import collect, deliver, sinks_from_env
    from pipelines.warehouse.connection import connect

    path = warehouse_path()
    if not path.exists():
        raise SystemExit(f"no warehouse at {path}: run `infercost materialize` first")
    with connect(path, read_only=True) as con:
        alerts = collect(con)
    if args.action == "list":
        for a in alerts:
            _say(f"{a.day}  {a.title}\n    {a.text}")
        _say(f"{len(alerts)} alert(s)")
        return
    sinks = sinks_from_env()
    if not sinks:
        raise SystemExit("no alert sinks configured: set INFERCOST_ALERT_* environment variables (see README)")
    report = deliver(alerts, sinks, log=_say)
    _say(report.text())
    if report.failed:
        raise SystemExit(1)


def cmd_demo(args) -> None:
    landing = Path(args.landing).resolve() if args.landing else REPO_ROOT / "sample_logs"
    os.environ["INFERCOST_LANDING"] = str(landing)
    days = landing_days(landing)
    if not days:
        raise SystemExit(f"no dated request logs under {landing}/requests")
    materialize(days[0], days[-1])
    from pipelines.warehouse.connection import connect

    from pipelines.warehouse.publish import published_path

    with connect(published_path(), read_only=True) as con:
        _say("\nDaily cost per model (agg_daily_model_cost):")
        _print_query(con, "SELECT request_date, model, requests, completion_tokens, round(energy_kwh, 2) AS "
                          "energy_kwh, round(fully_loaded_cost_usd, 2) AS cost_usd, round(cost_per_1m_output_"
                          "tokens_usd, 3) AS usd_per_1m_out, round(j_per_output_token, 2) AS j_per_out_token, "
                          "round(utilization, 3) AS utilization, round(idle_share, 3) AS idle_share "
                          "FROM agg_daily_model_cost ORDER BY request_date, model")
        _say("\nDaily cost per technique (agg_daily_technique_cost):")
        _print_query(con, "SELECT request_date, model, technique, requests, round(energy_kwh, 2) AS energy_kwh, "
                          "round(cost_per_1m_output_tokens_usd, 3) AS usd_per_1m_out, round(j_per_output_token, 2)"
                          " AS j_per_out_token FROM agg_daily_technique_cost ORDER BY request_date, model, "
                          "technique")
        _say("\nTechniques against their baselines (technique_comparison, 95 % bootstrap intervals):")
        for (line,) in con.execute("SELECT summary FROM technique_comparison ORDER BY family, model, technique"
                                   ).fetchall():
            _say("  " + line)
    _say(f"\nwarehouse: {warehouse_path()}\npublished copy for queries: {published_path()}  "
         f"(infercost sql \"SELECT * FROM fct_request_cost LIMIT 5\")")


def cmd_dev(args) -> None:
    _prepare_environment()
    _ensure_manifest()
    cmd = [str(Path(sys.executable).parent / "dagster"), "dev", "-w", str(REPO_ROOT / "workspace.yaml"),
           "-h", "127.0.0.1", "-p", str(args.port)]
    _say("serving the Dagster UI on http://127.0.0.1:%d (Ctrl-C stops it)" % args.port)
    os.environ["DAGSTER_IS_DEV_CLI"] = "1"
    raise SystemExit(subprocess.call(cmd, cwd=REPO_ROOT))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="infercost", description="What each inference request, token, model and "
                                "technique really costs, from the fleet's own logs.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("demo", help="ingest sample_logs, materialize everything, print the daily rollups")
    s.add_argument("--landing", help="landing directory (default: the repo's sample_logs/)")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("generate", help="write a seeded synthetic fleet in real file formats")
    s.add_argument("--devices", type=int, default=24, help="accelerators, a multiple of 8 (default 24)")
    s.add_argument("--days", type=int, default=1)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--start", default="2026-11-02", help="first UTC day (default 2026-11-02)")
    s.add_argument("--load", type=float, default=1.0, help="relative load; 1.0 gives batch ~7 at peak")
    s.add_argument("--out", required=True, help="landing directory to write")
    s.set_defaults(func=cmd_generate)

    def days(s):
        s.add_argument("--partition", help="one UTC day, YYYY-MM-DD")
        s.add_argument("--from", dest="start", help="first day of a range")
        s.add_argument("--to", dest="end", help="last day of a range (inclusive)")

    s = sub.add_parser("ingest", help="load feeds into the warehouse's raw tables (no Dagster)")
    days(s)
    s.add_argument("--landing", help="landing directory (default $INFERCOST_LANDING or sample_logs/)")
    s.add_argument("--feed", choices=["requests", "telemetry", "prices", "carbon"], help="one feed only")
    from pipelines.ingest.formats import FORMATS

    s.add_argument("--format", choices=sorted(FORMATS), metavar="FORMAT",
                   help=f"reader for the feed's files ({', '.join(sorted(FORMATS))}); default from "
                   "<landing>/formats.yaml, else the feed's own (README: Input formats)")
    s.add_argument("--option", action="append", metavar="KEY=VALUE", help="a reader option, repeatable (e.g. "
                   "model=llama-3.1-8b-instruct, replicas=r0,r1, timezone=America/New_York, mapping=my_logs.yaml)")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("materialize", help="run the daily job (ingest, attribution, dbt) for a day or range")
    days(s)
    s.set_defaults(func=cmd_materialize)

    s = sub.add_parser("sql", help="run a read-only SQL query against the warehouse")
    s.add_argument("query")
    s.add_argument("--max-rows", type=int, default=50)
    s.add_argument("--live", action="store_true", help="query the live warehouse instead of the published copy "
                   "(fails while a run is writing)")
    s.set_defaults(func=cmd_sql)

    s = sub.add_parser("validate-energy", help="compare attributed energy with measured ground truth")
    s.add_argument("--ground-truth", required=True, help="CSV: energy_j with request_id, or with device_id, "
                   "window_start, window_end; optional group")
    s.set_defaults(func=cmd_validate_energy)

    s = sub.add_parser("report", help="write a self-contained HTML cost report with charts")
    s.add_argument("--from", dest="start", required=True)
    s.add_argument("--to", dest="end", required=True)
    s.add_argument("--out", required=True, help="HTML file to write")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("export", help="export inference cost in a standard format (FOCUS 1.2)")
    s.add_argument("format", choices=["focus"])
    s.add_argument("--out", required=True, help="file to write: .csv or .parquet")
    s.add_argument("--from", dest="start", help="first day (default: all)")
    s.add_argument("--to", dest="end", help="last day, inclusive")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("whatif", help="project cost under a technique, another price feed or device type")
    wsub = s.add_subparsers(dest="kind", required=True)
    w = wsub.add_parser("technique", help="a model's baseline requests with a technique")
    w.add_argument("--model", required=True)
    w.add_argument("--technique", required=True, help="as in technique_comparison, e.g. quant:int8")
    w = wsub.add_parser("prices", help="a region's energy at another region's prices")
    w.add_argument("--region", required=True)
    w.add_argument("--price-region", required=True)
    w = wsub.add_parser("device", help="a model's requests on another device type")
    w.add_argument("--model", required=True)
    w.add_argument("--device-type", required=True)
    s.set_defaults(func=cmd_whatif)

    s = sub.add_parser("docs", help="generate the dbt docs of every model and column, offline")
    s.set_defaults(func=cmd_docs)

    s = sub.add_parser("compare", help="each technique against its baseline, with 95 %% intervals and latency")
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser("alerts", help="list alerts, or send new ones to the configured sinks")
    s.add_argument("action", choices=["list", "send"])
    s.set_defaults(func=cmd_alerts)

    s = sub.add_parser("bench", help="time the kernel against exact DuckDB SQL and the floor, or a whole fleet-day")
    s.add_argument("--scale", choices=["S", "M", "L"], default="M")
    s.add_argument("--repeat", type=int, default=3)
    s.add_argument("--fleet-day", action="store_true",
                   help="time raw files to published marts for a generated fleet-day (see --devices)")
    s.add_argument("--devices", type=int, default=1000, help="accelerators of the fleet-day (default 1000)")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("dev", help="serve the Dagster UI on 127.0.0.1")
    s.add_argument("--port", type=int, default=3000)
    s.set_defaults(func=cmd_dev)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
