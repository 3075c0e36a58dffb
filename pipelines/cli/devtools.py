"""Tools for developers and evaluators: `generate`, `bench`, `validate-energy`."""

from __future__ import annotations

import time
from pathlib import Path

from pipelines.cli.helpers import (
    UserError,
    add_command,
    open_warehouse,
    parse_day,
    prepare_environment,
    say,
)


def cmd_generate(args) -> None:
    from pipelines.devtools.generate import generate

    t0 = time.time()
    counts = generate(
        Path(args.out),
        devices=args.devices,
        days=args.days,
        seed=args.seed,
        start=parse_day(args.start),
        load=args.load,
        progress=say,
    )
    say(
        f"wrote {counts['requests']:,} requests and {counts['telemetry_rows']:,} telemetry rows to {args.out} "
        f"in {time.time() - t0:.1f} s"
    )


def cmd_bench(args) -> None:
    from pipelines.devtools.bench import fleet_day, run

    if args.publish_history:
        from pipelines.devtools.bench.publish_growth import publish_growth

        publish_growth(args.devices or 64, [int(n) for n in args.lengths.split(",")], say=say)
    elif args.history:
        from pipelines.devtools.bench.history import history

        prepare_environment()
        history(args.devices or 64, args.days, say=say)
    elif args.fleet_day:
        prepare_environment()
        fleet_day(args.devices or 1000, say=say, readers=args.readers)
    else:
        run(args.scale, args.repeat, say=say)


def cmd_validate_energy(args) -> None:
    from pipelines.attribution.validation import GroundTruthError, validate_energy
    from pipelines.settings import current

    if args.simulate:
        simulate_and_score(args)
        return
    truth = Path(args.ground_truth)
    if not truth.is_file():
        raise UserError(f"no ground-truth file at {truth} (--ground-truth takes a CSV file)")
    with open_warehouse(live=True) as con:
        try:
            report = validate_energy(con, truth, max_gap_s=current().max_gap_s)
        except GroundTruthError as exc:
            raise UserError(f"{exc} (see `infercost validate-energy --help`)") from None
    say(report.text())
    if not report.rows:
        raise UserError("nothing to compare: no ground-truth row matched attributed energy")


def simulate_and_score(args) -> None:
    """`validate-energy --simulate`: every telemetry kind and rule scored against the simulator's truth."""
    from pipelines.devtools.simulate import run_simulation, table_text

    if args.seconds < 30:
        raise UserError("--seconds must be at least 30 (each regime runs several phases of 3-15 s)")
    t0 = time.time()
    scores, runs, requests, _ = run_simulation(args.seed, args.seconds, folder=args.keep_files)
    say(table_text(scores, requests, runs))
    say(f"({time.time() - t0:.0f} s; seed {args.seed}, {args.seconds:g} s per regime)")


def add_generate(sub) -> None:
    s = add_command(sub, "generate", help="write a seeded synthetic fleet in real file formats")
    s.add_argument("--devices", type=int, default=24, help="accelerators, a multiple of 8 (default 24)")
    s.add_argument("--days", type=int, default=1)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--start", default="2026-11-02", help="first UTC day (default 2026-11-02)")
    s.add_argument("--load", type=float, default=1.0, help="relative load; 1.0 gives batch ~7 at peak")
    s.add_argument("--out", required=True, help="landing directory to write")
    s.set_defaults(func=cmd_generate)


GROUND_TRUTH_HELP = """\
The ground truth is a CSV file with a header row, in one of two layouts:

  request_id,energy_j[,group]
      an engine's per-request energy log; compared with the request's attributed energy
  device_id,window_start,window_end,energy_j[,group]
      a hardware counter or meter read over windows; compared with the energy the telemetry meters on the
      device over the window

energy_j is in joules (1 kWh = 3,600,000 J). window_start and window_end are ISO 8601
(2024-03-29T12:43:09Z, 2024-03-29 08:43:09-04:00; no offset means UTC) or unix seconds (1711716189,
1711716189.25). group is optional: totals are printed per group and for all rows. The live warehouse is read
(INFERCOST_HOME); energies are printed in joules, errors as (attributed - measured) / measured.

--simulate needs no warehouse: it draws a seeded 10 ms power truth from simulated requests (six regimes: short
requests, big batches, speculative decoding, fp32, MoE, mixed), writes what nvidia-smi (1 s, power.draw and
power.draw.instant), DCGM (1 s, power and energy counter) and an NVML poller (100 ms energy counter) would log,
reads those files with the ingest's readers, and prints each rule's error against the truth side by side."""


def add_validate_energy(sub) -> None:
    import argparse

    s = add_command(
        sub,
        "validate-energy",
        help="compare attributed energy with measured ground truth",
        description=GROUND_TRUTH_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = s.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--ground-truth",
        help="CSV: energy_j (J) with request_id, or with device_id, "
        "window_start, window_end (ISO 8601 or unix seconds); optional group",
    )
    source.add_argument(
        "--simulate",
        action="store_true",
        help="score every telemetry kind and rule against a seeded 10 ms power simulation (no warehouse needed)",
    )
    s.add_argument("--seed", type=int, default=12, help="the simulation's seed (default 12)")
    s.add_argument("--seconds", type=float, default=600.0, help="simulated seconds per regime (default 600)")
    s.add_argument("--keep-files", help="write the simulated loggers' files under this folder and keep them")
    s.set_defaults(func=cmd_validate_energy)


def add_bench(sub) -> None:
    s = add_command(sub, "bench", help="time the kernel against exact DuckDB SQL and the floor, or a whole fleet-day")
    s.add_argument("--scale", choices=["S", "M", "L"], default="M")
    s.add_argument("--repeat", type=int, default=3)
    s.add_argument(
        "--fleet-day",
        action="store_true",
        help="time raw files to published marts for a generated fleet-day (see --devices)",
    )
    s.add_argument(
        "--readers",
        action="store_true",
        help="with --fleet-day: first time the request and telemetry ingest by the Python and the DuckDB line "
        "readers side by side",
    )
    s.add_argument(
        "--history",
        action="store_true",
        help="time the daily run on day 1 and on day --days of a fresh warehouse (generated fleet, see --devices)",
    )
    s.add_argument("--days", type=int, default=10, help="days of the history benchmark (default 10)")
    s.add_argument(
        "--publish-history",
        action="store_true",
        help="time publishing (whole file against by day) and the technique comparison on the history bench's day 1 "
        "grown to --lengths days",
    )
    s.add_argument("--lengths", default="1,10,30,60", help="with --publish-history: history lengths in days")
    s.add_argument(
        "--devices", type=int, help="accelerators of the fleet-day (default 1000) or of the history (default 64)"
    )
    s.set_defaults(func=cmd_bench)
