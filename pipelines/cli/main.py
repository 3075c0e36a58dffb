"""The infercost command: demo, generate, ingest, materialize, sql, compare, whatif, report, export, docs,
validate-energy, alerts, budgets, shadow-price, bench, dev, serve, api.

Each command lives in the module of its group (run, ingest, query, alerts, devtools); this module builds the parser
and turns errors into one line: ``infercost: <message>`` and exit status 1, the traceback only with --debug.
"""

from __future__ import annotations

import argparse
import os
import sys

from pipelines.settings import SettingsError, unknown_variables


def commands() -> list:
    """The commands' parser builders, in the order of `infercost --help`. Imported here, not at the top: a module
    that reads the settings when imported must fail inside main's error handling (one line, not a traceback)."""
    from pipelines.cli import alerts, devtools, finops, ingest, query, run, serve

    return [
        run.add_demo,
        devtools.add_generate,
        ingest.add_ingest,
        run.add_materialize,
        query.add_sql,
        query.add_compare,
        query.add_whatif,
        query.add_report,
        query.add_export,
        query.add_docs,
        devtools.add_validate_energy,
        alerts.add_alerts,
        finops.add_budgets,
        finops.add_shadow_price,
        devtools.add_bench,
        run.add_dev,
        serve.add_serve,
        serve.add_api,
    ]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="infercost",
        description="What each inference request, token, model and technique really costs, from the fleet's own logs.",
    )
    p.add_argument(
        "--debug", action="store_true", help="show the full traceback of an error (before or after the command)"
    )
    sub = p.add_subparsers(dest="command", required=True)
    for add in commands():
        add(sub)
    return p


def _error(message: str) -> None:
    print(f"infercost: {message}", file=sys.stderr, flush=True)


def _silence_stdout() -> None:
    """The reader of our stdout has gone (`infercost sql ... | head`): send the rest, and the final flush, nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: list[str] | None = None) -> None:
    try:
        parser = build_parser()
    except SettingsError as exc:  # a setting read while the commands are imported
        if "--debug" in (sys.argv[1:] if argv is None else argv):
            raise
        _error(str(exc))
        raise SystemExit(1) from None
    args = parser.parse_args(argv)
    for line in unknown_variables():  # a misspelled setting is said, not silently ignored
        _error(f"warning: {line}")
    try:
        args.func(args)
        sys.stdout.flush()  # inside the try: a reader that has gone raises here, not at interpreter exit
    except BrokenPipeError:
        _silence_stdout()
        raise SystemExit(141) from None  # what a shell tool killed by SIGPIPE reports (128 + 13)
    except KeyboardInterrupt:
        if args.debug:
            raise
        _error("interrupted")
        raise SystemExit(130) from None
    except Exception as exc:  # the one place every error becomes a message
        if args.debug:
            raise
        _error(_message(exc))
        raise SystemExit(1) from None


def _message(exc: Exception) -> str:
    """A user error's own words; anything else, its first line and where to see more."""
    from pipelines.cli.helpers import UserError

    if isinstance(exc, (UserError, SettingsError)):
        return str(exc)
    text = str(exc).strip() or "(no message)"
    first = text.splitlines()[0]
    more = " ..." if "\n" in text else ""
    return f"{type(exc).__name__}: {first}{more}\n  (run `infercost --debug ...` for the traceback)"


if __name__ == "__main__":
    main()
