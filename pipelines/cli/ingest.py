"""`ingest`: load feeds into the warehouse's raw tables, without Dagster."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from pipelines.cli.helpers import (
    UserError,
    add_command,
    add_day_args,
    days_arg,
    prepare_environment,
    say,
)
from pipelines.cli.runlock import run_lock
from pipelines.spark import SPARK_FEEDS
from pipelines.warehouse.connection import infercost_home, landing_dir, warehouse_path


def _reader_options(args) -> dict:
    options = {}
    for item in args.option or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--option takes KEY=VALUE, not {item!r}")
        options[key] = value
    if (args.format or options) and not args.feed:
        raise UserError("--format and --option apply to one feed: give --feed too")
    return options


def _open_for_writing(connect):
    """The live warehouse for writing; a one-line error when another process (`infercost dev`'s runs) holds it."""
    import duckdb

    from pipelines.warehouse.readonly_query import WarehouseBusy

    path = warehouse_path()
    try:
        return connect(path)
    except duckdb.IOException as exc:
        busy = WarehouseBusy.from_error(path, exc)
        if busy:
            raise UserError(f"{busy}; wait for that run to finish") from None
        raise


def cmd_ingest(args) -> None:
    from pipelines.ingest.report import IngestError

    landing = Path(args.landing).resolve() if args.landing else landing_dir()
    start, end = days_arg(args)
    options = _reader_options(args)
    try:
        _check_readers(args, landing, options)  # a reader of another feed is refused before anything is touched
        if args.dry_run:
            _dry_run(args, landing, start, end, options)
            return
        with run_lock(infercost_home(), f"ingest {start}..{end}"):
            prepare_environment()
            _ingest_days(args, landing, start, end, options)
            if args.format or options:  # kept where `materialize` and the Dagster assets read a landing's readers
                from pipelines.ingest.reader_choices import save_reader_choice

                kept = save_reader_choice(None, args.feed, args.format, options, landing=landing)
                say(f"reader choice for {args.feed} kept in {kept}")
    except IngestError as exc:  # a refusal or an unreadable file: its own words, one line
        raise UserError(str(exc)) from exc


def _check_readers(args, landing: Path, options: dict) -> None:
    from pipelines.ingest.feeds import resolve_landing_feed
    from pipelines.ingest.formats import check_options
    from pipelines.warehouse.contracts import FEEDS

    for feed in [args.feed] if args.feed else list(FEEDS):
        resolved = resolve_landing_feed(feed, landing, args.format, options if feed == args.feed else None)
        for _, route in resolved.routes or ((None, resolved),):
            try:  # a misspelled option is refused before anything is read, not when a file of the feed turns up
                check_options(route.reader, route.options or {})
            except ValueError as exc:
                raise UserError(f"{feed}: {exc}") from None


def _ingest_days(args, landing: Path, start, end, options: dict) -> None:
    from pipelines.ingest.loader import day_range, ingest_fleet_table
    from pipelines.warehouse.connection import connect
    from pipelines.warehouse.contracts import FEEDS, FLEET_TABLES

    with _open_for_writing(connect) as con:
        for name in FLEET_TABLES:
            say(ingest_fleet_table(con, name, landing).summary())
        spark = _spark_session(args)  # once the warehouse is ours: a busy warehouse starts no cluster
        try:
            for day in day_range(start, end):
                for feed in [args.feed] if args.feed else list(FEEDS):
                    t0 = time.time()
                    report = _ingest_feed_day(args, con, spark, feed, landing, day, options)
                    say(f"{report.summary()} ({time.time() - t0:.1f} s)")
                    _say_other_days(report, day_range(start, end), landing)
        finally:
            if spark is not None:
                spark.stop()


def _say_other_days(report, run_days, landing: Path) -> None:
    """A warning for each file's rows of days outside this run that the warehouse does not hold, with the command
    that loads them from the same landing folder."""
    command = f"infercost materialize --landing {shlex.quote(str(landing))}"  # pasted into a shell as it is
    for other in report.other_days_outside(run_days):
        say(f"  warning: {other.warning(command)}")


def _ingest_feed_day(args, con, spark, feed: str, landing: Path, day, options: dict):
    """One feed's day: on the cluster when a Spark session is given and the feed is one Spark runs, else here."""
    from pipelines.cli.progress import IngestProgress
    from pipelines.ingest.loader import ingest_feed

    chosen = {"fmt": args.format, "options": options} if feed == args.feed else {}
    if spark is not None and feed in SPARK_FEEDS:
        from pipelines.spark.ingest import ingest_feed_spark

        return ingest_feed_spark(spark, con, feed, landing, day, replace_anyway=args.replace_anyway, **chosen)
    return ingest_feed(
        con,
        feed,
        landing,
        day,
        **chosen,
        replace_anyway=args.replace_anyway,
        progress=IngestProgress(f"{feed} {day}", say),
    )


def _spark_session(args):
    """The Spark session when INFERCOST_ENGINE=spark and a spark feed is to be loaded (requests and telemetry go
    to the lake on the cluster, as the daily run's assets do), else None."""
    from pipelines.settings import current

    settings = current()
    if settings.engine != "spark" or (args.feed and args.feed not in SPARK_FEEDS):
        return None
    from pipelines.spark.session import spark_session

    say(f"engine: spark ({settings.spark_master})")
    return spark_session(settings.spark_master)


def _dry_run(args, landing: Path, start, end, options: dict) -> None:
    """Read and validate every file as a run would, against the warehouse as it is (opened read-only; an empty
    one in memory when there is none yet), and print what would load and be quarantined per file, and whether the
    run would be refused. Writes nothing."""
    from pipelines.ingest.loader import day_range, ingest_feed, ingest_fleet_table
    from pipelines.warehouse.connection import connect
    from pipelines.warehouse.contracts import FEEDS, FLEET_TABLES

    path = warehouse_path()
    with connect(path, read_only=True) if path.exists() else connect(":memory:") as con:
        if not path.exists():  # the fleet files, in memory: readers and checks look devices and regions up
            for name in FLEET_TABLES:
                ingest_fleet_table(con, name, landing)
        for day in day_range(start, end):
            for feed in [args.feed] if args.feed else list(FEEDS):
                report = ingest_feed(
                    con,
                    feed,
                    landing,
                    day,
                    fmt=args.format,
                    options=options if feed == args.feed else None,
                    dry_run=True,
                )
                say(report.summary())
                for line in report.file_lines():
                    say(line)
                _say_other_days(report, day_range(start, end), landing)
                if report.refusal and not args.replace_anyway:
                    say(f"  would be refused: {report.refusal}")


def add_ingest(sub) -> None:
    from pipelines.ingest.formats import FORMATS

    s = add_command(sub, "ingest", help="load feeds into the warehouse's raw tables (no Dagster)")
    add_day_args(s)
    s.add_argument("--landing", help="landing directory (default $INFERCOST_LANDING or sample_logs/)")
    s.add_argument("--feed", choices=["requests", "telemetry", "prices", "carbon"], help="one feed only")
    s.add_argument(
        "--format",
        choices=sorted(FORMATS),
        metavar="FORMAT",
        help=f"reader for the feed's files ({', '.join(sorted(FORMATS))}); default from "
        "$INFERCOST_CONFIG_DIR/formats.yaml, else the feed's own (README: Input formats)",
    )
    s.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="a reader option, repeatable (e.g. "
        "model=llama-3.1-8b-instruct, replicas=r0,r1, timezone=America/New_York, mapping=my_logs.yaml)",
    )
    s.add_argument(
        "--dry-run",
        action="store_true",
        help="read and validate, print what each file would load and "
        "quarantine (and whether the run would be refused); write nothing",
    )
    s.add_argument(
        "--replace-anyway",
        action="store_true",
        help="replace a loaded day even when the run loads "
        "no rows or quarantines most of them (refused otherwise: the day is left as it was)",
    )
    s.set_defaults(func=cmd_ingest)
