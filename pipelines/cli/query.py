"""Reading the published warehouse: `sql`, `compare`, `whatif`, `report`, `export`, `docs`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from pipelines.cli.helpers import (
    UserError,
    add_command,
    ensure_manifest,
    open_warehouse,
    parse_day,
    prepare_environment,
    print_table,
    say,
    warehouse_file,
)
from pipelines.settings import REPO_ROOT
from pipelines.warehouse.connection import infercost_home


def cmd_sql(args) -> None:
    """One SELECT, in the sandbox of pipelines.warehouse.readonly_query (no writes, no other file); the answer as a
    table, or as CSV, JSON or Parquet written by Python to --out (or stdout)."""
    import duckdb

    from pipelines.warehouse.readonly_query import QueryRefused, WarehouseBusy

    fmt = args.format or _format_of(args.out)
    if args.max_rows is not None and args.max_rows < 0:
        raise UserError("--max-rows must be 0 (all rows) or more")
    max_rows = args.max_rows if args.max_rows is not None else (50 if fmt == "table" else 0)
    if fmt == "table" and args.out:
        raise UserError("--out needs --format csv, json or parquet (or a file name ending in one of them)")
    if fmt == "parquet" and not args.out:
        raise UserError("--format parquet needs --out FILE (Parquet is binary)")
    try:
        _run_sql(args, fmt, max_rows or None)
    except QueryRefused as exc:
        raise UserError(str(exc)) from None
    except WarehouseBusy as exc:
        hint = "query the published copy (drop --live)" if args.live else "try again when the run has finished"
        raise UserError(f"{exc}; {hint}") from None
    except duckdb.Error as exc:
        raise UserError(f"query failed: {exc}") from None


def _format_of(out: str | None) -> str:
    if not out:
        return "table"
    suffix = Path(out).suffix.lower().lstrip(".")
    if suffix not in ("csv", "json", "parquet"):
        raise UserError(f"cannot tell the format of {out} from its extension: add --format csv, json or parquet")
    return suffix


def _run_sql(args, fmt: str, max_rows: int | None) -> None:
    from pipelines.outputs.table_files import write_batches
    from pipelines.warehouse.readonly_query import query_read_only, stream_read_only

    path = warehouse_file(args.live)
    if fmt == "table":
        result = query_read_only(path, args.query, max_rows=max_rows)
        print_table(result.table, result.total_rows, result.table.num_rows)
        return
    out = Path(args.out) if args.out else None
    written = []
    total = stream_read_only(
        path, args.query, lambda schema, batches: written.append(write_batches(schema, batches, fmt, out, max_rows))
    )
    if out is not None:
        say(f"wrote {written[0]:,} rows as {fmt} to {out}")
    if written[0] < total:
        print(
            f"infercost: {total - written[0]:,} more rows left out by --max-rows {max_rows} (0: all)", file=sys.stderr
        )


def cmd_compare(args) -> None:
    with open_warehouse() as con:
        rows = con.execute("SELECT summary FROM technique_comparison ORDER BY family, model, technique").fetchall()
    for (line,) in rows:
        say(line)


def cmd_whatif(args) -> None:
    from pipelines.analysis import whatif

    with open_warehouse() as con:
        try:
            if args.kind == "technique":
                projection = whatif.technique(con, args.model, args.technique)
            elif args.kind == "prices":
                projection = whatif.prices(con, args.region, args.price_region)
            else:
                projection = whatif.device(con, args.model, args.device_type)
        except whatif.NoMeasurement as exc:
            raise UserError(f"cannot project: {exc}") from None
    say(projection.text())


def cmd_report(args) -> None:
    from pipelines.outputs.report import EmptyPeriod, write_report

    start, end = parse_day(args.start), parse_day(args.end)
    if end < start:
        raise UserError(f"--to {end} is before --from {start}")
    with open_warehouse() as con:
        try:
            out = write_report(con, start, end, Path(args.out))
        except EmptyPeriod as exc:
            raise UserError(f"{exc}; nothing written to {args.out}") from None
    say(f"wrote {out} (self-contained; opens offline)")


def cmd_export(args) -> None:
    from pipelines.outputs.focus import FORMATS, export_focus

    start = parse_day(args.start) if args.start else None
    end = parse_day(args.end) if args.end else None
    if Path(args.out).suffix.lower() not in FORMATS:
        raise UserError(f"cannot write FOCUS to {args.out}: name the file .csv, .json or .parquet")
    with open_warehouse() as con:
        n = export_focus(con, Path(args.out), start, end)
    say(f"wrote {n:,} FOCUS 1.2 rows to {args.out}")


def cmd_docs(args) -> None:
    """dbt docs for the marts, generated offline from a copy of the published warehouse."""
    source = warehouse_file()
    prepare_environment()
    ensure_manifest()
    out = infercost_home() / "docs"
    out.mkdir(parents=True, exist_ok=True)
    catalog_db = out / "catalog.duckdb"
    shutil.copyfile(source, catalog_db)  # dbt opens its database for writing: never the published copy itself
    env = {**os.environ, "INFERCOST_WAREHOUSE": str(catalog_db)}
    cmd = [
        str(Path(sys.executable).parent / "dbt"),
        "docs",
        "generate",
        "--static",
        "--project-dir",
        str(REPO_ROOT / "dbt"),
        "--profiles-dir",
        str(REPO_ROOT / "dbt"),
        "--target-path",
        str(out / "site"),
    ]
    rc = subprocess.call(cmd, env=env)
    catalog_db.unlink(missing_ok=True)
    if rc != 0:
        raise UserError("dbt docs generate failed (its messages are above)")
    say(f"docs: {out / 'site' / 'static_index.html'} (one self-contained file; open it in a browser)")


def add_sql(sub) -> None:
    s = add_command(sub, "sql", help="run one read-only SELECT against the warehouse (README: Security)")
    s.add_argument("query")
    s.add_argument("--max-rows", type=int, help="rows to print or write, 0 for all (default: 50 printed, all written)")
    s.add_argument("--format", choices=["table", "csv", "json", "parquet"], help="default: table, or --out's extension")
    s.add_argument("--out", help="file to write (.csv, .json or .parquet); stdout when left out")
    s.add_argument(
        "--live",
        action="store_true",
        help="query the live warehouse instead of the published copy (fails while a run is writing)",
    )
    s.set_defaults(func=cmd_sql)


def add_compare(sub) -> None:
    s = add_command(sub, "compare", help="each technique against its baseline, with 95 %% intervals and latency")
    s.set_defaults(func=cmd_compare)


def add_whatif(sub) -> None:
    s = add_command(sub, "whatif", help="project cost under a technique, another price feed or device type")
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


def add_report(sub) -> None:
    s = add_command(sub, "report", help="write a self-contained HTML cost report with charts")
    s.add_argument("--from", dest="start", required=True)
    s.add_argument("--to", dest="end", required=True)
    s.add_argument("--out", required=True, help="HTML file to write")
    s.set_defaults(func=cmd_report)


def add_export(sub) -> None:
    s = add_command(sub, "export", help="export inference cost in a standard format (FOCUS 1.2)")
    s.add_argument("format", choices=["focus"])
    s.add_argument("--out", required=True, help="file to write: .csv, .json or .parquet (by its extension)")
    s.add_argument("--from", dest="start", help="first day (default: all)")
    s.add_argument("--to", dest="end", help="last day, inclusive")
    s.set_defaults(func=cmd_export)


def add_docs(sub) -> None:
    s = add_command(sub, "docs", help="generate the dbt docs of every model and column, offline")
    s.set_defaults(func=cmd_docs)
