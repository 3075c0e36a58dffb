"""Reading landing files: which files a day opens, in which order, and their text (see decompress.py) split into
numbered lines in Arrow tables (source_file, source_line, raw_text), a piece at a time.

A line longer than MAX_LINE_BYTES (MAX_DOCUMENT_LINE_BYTES for a reader that takes a file whole, as a JSON document
may be one line) is not kept: it becomes a problem (a quarantine row) holding its first characters, and the rest of
it is skipped as it streams by, so that no line can take unbounded memory.

Pure Python and Arrow; knows nothing of formats or the warehouse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.ingest.decompress import CapPassed, text_blocks

_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")

# a large file is read in pieces of about this much text, so that a fleet-day's files never sit in memory whole
CHUNK_BYTES = 256 * 2**20
# the longest line kept for a reader that takes a file line by line, and for one that takes a file whole
MAX_LINE_BYTES = 2**20
MAX_DOCUMENT_LINE_BYTES = 256 * 2**20
# a quarantined over-long line keeps this many of its first characters as its raw text
KEPT_PREFIX_CHARS = 200


def date_in_name(path: Path) -> date | None:
    """The date (YYYY-MM-DD) in a file's name, or None."""
    m = _DATE_IN_NAME.search(Path(path).name)
    if not m:
        return None
    try:
        return date.fromisoformat(m.group(1))
    except ValueError:
        return None


def by_arrival(files) -> list[Path]:
    """Files in the order they arrived: modification time, then name (a redelivery comes after the original)."""

    def arrived(p: Path) -> int:
        try:
            return Path(p).stat().st_mtime_ns
        except OSError:
            return -1  # reading it will say what is wrong

    return sorted(files, key=lambda p: (arrived(p), Path(p).name, str(p)))


def files_for(folder: Path, patterns: tuple[str, ...], day: date | None) -> list[Path]:
    """The files of a folder matching the patterns, by arrival; for a day, those whose name holds no date or a date
    at most one day away."""
    files = by_arrival({p for pat in patterns for p in folder.glob(pat) if p.is_file()})
    if day is None:
        return files
    return [p for p in files if (named := date_in_name(p)) is None or abs((named - day).days) <= 1]


def files_table(files: list[Path]) -> pa.Table:
    """The rows of a run's table of files (load_sql.FILES_TABLE), in arrival order: each file's name, the date in
    its name, its rank of arrival, and no carried date yet."""
    return pa.table(
        {
            "source_file": pa.array([str(p) for p in files], pa.string()),
            "name_date": pa.array([date_in_name(p) for p in files], pa.date32()),
            "arrival": pa.array(range(len(files)), pa.int64()),
            "carried_date": pa.nulls(len(files), pa.date32()),
        }
    )


@dataclass(frozen=True)
class LineProblem:
    """A line that cannot be a row (or the point where a file stopped being read): quarantined as it says."""

    line: int
    raw_text: str
    reason: str


def read_lines(path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> tuple[pa.Table, str | None]:
    """All non-blank lines of a (possibly compressed) text file with 1-based line numbers, and the first problem's
    reason (an over-long line, a truncated or corrupt gzip stream) or None. See iter_line_chunks."""
    tables, problems = [], []
    for table, found in iter_line_chunks(path, chunk_bytes=None, max_line_bytes=max_line_bytes):
        tables.append(table)
        problems += found
    return pa.concat_tables(tables), (problems[0].reason if problems else None)


def iter_line_chunks(path: Path, chunk_bytes: int | None = CHUNK_BYTES, max_line_bytes: int = MAX_LINE_BYTES):
    """A file's non-blank lines in tables of about ``chunk_bytes`` of text (all at once when None), each with
    source_file, source_line (1-based, counting every physical line) and raw_text; and with each table a list of
    LineProblems, lines that are quarantined instead.

    CRLF endings are normalized; bytes that are not UTF-8 are replaced (U+FFFD) and the row is loaded or
    quarantined as its content decides. A line longer than ``max_line_bytes`` is a problem of its own. A truncated
    gzip stream keeps the lines before the damage and ends with a problem (naming the last, partial line); a file
    that passes a decompression cap ends with a problem at the first line not read.
    """
    yield from split_text(path, chunk_bytes, max_line_bytes, lines_table)


def split_text(path: Path, chunk_bytes: int | None, max_line_bytes: int, take):
    """A file's text cut at line ends into pieces of about ``chunk_bytes`` (all at once when None), each made by
    ``take(path, text, lines_before, max_line_bytes)`` -> (piece, last line number, its over-long lines), and
    handed over with the LineProblems found so far (iter_line_chunks: take=lines_table gives Arrow tables)."""
    split = _LineSplitter(Path(path), chunk_bytes, max_line_bytes, take)
    for data, problem in text_blocks(Path(path)):
        yield from split.add(data)
        if problem:
            yield split.end(problem)
            return
    yield split.end(None)


class _LineSplitter:
    """Cuts a stream of text blocks into tables of whole lines, numbering every physical line; a line that runs on
    past the cap is skipped as it streams by and set aside as a problem."""

    def __init__(self, path: Path, chunk_bytes: int | None, max_line_bytes: int, take):
        self.path, self.chunk_bytes, self.max_line_bytes, self.take = path, chunk_bytes, max_line_bytes, take
        self.pending = bytearray()
        self.line_no = 0  # the last line handed over
        self.problems: list[LineProblem] = []
        self.skipping: tuple[str, int] | None = None  # an over-long line: its first characters, its bytes so far

    def add(self, data: bytes):
        """The tables of whole lines that the text so far completes."""
        if self.skipping is not None:
            end = data.find(b"\n")
            if end < 0:
                self.skipping = (self.skipping[0], self.skipping[1] + len(data))
                return
            self._skipped(self.skipping[0], self.skipping[1] + end)
            data = data[end + 1 :]
        self.pending += data
        while self.chunk_bytes is not None and len(self.pending) >= self.chunk_bytes:
            # a piece ends at a line end (never inside a UTF-8 character)
            cut = self.pending.rfind(b"\n", 0, self.chunk_bytes) + 1 or self.pending.find(b"\n", self.chunk_bytes) + 1
            if cut == 0:
                break  # one line longer than a piece: wait for its end
            yield self._take(cut)
        start = self.pending.rfind(b"\n") + 1
        if len(self.pending) - start > self.max_line_bytes:  # the last line runs on past the cap: skip the rest
            if start:
                yield self._take(start)
            self.skipping = (_prefix(self.pending), len(self.pending))
            self.pending.clear()

    def end(self, problem: str | None) -> tuple[pa.Table, list[LineProblem]]:
        """The last lines, and the problem that ended the file, if any (at the first line not read)."""
        if isinstance(problem, CapPassed):  # what is not yet split is not read either
            self.pending.clear()
            self.skipping = None
        elif problem:  # a damaged stream: the whole lines before it are read, the partial one is named
            head = self.pending.rfind(b"\n") + 1
            last = self.skipping[0] if self.skipping else _prefix(self.pending[head:])
            if last:
                problem += f"; last partial line dropped: {last!r}"
            del self.pending[head:]
            self.skipping = None
        elif self.skipping is not None:  # the last line, without a line end, is over the cap
            self._skipped(*self.skipping)
        table, problems = self._take(len(self.pending))
        if problem:
            problems.append(LineProblem(self.line_no + 1, "", problem))
        return table, problems

    def _skipped(self, prefix: str, n_bytes: int) -> None:
        self.line_no += 1
        self.problems.append(LineProblem(self.line_no, prefix, _too_long(self.max_line_bytes, n_bytes)))
        self.skipping = None

    def _take(self, cut: int) -> tuple[pa.Table, list[LineProblem]]:
        table, self.line_no, long = self.take(self.path, self.pending[:cut], self.line_no, self.max_line_bytes)
        del self.pending[:cut]
        problems, self.problems = self.problems + long, []
        return table, problems


def _prefix(data: bytes) -> str:
    return bytes(data[: 4 * KEPT_PREFIX_CHARS]).decode("utf-8", "replace")[:KEPT_PREFIX_CHARS]


def _too_long(max_line_bytes: int, n_bytes: int) -> str:
    return f"line longer than {max_line_bytes:,} bytes ({n_bytes:,} bytes)"


def _blank_rows(lines: pa.Array, lengths: np.ndarray) -> np.ndarray:
    """The positions of blank lines (empty or whitespace only), which are not rows: only short lines can be blank,
    so only those are looked at."""
    short = np.flatnonzero(lengths < 64)
    candidates = lines.take(pa.array(short, pa.int64()))
    is_blank = pc.or_(pc.equal(pc.binary_length(candidates), 0), pc.utf8_is_space(candidates))
    return short[is_blank.to_numpy(zero_copy_only=False)]


def drop_blank_lines(lines: pa.Array, nums: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The lines that are not blank (by the rule of lines_table), with their line numbers."""
    blank = _blank_rows(lines, pc.binary_length(lines).to_numpy(zero_copy_only=False))
    if len(blank) == 0:
        return lines, nums
    keep = np.ones(len(lines), dtype=bool)
    keep[blank] = False
    rows = pa.array(np.flatnonzero(keep))
    return lines.take(rows), nums.take(rows)


def count_lines(data: bytes) -> int:
    """The physical lines of a block of text as lines_table counts them (a last line needs no line end)."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def lines_table(
    path: Path, data: bytes, first_line: int, max_line_bytes: int
) -> tuple[pa.Table, int, list[LineProblem]]:
    """The non-blank lines of a block of text that starts after line ``first_line``, the last line number, and the
    lines over the cap (left out of the table)."""
    text = data.decode("utf-8", errors="replace")
    del data
    # split, number and drop blank lines in Arrow (C++), not line by line in Python
    lines = pc.list_flatten(pc.split_pattern(pa.array([text], pa.large_string()), "\n"))
    del text
    n_lines = len(lines)
    if n_lines and len(lines[n_lines - 1].as_py() or "") == 0:
        n_lines -= 1  # the empty piece after a final newline is not a line
        lines = lines.slice(0, n_lines)
    if pc.any(pc.ends_with(lines, "\r")).as_py():  # CRLF: predicates are cheap, rewriting every line is not
        lines = pc.utf8_rtrim(lines, "\r")
    lengths = pc.binary_length(lines).to_numpy(zero_copy_only=False)
    blank = _blank_rows(lines, lengths)
    long = np.flatnonzero(lengths > max_line_bytes)
    nums = np.arange(first_line + 1, first_line + n_lines + 1, dtype=np.int64)
    problems = [
        LineProblem(int(nums[i]), prefix, _too_long(max_line_bytes, int(lengths[i])))
        for i, prefix in zip(
            long, pc.utf8_slice_codeunits(lines.take(pa.array(long, pa.int64())), 0, KEPT_PREFIX_CHARS).to_pylist()
        )
    ]
    if len(blank) == 0 and len(long) == 0:
        raws = lines
    else:
        keep = np.ones(n_lines, dtype=bool)
        keep[blank] = False
        keep[long] = False
        rows = np.flatnonzero(keep)
        raws, nums = lines.take(pa.array(rows)), nums[rows]
    if raws.nbytes < 2**31 - 2**20:  # 32-bit offsets suffice below 2 GB of text
        raws = raws.cast(pa.string())
    table = pa.table(
        {
            "source_file": pa.array([str(path)], pa.string()).take(np.zeros(len(raws), dtype=np.int64)),
            "source_line": pa.array(nums),
            "raw_text": raws,
        }
    )
    return table, first_line + n_lines, problems
