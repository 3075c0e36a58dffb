"""decompress.py inflates gzip with ISA-L: the text and the problem (or error) of every stream, whole or damaged,
are the ones zlib gives, except that on a truncated stream ISA-L may hold back the last few bytes zlib had inflated
(2 at most in 6,000 damaged streams; the stream ends with the same problem, and a line those bytes ended is named as
the partial line, not loaded)."""

from __future__ import annotations

import gzip
import random
import zlib

import pytest

from pipelines.ingest import decompress
from pipelines.ingest.report import IngestError


def _stream(path, inflate):
    """(the text, the problem) of a file's gzip stream inflated by ``inflate``; an IngestError's text instead."""
    decompress_module = decompress._inflate
    decompress._inflate = inflate
    try:
        text, problems = bytearray(), []
        for data, problem in decompress.text_blocks(path):
            text += data
            if problem:
                problems.append(problem.split(":")[0])
        return bytes(text), problems
    except IngestError as exc:
        return "error", str(exc).split(" (")[0]
    finally:
        decompress._inflate = decompress_module


def _damaged(rng: random.Random, packed: bytes) -> bytes:
    kind = rng.choice(["truncate", "flip", "garbage_after", "second_member", "header_flags", "magic"])
    if kind == "truncate":
        return packed[: rng.randrange(1, len(packed))]
    if kind == "flip":
        at = rng.randrange(len(packed))
        return packed[:at] + bytes([packed[at] ^ (1 << rng.randrange(8))]) + packed[at + 1 :]
    if kind == "garbage_after":
        return packed + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
    if kind == "second_member":
        return packed + gzip.compress(b"more,lines\n" * rng.randrange(1, 500))
    if kind == "header_flags":
        return packed[:3] + bytes([packed[3] | 0xE0]) + packed[4:]
    return b"\x1f\x00" + packed[2:]


def test_isal_is_the_inflater():
    assert decompress._inflate is not zlib, "isal is a dependency: gzip is inflated by ISA-L"


def test_isal_gives_zlibs_text_and_problems_on_whole_and_damaged_streams(tmp_path):
    rng = random.Random(13)
    path = tmp_path / "x.csv.gz"
    for i in range(1200):
        lines = b"".join(f"{rng.random()},{i},row {n}\n".encode() for n in range(rng.randrange(0, 3000)))
        packed = gzip.compress(lines, compresslevel=rng.choice([1, 6, 9]))
        path.write_bytes(packed if i % 4 == 0 else _damaged(rng, packed))
        isal, by_zlib = _stream(path, decompress._inflate), _stream(path, zlib)
        if isal != by_zlib and isal[1] == by_zlib[1] == ["truncated gzip stream (no end-of-stream marker)"]:
            assert by_zlib[0].startswith(isal[0]) and len(by_zlib[0]) - len(isal[0]) <= 8, i
        else:
            assert isal == by_zlib, i


@pytest.mark.parametrize(
    "blob", [b"\x1f\x8b\x08garbage", b"not gzip at all, just text\n", b"\x1f\x8b\x07" + b"\0" * 20]
)
def test_a_damaged_header_is_refused_as_zlib_refuses_it(tmp_path, blob):
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(blob)
    assert _stream(path, decompress._inflate) == _stream(path, zlib)
    assert "not a readable gzip file" in _stream(path, decompress._inflate)[1]
