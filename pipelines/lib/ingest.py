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

import io
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import yaml

from pipelines.lib.contracts import OPTIONAL_FEEDS, OPTIONAL_FLEET_TABLES, load_contract
from pipelines.lib.formats import FORMATS, FleetCsv, ParseContext
from pipelines.lib.warehouse import ensure_raw_tables

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


def read_lines(path: Path) -> tuple[pa.Table, str | None]:
    """All non-blank lines of a (possibly gzipped) text file with 1-based line numbers.

    A .tar.gz (or .tar) holding one file is read as that file. CRLF endings are normalized; bytes that are not UTF-8 are replaced (U+FFFD) and the row is loaded or
    quarantined as its content decides. A truncated gzip stream keeps the lines before the damage and returns a
    problem text that becomes a quarantine row of its own.
    """
    problem = None
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{path}: cannot be read ({exc})") from exc
    if path.suffix == ".gz":
        parts = []
        while raw:  # one decompressor per gzip member
            d = zlib.decompressobj(wbits=31)
            try:
                parts.append(d.decompress(raw))
            except zlib.error as exc:
                if not parts:
                    raise IngestError(f"{path}: not a readable gzip file ({exc})") from exc
                problem = f"corrupt gzip member: {exc}"
                break
            if not d.eof:
                problem = "truncated gzip stream (no end-of-stream marker)"
                break
            raw = d.unused_data
        data = b"".join(parts)
    else:
        data = raw
    if path.name.endswith((".tar.gz", ".tgz", ".tar")):  # a published archive of one CSV (e.g. Alibaba's traces)
        data = _single_tar_member(path, data)
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if problem and lines and lines[-1]:
        problem += f"; last partial line dropped: {lines[-1][:200]!r}"
        lines = lines[:-1]
    nums, raws = [], []
    for i, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if line.strip():
            nums.append(i)
            raws.append(line)
    table = pa.table(
        {
            "source_file": pa.array([str(path)] * len(raws), pa.string()),
            "source_line": pa.array(nums, pa.int64()),
            "raw_text": pa.array(raws, pa.string()),
        }
    )
    return table, problem


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
                fmt: str | None = None, options: dict | None = None) -> IngestReport:
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
    return ingest_files(con, feed, files, day, fmt=fmt, options=options, landing=Path(landing))


def landing_formats(landing: Path) -> dict:
    """The landing directory's formats.yaml: which reader (and options) each feed's files need."""
    path = Path(landing) / "formats.yaml"
    if not path.exists():
        return {}
    config = yaml.safe_load(path.read_text()) or {}
    if not isinstance(config, dict):
        raise IngestError(f"{path}: expected a mapping of feed -> {{format, options}}")
    return config


def ingest_files(con: duckdb.DuckDBPyConnection, feed: str, files: list[Path], day: date, *,
                 fmt: str | None = None, options: dict | None = None, landing: Path | None = None) -> IngestReport:
    """Load the rows of ``day`` from the given files (read in place) into raw_<feed>."""
    ensure_raw_tables(con)
    parser = FORMATS[fmt or DEFAULT_FORMATS[feed]]
    ctx = ParseContext(con=con, landing=landing, day=day, options=options or {})
    parsed_parts = []
    for path in files:
        lines, problem = read_lines(path)
        rel = parser.parse(ctx, path, lines)
        parsed_parts.append(rel)
        if problem:
            parsed_parts.append(_problem_row(con, feed, path, len(lines) + 1, problem))
    return _load(con, feed, parsed_parts, day)


def ingest_fleet_table(con: duckdb.DuckDBPyConnection, name: str, landing: Path) -> IngestReport:
    """Load fleet/<name>.csv (a version-controlled file) into raw_<name>, replacing what was there."""
    ensure_raw_tables(con)
    path = Path(landing) / "fleet" / f"{name}.csv"
    if not path.exists():
        if name in OPTIONAL_FLEET_TABLES:
            return _load(con, name, [], None)
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
    contract = load_contract(feed)
    cols = contract.names
    report = IngestReport(feed=feed, partition_date=day)
    if parsed_parts:
        union = " UNION ALL BY NAME ".join(f"SELECT * FROM {p}" for p in parsed_parts)
    else:
        union = (f"SELECT {', '.join(f'NULL::{c.type} AS {c.name}' for c in contract.columns)}, NULL::VARCHAR AS "
                 "source_file, NULL::BIGINT AS source_line, NULL::VARCHAR AS raw_text, NULL::VARCHAR AS reason, "
                 "NULL::DATE AS event_date WHERE false")
    day_sql = f"DATE '{day.isoformat()}'" if day else "NULL::DATE"
    key = contract.key if contract.on_duplicate_key == "quarantine" else ()
    if key:
        # a key seen twice within the day: the first (by file, line) loads, the others are quarantined
        part = ", ".join(key)
        dedupe = f"""
        , ranked AS (
            SELECT *, CASE WHEN reason IS NULL THEN row_number() OVER (
                PARTITION BY reason IS NULL, {part} ORDER BY source_file, source_line) END AS key_rank,
                first_value(source_file || ':' || source_line) OVER (
                PARTITION BY reason IS NULL, {part} ORDER BY source_file, source_line) AS first_seen
            FROM assigned
        )"""
    else:
        dedupe = ", ranked AS (SELECT *, 1 AS key_rank, NULL AS first_seen FROM assigned)"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _ingest_batch AS
        WITH parsed AS ({union}),
        assigned AS (
            SELECT *, coalesce(
                valid_date,
                last_value(valid_date IGNORE NULLS) OVER (PARTITION BY source_file ORDER BY source_line
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
                first_value(valid_date IGNORE NULLS) OVER (PARTITION BY source_file ORDER BY source_line
                    ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING),
                TRY_CAST(regexp_extract(regexp_extract(source_file, '[^/]*$'), '\d{{4}}-\d{{2}}-\d{{2}}') AS DATE),
                {day_sql}) AS partition_date
            FROM (SELECT *, CASE WHEN reason IS NULL THEN event_date END AS valid_date FROM parsed)
        ){dedupe}
        SELECT * EXCLUDE (key_rank, first_seen, reason, valid_date),
            CASE WHEN reason IS NOT NULL THEN reason
                 WHEN key_rank > 1 THEN 'duplicate {"/".join(key) or "row"} (first loaded from ' || first_seen || ')'
            END AS reason
        FROM ranked
        WHERE {"partition_date = " + day_sql if day else "true"}
    """)
    if key and day:
        # the same key already loaded for another day (a retried or replayed id): the row loaded first keeps it
        on = " AND ".join(f"b.{k} = r.{k}" for k in key)
        con.execute(f"""
            UPDATE _ingest_batch b SET reason = 'duplicate {"/".join(key)} (already loaded for '
                || r.partition_date || ' from ' || r.source_file || ':' || r.source_line || ')'
            FROM raw_{feed} r
            WHERE b.reason IS NULL AND {on} AND r.partition_date <> {day_sql}
        """)
    where_day = f"partition_date = {day_sql}" if day else "true"
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM raw_{feed} WHERE {where_day}")
        con.execute(
            f"INSERT INTO raw_{feed} ({', '.join(cols)}, source_file, source_line, partition_date, loaded_at) "
            f"SELECT {', '.join(cols)}, source_file, source_line, partition_date, now() FROM _ingest_batch "
            f"WHERE reason IS NULL ORDER BY source_file, source_line"
        )
        con.execute(f"DELETE FROM ingest_quarantine WHERE feed = ? AND "
                    f"{'partition_date = ' + day_sql if day else 'true'}", [feed])
        con.execute(
            "INSERT INTO ingest_quarantine SELECT ?, partition_date, source_file, source_line, raw_text, reason, "
            "now() FROM _ingest_batch WHERE reason IS NOT NULL ORDER BY source_file, source_line",
            [feed],
        )
        con.execute(f"DELETE FROM ingest_file_stats WHERE feed = ? AND "
                    f"{'partition_date = ' + day_sql if day else 'true'}", [feed])
        con.execute(
            f"INSERT INTO ingest_file_stats SELECT ?, {day_sql}, source_file, count(*), "
            "count(*) FILTER (WHERE reason IS NULL), count(*) FILTER (WHERE reason IS NOT NULL), now() "
            "FROM _ingest_batch GROUP BY source_file ORDER BY source_file",
            [feed],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    for f, read, loaded, quarantined in con.execute(
        "SELECT source_file, count(*), count(*) FILTER (WHERE reason IS NULL), "
        "count(*) FILTER (WHERE reason IS NOT NULL) FROM _ingest_batch GROUP BY 1 ORDER BY 1"
    ).fetchall():
        report.files.append(FileReport(f, read, loaded, quarantined))
    con.execute("DROP TABLE _ingest_batch")
    for p in parsed_parts:
        con.execute(f"DROP TABLE IF EXISTS {p}")
    return report


def day_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
