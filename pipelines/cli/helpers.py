"""What every command shares: the user-error type, messages, dates, opening the warehouse (one guard), the
environment for Dagster and dbt, and printing a table."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from pipelines.warehouse.connection import dbt_logs_dir, infercost_home, warehouse_path


class UserError(Exception):
    """A mistake the person running the command can fix; main() prints ``infercost: <message>`` and exits 1."""


def say(msg: str) -> None:
    print(msg, flush=True)


def add_command(sub, name: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand that also takes --debug after its name (``infercost sql --debug ...``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback of an error"
    )
    return sub.add_parser(name, parents=[common], **kwargs)


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"not a date (YYYY-MM-DD): {text!r}") from None


def add_day_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--partition", help="one UTC day, YYYY-MM-DD")
    s.add_argument("--from", dest="start", help="first day of a range")
    s.add_argument("--to", dest="end", help="last day of a range (inclusive)")


def days_arg(args) -> tuple[date, date]:
    if args.partition:
        d = parse_day(args.partition)
        return d, d
    if args.start and args.end:
        start, end = parse_day(args.start), parse_day(args.end)
        if end < start:
            raise UserError(f"--to {end} is before --from {start}")
        return start, end
    raise UserError("give --partition DATE, or --from DATE --to DATE")


def warehouse_file(live: bool = False) -> Path:
    """The published copy (or, with ``live``, the live warehouse); a one-line ``UserError`` when it is missing."""
    from pipelines.warehouse.publish import published_path

    path = warehouse_path() if live else published_path()
    if not path.exists():
        what = "warehouse" if live else "published warehouse"
        raise UserError(
            f"no {what} at {path}: run `infercost demo` or `infercost materialize` first "
            "(or set INFERCOST_HOME to the folder that holds it)"
        )
    return path


@contextmanager
def open_warehouse(live: bool = False, busy_hint: str = "try again when the run has finished") -> Iterator:
    """A read-only connection to the published copy (or, with ``live``, the live warehouse), closed on exit.

    The one guard every reading command goes through: a missing file and a file a run is writing become one-line
    messages that say what to do.
    """
    from pipelines.warehouse.readonly_query import WarehouseBusy, open_read_only

    path = warehouse_file(live)
    try:
        con = open_read_only(path)
    except WarehouseBusy as exc:
        raise UserError(f"{exc}; {busy_hint}") from None
    with con:
        yield con


# the Dagster instance's settings unless the user wrote their own dagster.yaml: no telemetry, and one run at a time
# (the live warehouse has one writer)
DAGSTER_YAML = """# written by infercost (pipelines/cli/helpers.py); edit freely, it is not rewritten once it has content
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 1
"""


def prepare_environment(colour: bool | None = None) -> None:
    """One data directory: the warehouse, Dagster's instance, dbt's target and logs all resolve from INFERCOST_HOME.
    dbt colours its output only when ``colour`` (default: when stdout is a terminal); DBT_USE_COLORS overrides."""
    home = infercost_home()
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("INFERCOST_WAREHOUSE", str(warehouse_path()))
    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str(home / "dagster")))
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance_yaml = dagster_home / "dagster.yaml"
    if not instance_yaml.exists() or not instance_yaml.read_text().strip():
        instance_yaml.write_text(DAGSTER_YAML)
    # the dbt executable lives beside this Python
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    if colour is None:
        colour = sys.stdout.isatty()
    os.environ.setdefault("DBT_USE_COLORS", "true" if colour else "false")
    os.environ.setdefault("DBT_LOG_PATH", str(dbt_logs_dir()))


def prepare_instance_storage() -> None:
    """Create the Dagster instance's storage ($DAGSTER_HOME: runs, event log, schedules) once, before a webserver,
    a daemon and their code servers start together (`serve`, `dev`): on a fresh home each would create it at the
    same moment, and two of them stamping SQLite's schema version leave a runs.db with two heads that no Dagster
    process opens again (seen on a loaded machine: the UI answered with no code location)."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        instance.get_runs(limit=1)
        instance.all_instigator_state()


def ensure_manifest() -> None:
    """(Re)parse the dbt project when its manifest is missing or older than any of its files."""
    from pipelines.dbt_project import dbt_project

    manifest = dbt_project.manifest_path
    project_dir = Path(dbt_project.project_dir)
    sources = [p for sub in ("models", "macros", "tests") for p in (project_dir / sub).rglob("*") if p.is_file()]
    sources += [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    newest = max(p.stat().st_mtime for p in sources)
    if not manifest.exists() or manifest.stat().st_mtime < newest:
        say("preparing the dbt manifest (dbt parse) ...")
        dbt_project.preparer.prepare(dbt_project)


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) < 1e6 else f"{v:.0f}"
    return "" if v is None else str(v)


def print_table(table, total_rows: int | None = None, max_rows: int = 50) -> None:
    """An Arrow table as aligned text: numbers right-aligned, then how many rows were left out."""
    total_rows = table.num_rows if total_rows is None else total_rows
    cols = table.column_names
    shown = table.slice(0, max_rows)
    columns = [shown.column(i).to_pylist() for i in range(len(cols))]  # by position: names may repeat
    cells = [[_cell(v) for v in row] for row in zip(*columns)]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.rjust(w) if v[:1].isdigit() or v[:1] == "-" else v.ljust(w) for v, w in zip(row, widths)))
    if total_rows > max_rows:
        print(f"... {total_rows - max_rows} more rows")


def print_query(con, sql: str, max_rows: int = 50) -> None:
    """Print the answer of one of infercost's own queries (not an analyst's: those go through readonly_query)."""
    print_table(con.sql(sql).to_arrow_table(), max_rows=max_rows)
