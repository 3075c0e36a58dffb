"""`budgets` and `shadow-price`: month-to-date spend against budgets with a forecast, and self-hosting against API
list prices, both read from the published warehouse."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pipelines.cli.helpers import UserError, add_command, open_warehouse, parse_day, print_table, say


def _config_file(given: str | None, name: str, what: str) -> Path:
    from pipelines.settings import current

    path = Path(given) if given else current().config_dir / name
    if not path.exists():
        raise UserError(f"no {what} at {path}: write one (README: Budgets and the self-host question) or pass --file")
    return path


def cmd_budgets(args) -> None:
    from pipelines.analysis.budgets import BudgetError, evaluate, load_budgets

    path = _config_file(args.file, "budgets.yaml", "budget file")
    try:
        budgets = load_budgets(path)
        with open_warehouse() as con:
            status = evaluate(con, budgets, parse_day(args.as_of) if args.as_of else None)
    except BudgetError as exc:
        raise UserError(str(exc)) from None
    first = status.iloc[0]
    say(f"budgets for {first['month']:%Y-%m}, spend through {first['as_of']} (forecast: last 7 days' mean burn)")
    shown = status[
        ["budget", "scope", "unit", "limit_amount", "spent_to_date", "forecast_month_end", "forecast_pct_of_limit"]
        + ["status", "caveat"]
    ]
    print_table(pa.Table.from_pandas(shown, preserve_index=False), max_rows=len(shown))
    if args.fail_over and (status["status"] != "ok").any():
        raise SystemExit(3)


def cmd_shadow_price(args) -> None:
    from pipelines.analysis.shadow_price import PriceFileError, load_api_prices, shadow_prices

    path = _config_file(args.file, "api_prices.csv", "API price file")
    try:
        prices = load_api_prices(path)
    except PriceFileError as exc:
        raise UserError(str(exc)) from None
    with open_warehouse() as con:
        first, last = _period(con, args)
        policy = con.execute("SELECT any_value(idle_sharing_policy) FROM agg_idle_cost").fetchall()[0][0]
        table = shadow_prices(con, prices, first, last)
    if table.empty:
        raise UserError(f"no requests from {first} to {last}")
    say(f"self-hosted against API list prices ({path.name}), {first} to {last}; cost_change_pct < 0: self-hosting")
    say("is cheaper; break_even_utilization: the busy share of device time above which self-hosting pays")
    if policy == "none":
        say("note: idle sharing policy 'none': self-hosted costs leave idle capacity out, which flatters them")
    print_table(pa.Table.from_pandas(table, preserve_index=False), max_rows=len(table))


def _period(con, args):
    if args.start or args.end:
        if not (args.start and args.end):
            raise UserError("give both --from and --to (or neither, for every day in the warehouse)")
        first, last = parse_day(args.start), parse_day(args.end)
        if last < first:
            raise UserError(f"--to {last} is before --from {first}")
        return first, last
    first, last = con.execute("SELECT min(request_date), max(request_date) FROM fct_request_cost").fetchall()[0]
    if first is None:
        raise UserError("the warehouse has no requests yet")
    return first, last


def add_budgets(sub) -> None:
    s = add_command(sub, "budgets", help="month-to-date spend per budget, with a burn-rate forecast to month end")
    s.add_argument("--file", help="budget YAML (default $INFERCOST_CONFIG_DIR/budgets.yaml)")
    s.add_argument("--as-of", help="the day to report through (default: the latest day with requests)")
    s.add_argument("--fail-over", action="store_true", help="exit 3 when any budget is over or forecast over")
    s.set_defaults(func=cmd_budgets)


def add_shadow_price(sub) -> None:
    s = add_command(sub, "shadow-price", help="per model, self-hosted cost beside API list prices, and break-even")
    s.add_argument("--file", help="API price CSV (default $INFERCOST_CONFIG_DIR/api_prices.csv)")
    s.add_argument("--from", dest="start", help="first day (default: the warehouse's first)")
    s.add_argument("--to", dest="end", help="last day, inclusive (default: the warehouse's last)")
    s.set_defaults(func=cmd_shadow_price)
