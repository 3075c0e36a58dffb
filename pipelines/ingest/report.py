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
class IngestReport:
    feed: str
    partition_date: date | None
    files: list[FileReport] = field(default_factory=list)
    written: bool = True
    """False for a dry run, or a refused one: the warehouse was not changed."""
    refusal: str | None = None
    """Why the run would be refused (a dry run says so rather than raising)."""

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
        return (
            f"{self.feed}{day}: {len(self.files)} files, {self.rows_read:,} rows read, "
            f"{self.rows_loaded:,} loaded, {self.rows_quarantined:,} quarantined{skipped}{verb}"
        )

    def file_lines(self) -> list[str]:
        """One line per file: what it loads, quarantines and skips."""
        return [
            f"  {f.source_file}: {f.rows_read:,} read, {f.rows_loaded:,} load, {f.rows_quarantined:,} "
            f"quarantined, {f.rows_skipped:,} skipped" + (f"; energy from {f.energy_source}" if f.energy_source else "")
            for f in self.files
        ]

    def fill(self, counts: dict) -> IngestReport:
        """Set the files from per-file counts {source_file: (read, loaded, quarantined, skipped, energy sources)}."""
        self.files = [FileReport(f, *c) for f, c in counts.items()]
        return self
