"""Reading landing files: which files a day opens, decompression (gzip members, a tar archive of one file) and
splitting text into numbered lines in Arrow tables (source_file, source_line, raw_text).

Pure Python and Arrow; knows nothing of formats or the warehouse.
"""

from __future__ import annotations

import io
import re
import tarfile
import zlib
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.ingest.report import IngestError

_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")

# a large file is read in pieces of about this much text, so that a fleet-day's files never sit in memory whole
CHUNK_BYTES = 256 * 2**20


def date_in_name(path: Path) -> date | None:
    """The date (YYYY-MM-DD) in a file's name, or None."""
    m = _DATE_IN_NAME.search(Path(path).name)
    if not m:
        return None
    try:
        return date.fromisoformat(m.group(1))
    except ValueError:
        return None


def files_for(folder: Path, patterns: tuple[str, ...], day: date | None) -> list[Path]:
    """The files of a folder matching the patterns, by name; for a day, those whose name holds no date or a date at
    most one day away."""
    files = sorted({p for pat in patterns for p in folder.glob(pat) if p.is_file()})
    if day is None:
        return files
    return [p for p in files if (named := date_in_name(p)) is None or abs((named - day).days) <= 1]


def read_lines(path: Path) -> tuple[pa.Table, str | None]:
    """All non-blank lines of a (possibly gzipped) text file with 1-based line numbers, and a problem text (a
    truncated or corrupt gzip stream) or None. See iter_line_chunks."""
    tables, problems = [], []
    for table, problem in iter_line_chunks(path, chunk_bytes=None):
        tables.append(table)
        if problem:
            problems.append(problem)
    return pa.concat_tables(tables), (problems[0] if problems else None)


def _compressed_blocks(path: Path, block: int = 16 * 2**20):
    try:
        with open(path, "rb") as f:
            while data := f.read(block):
                yield data
    except OSError as exc:
        raise IngestError(f"{path}: cannot be read ({exc})") from exc


def _text_blocks(path: Path):
    """(decompressed bytes, problem) blocks of a file: gzip members one after the other, a tar archive's single
    member, or the bytes as they are. A damaged gzip stream ends the file with a problem text; a file whose very
    start is not gzip cannot be read at all."""
    if path.name.endswith((".tar.gz", ".tgz", ".tar")):  # a published archive of one CSV (e.g. Alibaba's traces)
        raw = b"".join(_compressed_blocks(path))
        if path.name.endswith((".tar.gz", ".tgz")):
            try:
                raw = zlib.decompress(raw, wbits=31)
            except zlib.error as exc:
                raise IngestError(f"{path}: not a readable gzip file ({exc})") from exc
        yield _single_tar_member(path, raw), None
        return
    if path.suffix != ".gz":
        for data in _compressed_blocks(path):
            yield data, None
        return
    d = zlib.decompressobj(wbits=31)
    started = produced = False
    for data in _compressed_blocks(path):
        while data:  # one decompressor per gzip member
            started = True
            try:
                out = d.decompress(data)
            except zlib.error as exc:
                if not produced:
                    raise IngestError(f"{path}: not a readable gzip file ({exc})") from exc
                yield b"", f"corrupt gzip member: {exc}"
                return
            if out:
                produced = True
                yield out, None
            if d.eof:
                data = d.unused_data
                d = zlib.decompressobj(wbits=31)
                started = False
            else:
                data = b""
    if started and not d.eof:
        yield b"", "truncated gzip stream (no end-of-stream marker)"


def _single_tar_member(path: Path, data: bytes) -> bytes:
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            if len(members) != 1:
                raise IngestError(f"{path}: an archive is read when it holds one file; it holds {len(members)} "
                                  "(extract it into the landing folder)")
            return tar.extractfile(members[0]).read()
    except tarfile.TarError as exc:
        raise IngestError(f"{path}: not a readable tar archive ({exc})") from exc


def iter_line_chunks(path: Path, chunk_bytes: int | None = CHUNK_BYTES):
    """A file's non-blank lines in tables of about ``chunk_bytes`` of text (all at once when None), each with
    source_file, source_line (1-based, counting every physical line) and raw_text; and with each table the problem
    that ended the file there, or None.

    CRLF endings are normalized; bytes that are not UTF-8 are replaced (U+FFFD) and the row is loaded or
    quarantined as its content decides. A truncated gzip stream keeps the lines before the damage and reports a
    problem (the last, partial line is named in it), which becomes a quarantine row of its own.
    """
    pending = b""
    line_no = 0
    for data, problem in _text_blocks(path):
        pending += data
        if problem:
            head, sep, last = pending.rpartition(b"\n")
            if last:
                problem += f"; last partial line dropped: {last.decode('utf-8', 'replace')[:200]!r}"
            table, line_no = _lines_table(path, head + sep, line_no)
            yield table, problem
            return
        while chunk_bytes is not None and len(pending) >= chunk_bytes:
            # a piece ends at a line end (never inside a UTF-8 character)
            cut = pending.rfind(b"\n", 0, chunk_bytes) + 1 or pending.find(b"\n", chunk_bytes) + 1
            if cut == 0:
                break  # one line longer than a piece: wait for its end
            table, line_no = _lines_table(path, pending[:cut], line_no)
            pending = pending[cut:]
            yield table, None
    table, line_no = _lines_table(path, pending, line_no)
    yield table, None


def _lines_table(path: Path, data: bytes, first_line: int) -> tuple[pa.Table, int]:
    """The non-blank lines of a block of text that starts after line ``first_line``, and the last line number."""
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
    # blank lines (empty or whitespace only) are not rows: only short lines can be blank, so only those are looked at
    short = np.flatnonzero(pc.binary_length(lines).to_numpy(zero_copy_only=False) < 64)
    candidates = lines.take(pa.array(short, pa.int64()))
    is_blank = pc.or_(pc.equal(pc.binary_length(candidates), 0), pc.utf8_is_space(candidates))
    blank = short[is_blank.to_numpy(zero_copy_only=False)]
    nums = np.arange(first_line + 1, first_line + n_lines + 1, dtype=np.int64)
    if len(blank) == 0:
        raws = lines
    else:
        keep = np.ones(n_lines, dtype=bool)
        keep[blank] = False
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
    return table, first_line + n_lines
