"""A landing file's bytes in bounded blocks: gzip members one after the other, a tar archive's single member, or
the bytes as they are.

Memory stays bounded whatever a file expands to: decompressed output comes in blocks of at most OUT_BLOCK_BYTES.
A compressed file that expands more than MAX_EXPANSION_RATIO times (once past RATIO_FLOOR_BYTES of output), or past
MAX_DECOMPRESSED_BYTES, is not read further: the stream ends with a problem text naming the file and the cap (a
decompression bomb never reaches memory or the warehouse). Real logs compress 5-20 times; gzip cannot exceed about
1,030 times.

Gzip is inflated by ISA-L (the ``isal`` package, 2.5 to 4 times zlib's speed on these logs) with the same stream
rules as zlib: each member's header is checked as zlib checks it (magic, method, reserved flags), since ISA-L lets
reserved flags through, and an ISA-L error is a damaged stream as a zlib error is. Without ``isal``, zlib.
"""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path

from pipelines.ingest.report import IngestError

try:  # ISA-L's inflate, a drop-in for zlib's decompressobj
    from isal import isal_zlib as _inflate
except ImportError:  # pragma: no cover - isal is a dependency; zlib gives the same bytes, slower
    _inflate = zlib
_INFLATE_ERRORS = (zlib.error, _inflate.error)

READ_BLOCK_BYTES = 16 * 2**20
OUT_BLOCK_BYTES = 16 * 2**20
MAX_EXPANSION_RATIO = 200
RATIO_FLOOR_BYTES = 64 * 2**20
MAX_DECOMPRESSED_BYTES = 64 * 2**30


class CapPassed(str):
    """A problem after which nothing more of a file is read, not even the text already decompressed but not yet
    split into lines: the stream's end problem for a file past a cap."""


def expansion_problem(path: Path, produced: int, consumed: int) -> CapPassed | None:
    """Why a file that has expanded from ``consumed`` compressed bytes to ``produced`` bytes is read no further,
    or None."""
    if produced > MAX_DECOMPRESSED_BYTES:
        return CapPassed(
            f"{path.name}: decompressed past {MAX_DECOMPRESSED_BYTES:,} bytes (MAX_DECOMPRESSED_BYTES); "
            "the rest of the file is not read"
        )
    if produced > RATIO_FLOOR_BYTES and produced > MAX_EXPANSION_RATIO * max(consumed, 1):
        return CapPassed(
            f"{path.name}: expands more than {MAX_EXPANSION_RATIO} times ({produced:,} bytes from "
            f"{consumed:,} compressed; a decompression bomb?); the rest of the file is not read"
        )
    return None


def text_blocks(path: Path):
    """(bytes, problem) blocks of a file's text. A problem (a damaged gzip stream, a cap passed) ends the file; a
    file whose very start is not gzip, or an archive not of one file, cannot be read at all (IngestError)."""
    if path.name.endswith((".tar.gz", ".tgz", ".tar")):  # a published archive of one CSV (e.g. Alibaba's traces)
        yield from _tar_member_blocks(path)
    elif path.suffix == ".gz":
        yield from _gzip_blocks(path)
    else:
        for data in _file_blocks(path):
            yield data, None


def _file_blocks(path: Path):
    try:
        with open(path, "rb") as f:
            while data := f.read(READ_BLOCK_BYTES):
                yield data
    except OSError as exc:
        raise IngestError(f"{path}: cannot be read ({exc})") from exc


def _gzip_blocks(path: Path):
    """Gzip members one after the other, each block of output at most OUT_BLOCK_BYTES."""
    d = _inflate.decompressobj(wbits=31)
    started = False
    member_start = True  # the next bytes begin a gzip member (its header is checked as zlib checks it)
    produced = consumed = 0
    for data in _file_blocks(path):
        started = True
        while True:  # one decompressor per gzip member; b"" asks for output still pending
            try:
                if member_start and data:
                    _check_member_header(data)
                    member_start = False
                out = d.decompress(data, OUT_BLOCK_BYTES)
            except _INFLATE_ERRORS as exc:
                if not produced:
                    raise IngestError(f"{path}: not a readable gzip file ({exc})") from exc
                yield b"", f"corrupt gzip member: {exc}"
                return
            rest = d.unused_data if d.eof else d.unconsumed_tail
            consumed += len(data) - len(rest)
            if out:
                produced += len(out)
                yield out, None
                if problem := expansion_problem(path, produced, consumed):
                    yield b"", problem
                    return
            if d.eof:
                d, started, member_start = _inflate.decompressobj(wbits=31), bool(rest), True
                if not rest:
                    break
            elif not rest and len(out) < OUT_BLOCK_BYTES:
                break  # the block is taken and nothing is pending
            data = rest
    if started and not d.eof:
        yield b"", "truncated gzip stream (no end-of-stream marker)"


def _check_member_header(data: bytes) -> None:
    """Raise zlib's error for a gzip member whose first bytes zlib refuses: a wrong magic number, a method other
    than deflate, reserved flag bits set (ISA-L accepts those; zlib, and so the gzip format, does not). Bytes too
    few to tell are left to the inflater."""
    if len(data) >= 2 and data[:2] != b"\x1f\x8b":
        raise zlib.error("Error -3 while decompressing data: incorrect header check")
    if len(data) >= 3 and data[2] != 8:
        raise zlib.error("Error -3 while decompressing data: unknown compression method")
    if len(data) >= 4 and data[3] & 0xE0:
        raise zlib.error("Error -3 while decompressing data: unknown header flags set")


def _tar_member_blocks(path: Path):
    """The one file of a tar archive (gzipped or not), read in blocks; its size is checked against the caps from
    its header before a byte of it is read."""
    try:
        with tarfile.open(path, "r:*") as tar:
            members = []
            for m in tar:  # headers only; stops at a cap before reading past a huge member
                if m.isfile():
                    members.append(m)
                    total = sum(x.size for x in members)
                    if path.name.endswith((".gz", ".tgz")) and (
                        problem := expansion_problem(path, total, path.stat().st_size)
                    ):
                        yield b"", problem
                        return
            if len(members) != 1:
                raise IngestError(
                    f"{path}: an archive is read when it holds one file; it holds {len(members)} "
                    "(extract it into the landing folder)"
                )
            member = tar.extractfile(members[0])
            while data := member.read(OUT_BLOCK_BYTES):
                yield data, None
    except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
        raise IngestError(f"{path}: not a readable tar archive ({exc})") from exc
