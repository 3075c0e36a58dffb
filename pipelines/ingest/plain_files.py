"""A compressed landing file decompressed into a temporary plain file, for DuckDB's multithreaded readers
(duckdb_lines.py), through decompress.text_blocks and its caps; the next file decompressed ahead in a thread while
the current one is parsed. Its line ends are counted as the blocks go by, so a reader can tell how many lines the
file has without another pass over it."""

from __future__ import annotations

import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from pipelines.ingest.decompress import text_blocks
from pipelines.warehouse import temp_files

# a file name DuckDB would read as a glob, or that needs quoting we do not risk: the Python path reads it
GLOB_CHARS = set("*?[]{}'\\")


def compressed(path: Path) -> bool:
    return path.suffix == ".gz" or path.name.endswith((".tar", ".tgz"))


class DecompressAhead:
    """Decompresses the next compressed file into its temporary plain file in a thread while DuckDB reads and
    parses the current one (zlib and file writes release the GIL), through decompress.text_blocks and its caps as
    ever. At most one file is decompressed ahead; ``close`` waits for it and removes what was not taken."""

    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infercost-decompress")
        self._pending: dict[Path, Future] = {}

    def start(self, path: Path) -> None:
        path = Path(path)
        if compressed(path) and path not in self._pending and not GLOB_CHARS & set(str(path)):
            self._pending[path] = self._pool.submit(decompress_to_temp, path)

    def take(self, path: Path) -> Future | None:
        return self._pending.pop(Path(path), None)

    def close(self) -> None:
        for job in self._pending.values():
            try:
                tmp, _, _ = job.result()
            except Exception:  # a file not taken (the run stopped before it): its error is not raised
                continue
            shutil.rmtree(tmp, ignore_errors=True)
        self._pending.clear()
        self._pool.shutdown(wait=True)


def decompress_to_temp(path: Path) -> tuple[Path, Path | None, int]:
    """(a new temporary directory, the file's text decompressed into it or None: see _decompressed, the line ends
    in that text)."""
    tmp = temp_files.make_dir("lines")
    try:
        return (tmp, *_decompressed(path, tmp / "lines.txt"))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _decompressed(path: Path, out: Path) -> tuple[Path | None, int]:
    """(``out``, the file's text written to it through decompress.text_blocks (its caps and checks), or None when
    the stream reports a problem (a damaged stream, a cap passed): the Python path then reads it and says so; the
    line ends ("\\n") written, counted as the blocks go by)."""
    newlines = 0
    with open(out, "wb") as f:
        for data, problem in text_blocks(path):
            if problem:
                return None, newlines
            f.write(data)
            newlines += data.count(b"\n")
    return out, newlines


def count_newlines(plain: Path) -> int:
    """The line ends ("\\n") in a plain file."""
    n = 0
    with open(plain, "rb") as f:
        while block := f.read(16 * 2**20):
            n += block.count(b"\n")
    return n
