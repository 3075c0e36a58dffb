"""What an ingest run reports: for each file, rows read = rows loaded + rows quarantined + rows skipped; the error
raised for a file that cannot be read at all, and the refusal of a run that would lose a loaded day."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


class IngestError(RuntimeError):
    """A file that cannot be read at all, or a reader that cannot read the feed; the message says which and why."""


class IngestRefused(IngestError):
    """A run that would replace a loaded day with far less (no rows, or mostly quarantine): the day is left as it
    was. The message names the files, the counts and the flag that forces the run."""


def counted(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless n is 1: "1 file", "2 files", "129,571 rows"."""
    return f"{n:,} {noun}{'s' * (n != 1)}"


NOT_OPENED = "not opened (remembered unchanged, with no row of the day: pipelines/ingest/file_days.py)"


@dataclass
class FileReport:
    source_file: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    """Rows rejected: they break the contract (ingest_quarantine, with the reason)."""
    rows_skipped: int = 0
    """Rows a mapping's skip rule says are not data (kept in ingest_quarantine too, reason "skipped by ...")."""
    energy_source: str = ""
    """Telemetry: the logged column(s) its loaded samples' energy came from (power.draw, power.draw.average, ...)."""


@dataclass
class OtherDayRows:
    """Rows of other days in a file this run read, that the warehouse does not hold (pipelines/ingest/other_days.py):
    their days' runs came before the file, or have not run."""

    source_file: str
    rows_by_day: dict[date, int] = field(default_factory=dict)
    never_run: set[date] = field(default_factory=set)
    """The days of ``rows_by_day`` that no run has loaded yet."""
    never_read: bool = False
    """A file no run read, dated two days or more before this run's day, whose day's runs came before it
    (other_days.unread_late_files): its rows are not counted (``rows_by_day`` holds its day, with 0)."""

    @property
    def days(self) -> list[date]:
        return sorted(self.rows_by_day)

    @property
    def rows(self) -> int:
        return sum(self.rows_by_day.values())

    def warning(self, command: str = "infercost materialize") -> str:
        """What is not loaded and the command that loads it (``command``: the run's own, with its options)."""
        days = self.days
        if self.never_read:
            return (
                f"{self.source_file}: dated {days[0]}, was never read: it arrived after the runs of {days[0]} and the "
                f"days beside it, and a run reads only the files dated a day either side of its own. "
                f"To load it: `{command} --partition {days[0]}`"
            )
        first, last, one = days[0], days[-1], len(days) == 1
        if not self.never_run:
            why = "the run of that day came before them" if one else "the runs of those days came before them"
        elif self.never_run == set(days):
            why = "that day has not been loaded yet" if one else "those days have not been loaded yet"
        else:
            why = "the runs of those days came before them, or have not run"
        what = (
            f"{self.rows:,} rows of {first}"
            if one
            else f"{self.rows:,} rows of {len(days)} days ("
            + ", ".join(f"{n:,} of {d}" for d, n in sorted(self.rows_by_day.items()))
            + ")"
        )
        days_arg = f"--partition {first}" if one else f"--from {first} --to {last}"
        return (
            f"{self.source_file}: {what} are not in the warehouse ({why}); a run loads only its own day's rows. "
            f"To load them: `{command} {days_arg}`"
        )


@dataclass
class IngestReport:
    feed: str
    partition_date: date | None
    files: list[FileReport] = field(default_factory=list)
    written: bool = True
    """False for a dry run, or a refused one: the warehouse was not changed."""
    refusal: str | None = None
    """Why the run would be refused (a dry run says so rather than raising)."""
    other_days: list[OtherDayRows] = field(default_factory=list)
    """Files read whose rows of other days the warehouse does not hold (each has a warning to show)."""
    files_not_opened: list[str] = field(default_factory=list)
    """Files of the day's folder not opened: remembered, unchanged since, holding no row of the day and nothing the
    day's checks need (pipelines/ingest/file_days.py)."""

    def other_days_outside(self, run_days) -> list[OtherDayRows]:
        """``other_days`` without the days of ``run_days`` (a range run loads those itself, before or after)."""
        kept, run_days = [], set(run_days)
        for o in self.other_days:
            by_day = {d: n for d, n in o.rows_by_day.items() if d not in run_days}
            if by_day:
                kept.append(OtherDayRows(o.source_file, by_day, {d for d in o.never_run if d in by_day}, o.never_read))
        return kept

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    @property
    def rows_skipped(self) -> int:
        return sum(f.rows_skipped for f in self.files)

    def summary(self) -> str:
        day = f" {self.partition_date}" if self.partition_date else ""
        skipped = f", {self.rows_skipped:,} skipped" if self.rows_skipped else ""
        verb = "" if self.written else " (dry run: nothing written)"
        n = len(self.files_not_opened)
        known = f"; {counted(n, 'file')} {NOT_OPENED}" if n else ""
        return (
            f"{self.feed}{day}: {counted(len(self.files), 'file')}, {counted(self.rows_read, 'row')} read, "
            f"{self.rows_loaded:,} loaded, {self.rows_quarantined:,} quarantined{skipped}{verb}{known}"
        )

    def file_lines(self) -> list[str]:
        """One line per file: what it loads, quarantines and skips."""
        return [
            f"  {f.source_file}: {f.rows_read:,} read, {f.rows_loaded:,} load, {f.rows_quarantined:,} "
            f"quarantined, {f.rows_skipped:,} skipped" + (f"; energy from {f.energy_source}" if f.energy_source else "")
            for f in self.files
        ] + [f"  {f}: {NOT_OPENED}" for f in self.files_not_opened]

    def fill(self, counts: dict) -> IngestReport:
        """Set the files from per-file counts {source_file: (read, loaded, quarantined, skipped, energy sources)}."""
        self.files = [FileReport(f, *c) for f, c in counts.items()]
        return self
