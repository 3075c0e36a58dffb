"""`alerts`: list the alerts of the published warehouse, or send new ones to the configured sinks."""

from __future__ import annotations

from pipelines.cli.helpers import UserError, add_command, open_warehouse, say


def cmd_alerts(args) -> None:
    from pipelines.outputs.alerts import collect, deliver, sinks_from_env

    with open_warehouse() as con:
        alerts = collect(con)
    if args.action == "list":
        for a in alerts:
            say(f"{a.day}  {a.title}\n    {a.text}")
        say(f"{len(alerts)} alert(s)")
        return
    sinks = sinks_from_env()
    if not sinks:
        raise UserError(
            "no alert sinks configured: set INFERCOST_ALERT_* environment variables (README: Data quality and alerts)"
        )
    report = deliver(alerts, sinks, log=say)
    say(report.text())
    if report.failed:
        raise SystemExit(1)


def add_alerts(sub) -> None:
    s = add_command(sub, "alerts", help="list alerts, or send new ones to the configured sinks")
    s.add_argument("action", choices=["list", "send"])
    s.set_defaults(func=cmd_alerts)
