"""Load one day of each feed from a landing directory into DuckDB raw tables, losing nothing.

Every line of every file is either loaded into ``raw_<feed>`` or written to ``ingest_quarantine`` with its file,
line number, raw text and reason; ``ingest_file_stats`` records rows read = rows loaded + rows quarantined for each
file of each run. Re-running a partition replaces that day (delete + insert in one transaction).

Which day a row belongs to is the UTC date of its event time (``partition_by`` in its contract). A row that is
quarantined takes the day of the nearest valid row before it in the same file (else after it, else the date in
the file name, else the day being loaded), so that it is quarantined once, beside the rows it came with. Files whose name holds a date (YYYY-MM-DD) more than one day
away from the day being loaded are not opened for it.

Pure DuckDB and Python; imports no Dagster.
"""

from __future__ import annotations

import contextlib
import io
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from pipelines.warehouse.contracts import OPTIONAL_FEEDS, OPTIONAL_FLEET_TABLES, load_contract
from pipelines.ingest.formats import FORMATS, FleetCsv, ParseContext
from pipelines.warehouse.connection import ensure_raw_tables, scalar, table_exists

_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


DEFAULT_FORMATS = {"requests": "openai_jsonl", "telemetry": "nvidia_smi_csv", "prices": "market_csv",
                   "carbon": "carbon_csv"}


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


# a large file is read in pieces of about this much text, so that a fleet-day's files never sit in memory whole
CHUNK_BYTES = 256 * 2**20


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


def _files_for(folder: Path, patterns: tuple[str, ...], day: date | None) -> list[Path]:
    files = sorted({p for pat in patterns for p in folder.glob(pat) if p.is_file()})
    if day is None:
        return files
    keep = []
    for p in files:
        m = _DATE_IN_NAME.search(p.name)
        if m:
            try:
                if abs((date.fromisoformat(m.group(1)) - day).days) > 1:
                    continue
            except ValueError:
                pass
        keep.append(p)
    return keep


def ingest_feed(con: duckdb.DuckDBPyConnection, feed: str, landing: Path, day: date, *,
                fmt: str | None = None, options: dict | None = None, progress=None) -> IngestReport:
    """Load the rows of ``day`` from every file of ``landing/<feed>/`` into raw_<feed>.

    The format and its options come from the arguments, else from ``<landing>/formats.yaml`` (``<feed>: {format:
    ..., options: {...}}``), else the feed's default format.
    """
    ensure_raw_tables(con)
    configured = landing_formats(Path(landing)).get(feed, {})
    fmt = fmt or configured.get("format")
    options = {**configured.get("options", {}), **(options or {})}
    if (fmt or DEFAULT_FORMATS[feed]) not in FORMATS:
        raise IngestError(f"unknown format {fmt!r} for {feed}; known: {', '.join(sorted(FORMATS))}")
    parser = FORMATS[fmt or DEFAULT_FORMATS[feed]]
    folder = Path(landing) / feed
    if not folder.is_dir():
        if feed in OPTIONAL_FEEDS:
            return _load(con, feed, [], day)
        raise IngestError(f"{folder}: landing folder for {feed} does not exist")
    files = _files_for(folder, parser.patterns, day)
    return ingest_files(con, feed, files, day, fmt=fmt, options=options, landing=Path(landing), progress=progress)


def landing_formats(landing: Path) -> dict:
    """The landing directory's formats.yaml: which reader (and options) each feed's files need."""
    path = Path(landing) / "formats.yaml"
    if not path.exists():
        return {}
    config = yaml.safe_load(path.read_text()) or {}
    if not isinstance(config, dict):
        raise IngestError(f"{path}: expected a mapping of feed -> {{format, options}}")
    return config


# files are parsed and loaded in batches of about this many lines, so that memory stays bounded however many
# files a day has; all batches of a run are one transaction (a failed run changes nothing)
BATCH_LINES = 2_000_000


def ingest_files(con: duckdb.DuckDBPyConnection, feed: str, files: list[Path], day: date | None, *,
                 fmt: str | None = None, options: dict | None = None, landing: Path | None = None,
                 progress=None) -> IngestReport:
    """Load the rows of ``day`` (every day when None) from the given files (read in place) into raw_<feed>,
    replacing what an earlier run loaded for that day. ``progress(files_done, files_total, report)`` is called
    after every batch."""
    ensure_raw_tables(con)
    parser = FORMATS[fmt or DEFAULT_FORMATS[feed]]
    ctx = ParseContext(con=con, landing=landing, day=day, options=options or {})
    report = IngestReport(feed=feed, partition_date=day)
    # a reader that takes a file piece by piece says how: chunks = "lines" (every line stands alone) or "header"
    # (the first line is a header, repeated at the top of every later piece); others read a file whole
    chunks = getattr(parser, "chunks", None)
    with _replacing(con, feed, day, report) as counts:
        parts, lines_in_batch = [], 0
        for i, path in enumerate(files, start=1):
            header = None
            for lines, problem in iter_line_chunks(path, CHUNK_BYTES if chunks else None):
                if header is not None:
                    lines = pa.concat_tables([header, lines])
                elif chunks == "header" and lines.num_rows:
                    header = lines.slice(0, 1)
                parts.append(parser.parse(ctx, path, lines))
                ctx.release()
                if problem:
                    last = lines["source_line"][-1].as_py() if lines.num_rows else 0
                    parts.append(_problem_row(con, feed, path, last + 1, problem))
                lines_in_batch += lines.num_rows
                del lines
                if lines_in_batch >= BATCH_LINES:
                    _load_batch(con, feed, parts, day, counts)
                    parts, lines_in_batch = [], 0
                    if progress:  # a long file reports each batch too
                        progress(i - 1, len(files), _report(report, counts))
            if i == len(files) and parts:
                _load_batch(con, feed, parts, day, counts)
                parts, lines_in_batch = [], 0
            if progress:
                progress(i, len(files), _report(report, counts))
    return report


def ingest_fleet_table(con: duckdb.DuckDBPyConnection, name: str, landing: Path) -> IngestReport:
    """Load fleet/<name>.csv (a version-controlled file) into raw_<name>, replacing what was there."""
    ensure_raw_tables(con)
    path = Path(landing) / "fleet" / f"{name}.csv"
    if not path.exists():
        if name in OPTIONAL_FLEET_TABLES:
            return _load(con, name, [], None)  # an empty table
        raise IngestError(f"{path}: fleet file for {name} is missing")
    lines, problem = read_lines(path)
    if problem:
        raise IngestError(f"{path}: {problem}")
    rel = FleetCsv(name).parse(ParseContext(con=con, landing=Path(landing), day=None, options={}), path, lines)
    return _load(con, name, [rel], None)


def _problem_row(con, feed, path: Path, line: int, problem: str) -> str:
    contract = load_contract(feed)
    cols = ", ".join(f"NULL::{c.type} AS {c.name}" for c in contract.columns)
    name = f"problem_{abs(hash((str(path), line))) % 10**9}"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {cols}, ?::VARCHAR AS source_file, ?::BIGINT AS source_line,"
        f" ''::VARCHAR AS raw_text, ?::VARCHAR AS reason, NULL::DATE AS event_date",
        [str(path), line, problem],
    )
    return name


def _load(con: duckdb.DuckDBPyConnection, feed: str, parsed_parts: list[str], day: date | None) -> IngestReport:
    """Replace the day's rows (all rows when day is None) with the parsed parts, in one transaction."""
    report = IngestReport(feed=feed, partition_date=day)
    with _replacing(con, feed, day, report) as counts:
        _load_batch(con, feed, parsed_parts, day, counts)
    return report


@contextlib.contextmanager
def _replacing(con: duckdb.DuckDBPyConnection, feed: str, day: date | None, report: IngestReport):
    """Replace a day's rows of a feed (every day's when None) with what the loads inside the block stage.

    Each batch is staged as it comes (committed into a temporary table, so DuckDB owns a copy and may spill it: a
    batch waiting in an open transaction would pin the Arrow text it was read from); the day is then replaced
    from the stage in one transaction, so a failed run changes nothing. Yields the per-file counts to fill."""
    counts: dict = {}
    con.execute(f"DROP TABLE IF EXISTS {_stage(feed)}")
    try:
        yield counts
        cols = ", ".join(load_contract(feed).names)
        staged = table_exists(con, _stage(feed))
        con.execute("BEGIN TRANSACTION")
        try:
            _clear(con, feed, day)
            if staged:
                con.execute(
                    f"INSERT INTO raw_{feed} ({cols}, source_file, source_line, partition_date, loaded_at) "
                    f"SELECT {cols}, source_file, source_line, partition_date, now() FROM {_stage(feed)} "
                    "WHERE reason IS NULL")  # in staging order, batch by batch: no sort of a fleet-day
                con.execute(
                    "INSERT INTO ingest_quarantine SELECT ?, partition_date, source_file, source_line, raw_text, "
                    f"reason, now() FROM {_stage(feed)} WHERE reason IS NOT NULL",
                    [feed])
            _write_file_stats(con, feed, day, counts)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        _report(report, counts)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_stage(feed)}")


def _stage(feed: str) -> str:
    return f"_stage_{feed}"


def _day_sql(day: date | None) -> str:
    """The partition day as a SQL literal (NULL when a load covers every day)."""
    return f"DATE '{day.isoformat()}'" if day else "NULL::DATE"


def _clear(con: duckdb.DuckDBPyConnection, feed: str, day: date | None) -> None:
    where = f"partition_date = {_day_sql(day)}" if day else "true"
    con.execute(f"DELETE FROM raw_{feed} WHERE {where}")
    con.execute(f"DELETE FROM ingest_quarantine WHERE feed = ? AND {where}", [feed])
    con.execute(f"DELETE FROM ingest_file_stats WHERE feed = ? AND {where}", [feed])


def _report(report: IngestReport, counts: dict) -> IngestReport:
    report.files = [FileReport(f, *c) for f, c in counts.items()]
    return report


def _write_file_stats(con: duckdb.DuckDBPyConnection, feed: str, day: date | None, counts: dict) -> None:
    """One ingest_file_stats row per file: rows read = rows loaded + rows quarantined."""
    day_sql = _day_sql(day)
    if counts:
        con.executemany(f"INSERT INTO ingest_file_stats VALUES (?, {day_sql}, ?, ?, ?, ?, now())",
                        [[feed, f, *c] for f, c in sorted(counts.items())])


def _load_batch(con: duckdb.DuckDBPyConnection, feed: str, parsed_parts: list[str], day: date | None,
                counts: dict) -> None:
    """Stage one batch of parsed files (or pieces of files), each row with its day and its reason if it is to be
    quarantined; each file's rows read, loaded and quarantined are added to ``counts``."""
    contract = load_contract(feed)
    if parsed_parts:
        union = " UNION ALL BY NAME ".join(f"SELECT * FROM {p}" for p in parsed_parts)
    else:
        union = (f"SELECT {', '.join(f'NULL::{c.type} AS {c.name}' for c in contract.columns)}, NULL::VARCHAR AS "
                 "source_file, NULL::BIGINT AS source_line, NULL::VARCHAR AS raw_text, NULL::VARCHAR AS reason, "
                 "NULL::DATE AS event_date WHERE false")
    day_sql = _day_sql(day)
    any_bad = bool(scalar(con, f"SELECT count(*) FROM ({union}) WHERE reason IS NOT NULL"))
    if any_bad:
        # a quarantined row takes the day of the nearest valid row before it in its file (else after it, else
        # the date in the file name, else the day being loaded)
        assigned_date = f"""coalesce(
                valid_date,
                last_value(valid_date IGNORE NULLS) OVER (PARTITION BY source_file ORDER BY source_line
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
                first_value(valid_date IGNORE NULLS) OVER (PARTITION BY source_file ORDER BY source_line
                    ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING),
                TRY_CAST(regexp_extract(regexp_extract(source_file, '[^/]*$'), '\d{{4}}-\d{{2}}-\d{{2}}') AS DATE),
                {day_sql})"""
    else:
        assigned_date = "valid_date"
    key = contract.key if contract.on_duplicate_key == "quarantine" else ()
    if key:
        # a key seen twice in the batch: the first (by file, line) loads, the others are quarantined; only keys
        # that occur more than once are ranked
        part = ", ".join(key)
        dedupe = f"""
        , repeated AS (SELECT {part} FROM assigned WHERE reason IS NULL GROUP BY ALL HAVING count(*) > 1),
        ranked AS (
            SELECT *, 1 AS key_rank, NULL AS first_seen FROM assigned ANTI JOIN repeated USING ({part})
            UNION ALL BY NAME
            SELECT *, CASE WHEN reason IS NULL THEN row_number() OVER (
                PARTITION BY reason IS NULL, {part} ORDER BY source_file, source_line) END AS key_rank,
                first_value(source_file || ':' || source_line) OVER (
                PARTITION BY reason IS NULL, {part} ORDER BY source_file, source_line) AS first_seen
            FROM assigned SEMI JOIN repeated USING ({part})
        )"""
    else:
        dedupe = ", ranked AS (SELECT *, 1 AS key_rank, NULL AS first_seen FROM assigned)"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _ingest_batch AS
        WITH parsed AS ({union}),
        assigned AS (
            SELECT *, {assigned_date} AS partition_date
            FROM (SELECT *, CASE WHEN reason IS NULL THEN event_date END AS valid_date FROM parsed)
        ){dedupe}
        SELECT * EXCLUDE (key_rank, first_seen, reason, valid_date),
            CASE WHEN reason IS NOT NULL THEN reason
                 WHEN key_rank > 1 THEN 'duplicate {"/".join(key) or "row"} (first loaded from ' || first_seen || ')'
            END AS reason
        FROM ranked
        WHERE {"partition_date = " + day_sql if day else "true"}
    """)
    stage = _stage(feed)
    staged = table_exists(con, stage)
    if key:
        # the same key already loaded (for another day, or by an earlier batch of this run): the first keeps it
        on = " AND ".join(f"b.{k} = r.{k}" for k in key)
        other_days = f"SELECT {', '.join(key)}, partition_date, source_file, source_line FROM raw_{feed} " + (
            f"WHERE partition_date IS DISTINCT FROM {day_sql}" if day else "WHERE false")
        earlier = (f" UNION ALL SELECT {', '.join(key)}, partition_date, source_file, source_line FROM {stage} "
                   "WHERE reason IS NULL") if staged else ""
        con.execute(f"""
            UPDATE _ingest_batch b SET reason = 'duplicate {"/".join(key)} ('
                || CASE WHEN r.partition_date IS NOT DISTINCT FROM b.partition_date THEN 'first loaded from '
                        ELSE 'already loaded for ' || r.partition_date || ' from ' END
                || r.source_file || ':' || r.source_line || ')'
            FROM ({other_days}{earlier}) r
            WHERE b.reason IS NULL AND {on}
        """)
    if staged:
        con.execute(f"INSERT INTO {stage} SELECT * FROM _ingest_batch")
    else:
        con.execute(f"CREATE TEMP TABLE {stage} AS SELECT * FROM _ingest_batch")
    for f, read, loaded, quarantined in con.execute(
        "SELECT source_file, count(*), count(*) FILTER (WHERE reason IS NULL), "
        "count(*) FILTER (WHERE reason IS NOT NULL) FROM _ingest_batch GROUP BY 1 ORDER BY 1"
    ).fetchall():
        c = counts.get(f, (0, 0, 0))
        counts[f] = (c[0] + read, c[1] + loaded, c[2] + quarantined)
    con.execute("DROP TABLE _ingest_batch")
    for p in parsed_parts:
        con.execute(f"DROP TABLE IF EXISTS {p}")


def day_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
