"""What an ingest run reports: for each file, rows read = rows loaded + rows quarantined; and the error raised for a
file that cannot be read at all."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


class IngestError(RuntimeError):
    """A file that cannot be read at all; the message names the file and the problem."""


@dataclass
class FileReport:
    source_file: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int


@dataclass
class IngestReport:
    feed: str
    partition_date: date | None
    files: list[FileReport] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    def summary(self) -> str:
        day = f" {self.partition_date}" if self.partition_date else ""
        return (f"{self.feed}{day}: {len(self.files)} files, {self.rows_read:,} rows read, "
                f"{self.rows_loaded:,} loaded, {self.rows_quarantined:,} quarantined")

    def fill(self, counts: dict) -> IngestReport:
        """Set the files from per-file counts {source_file: (read, loaded, quarantined)}."""
        self.files = [FileReport(f, *c) for f, c in counts.items()]
        return self
