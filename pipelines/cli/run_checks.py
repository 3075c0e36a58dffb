"""What `materialize` checks before Dagster is loaded and before any table is touched: the landing directory, the
readers formats.yaml names for it ($INFERCOST_CONFIG_DIR), the days asked for against the data's days, and the
partition range (INFERCOST_START_DATE follows the earliest day asked for). A problem is one line naming the file
or variable and the fix."""

from __future__ import annotations

import os
import re
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pipelines.cli.helpers import UserError, say

_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")


def landing_days(landing: Path) -> list[date]:
    """Days named in the request log file names of a landing directory."""
    days = set()
    for p in (landing / "requests").glob("*"):
        m = _DATE.search(p.name)
        if m:
            try:
                days.add(date.fromisoformat(m.group(1)))
            except ValueError:
                continue
    return sorted(days)


def describe_days(days: list[date]) -> str:
    if not days:
        return "none"
    if len(days) <= 4:
        return ", ".join(d.isoformat() for d in days)
    return f"{len(days)} days from {days[0]} to {days[-1]}"


def check_landing(landing: Path) -> None:
    """The landing directory has the folders and fleet files a run needs, and its formats.yaml names readers."""
    import yaml

    from pipelines.ingest.feeds import resolve_landing_feed
    from pipelines.ingest.report import IngestError
    from pipelines.warehouse.contracts import (
        FEEDS,
        FLEET_TABLES,
        OPTIONAL_FEEDS,
        OPTIONAL_FLEET_TABLES,
    )

    if not landing.is_dir():
        raise UserError(f"no landing directory at {landing} (give --landing DIR or set INFERCOST_LANDING)")
    for feed in FEEDS:
        if feed not in OPTIONAL_FEEDS and not (landing / feed).is_dir():
            raise UserError(f"{landing / feed}: the {feed} folder is missing from the landing directory")
        try:
            resolve_landing_feed(feed, landing)
        except IngestError as exc:
            raise UserError(f"{exc} (fix {_formats_file(landing)}, README: Input formats)") from None
        except (yaml.YAMLError, AttributeError, TypeError) as exc:  # a formats.yaml that does not parse
            raise UserError(f"{_formats_file(landing)}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    for name in FLEET_TABLES:
        path = landing / "fleet" / f"{name}.csv"
        if name not in OPTIONAL_FLEET_TABLES and not path.is_file():
            raise UserError(f"{path}: fleet file for {name} is missing (README: Fleet files)")


def _formats_file(landing: Path) -> Path:
    """The formats.yaml in force for a landing (the config directory's, or opt-in the landing's)."""
    from pipelines.ingest.formats.config import FORMATS_FILE, config_dirs

    files = [folder / FORMATS_FILE for folder in config_dirs(landing)]
    return next((f for f in files if f.exists()), files[0])


def check_days(landing: Path, start: date, end: date, today: date | None = None) -> None:
    """The days asked for are complete UTC days, and the landing holds request logs for at least one of them: a
    file dated in them or a day either side, which a run of them reads (files.files_for: a late delivery's rows of a
    day, in the next day's file, load by a run of their day)."""
    today = today or datetime.now(UTC).date()
    if end >= today:
        raise UserError(
            f"{end} is not a complete UTC day yet (today is {today}): materialize days up to "
            f"{date.fromordinal(today.toordinal() - 1)}"
        )
    days = landing_days(landing)
    dated_only = days and all(_DATE.search(p.name) for p in (landing / "requests").glob("*") if p.is_file())
    if dated_only and not any(start - timedelta(days=1) <= d <= end + timedelta(days=1) for d in days):
        raise UserError(
            f"no request logs for {start} .. {end} in {landing / 'requests'}; it has data for {describe_days(days)}"
        )


def partition_start_for(start: date) -> None:
    """Make the first daily partition no later than ``start`` (INFERCOST_START_DATE, read when the Dagster
    definitions load). Refused in one line when the definitions were already loaded with a later start."""
    from pipelines.settings import current

    configured = date.fromisoformat(current().start_date)
    if start >= configured:
        return
    loaded = sys.modules.get("pipelines.defs.partitions")
    if loaded is not None and date.fromisoformat(str(loaded.START_DATE)) > start:
        raise UserError(
            f"INFERCOST_START_DATE={configured} is after {start}: set INFERCOST_START_DATE={start} "
            "(or earlier) before the Dagster definitions load"
        )
    os.environ["INFERCOST_START_DATE"] = start.isoformat()
    say(
        f"partitions start at {start} for this run (INFERCOST_START_DATE was {configured}; set it to keep the "
        "earlier days in `infercost dev`)"
    )


def check_run(landing: Path, start: date, end: date) -> None:
    """Every check of a run's inputs, before anything is loaded or replaced."""
    check_landing(landing)
    check_days(landing, start, end)
    partition_start_for(start)
