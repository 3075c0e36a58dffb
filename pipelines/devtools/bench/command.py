"""Kernel benchmark: pipelines.attribution.kernel against the strongest exact DuckDB SQL we can write, and a floor.

The command line of ``python -m pipelines.devtools.bench`` (``infercost bench`` calls run and fleet_day itself).
"""

from __future__ import annotations

import argparse

from pipelines.devtools.bench.fleet_day import fleet_day
from pipelines.devtools.bench.inputs import SCALES
from pipelines.devtools.bench.kernel_bench import run, run_child
from pipelines.devtools.bench.methods import METHODS


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="infercost bench", description=__doc__.split("\n")[0])
    p.add_argument("--scale", choices=sorted(SCALES), default="M")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--fleet-day", action="store_true", help="time the whole pipeline on a generated fleet-day")
    p.add_argument("--devices", type=int, default=1000, help="accelerators of the fleet-day (default 1000)")
    p.add_argument("--readers", action="store_true", help="with --fleet-day: the two line readers side by side first")
    p.add_argument("--child", choices=sorted(METHODS), help=argparse.SUPPRESS)
    p.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        run_child(args.child, args.scale, args.check)
    elif args.fleet_day:
        fleet_day(args.devices, readers=args.readers)
    else:
        run(args.scale, args.repeat)
