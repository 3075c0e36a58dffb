"""Telemetry from nvidia-smi CSV (DCGM exporter scrapes and range queries: dcgm.py; energy-counter CSV: a
shipped mapping, mappings/energy_counter_csv.yaml)."""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path

import pyarrow as pa

from pipelines.ingest.device_power import (
    DEFAULT_POWER_DRAW_WINDOW_S,
    power_draw_window_sql,
)
from pipelines.ingest.formats.common import (
    ParseContext,
    check_options,
    columns_sql,
    empty_mapped,
    finish,
    register,
    sql_str,
    strip_bom,
)
from pipelines.ingest.formats.telemetry_typed import TS_FORMAT, parse_typed
from pipelines.warehouse.contracts import load_contract

log = logging.getLogger(__name__)

# the documented file name: <host>_<YYYY-MM-DD>.csv[.gz] (README "Input formats")
HOST_FILE_NAME = re.compile(r"^(?P<host>.+)_\d{4}-\d{2}-\d{2}\.csv(\.gz)?$")
NO_HOST = (
    "no host for this device: the file name is not <host>_<YYYY-MM-DD>.csv and it has no uuid or "
    "pci.bus_id column (give --option host=NAME)"
)

_NVSMI_FIELDS = {
    "timestamp": "ts",
    "uuid": "uuid",
    "index": "index",
    "pci.bus_id": "pci_bus_id",
    "power.draw": "power_draw",
    "power.draw.average": "power_draw_average",
    "power.draw.instant": "power_draw_instant",
    "utilization.gpu": "util_pct",
    "memory.used": "mem_used_mib",
}


_ENERGY_SOURCE = {
    "power_draw_average": "power.draw.average",
    "power_draw": "power.draw",
    "power_draw_instant": "power.draw.instant",
}


def _nvsmi_header(path: Path, header: str) -> tuple[list[str], list[str | None], dict[str, int]]:
    """The header's field names, the unit each names ("power.draw [W]") and where each known field is (1-based)."""
    names = [re.sub(r"\s*\[.*\]$", "", h.strip()) for h in header.split(",")]
    units = [(re.search(r"\[(.*)\]$", h.strip()) or [None, None])[1] for h in header.split(",")]
    pos = {_NVSMI_FIELDS[n]: i for i, n in enumerate(names, start=1) if n in _NVSMI_FIELDS}
    if "ts" not in pos or not ({"power_draw", "power_draw_average", "power_draw_instant"} & set(pos)):
        raise ValueError(f"{path}: not an nvidia-smi CSV with timestamp and power.draw (header: {header!r})")
    return names, units, pos


def file_host(options: dict, path: Path) -> tuple[str | None, str]:
    """(the host of an nvidia-smi file, where it came from): the ``host`` option, else the file name when it is
    ``<host>_<YYYY-MM-DD>.csv[.gz]``, else unknown (None). Never a guess from any other name."""
    if options.get("host"):
        return str(options["host"]), "the host option"
    m = HOST_FILE_NAME.match(path.name)
    if m:
        return m["host"], "the file name"
    return None, "unknown"


def _host_note(path: Path, host: str | None, source: str, pos: dict[str, int]) -> str:
    """The line the log gets saying where the host and the device ids of a file came from."""
    device = (
        "uuid"
        if "uuid" in pos
        else "pci.bus_id"
        if "pci_bus_id" in pos
        else "<host>:index"
        if "index" in pos
        else "the host"
    )
    if host is None:
        tail = ("device ids from " + device) if device in ("uuid", "pci.bus_id") else "its rows are quarantined"
        return f"{path.name}: host unknown (not named <host>_<YYYY-MM-DD>.csv, no host option): {tail}"
    return f"{path.name}: host {host!r} taken from {source}; device ids from {device}"


def _power_key(pos: dict[str, int]) -> str:
    """The field power_w comes from: the one that covers the interval first (_nvsmi_power_and_device)."""
    return next((k for k in ("power_draw_average", "power_draw") if k in pos), "power_draw_instant")


def _nvsmi_power_and_device(pos: dict[str, int], window, host: str | None, val) -> tuple[str, str, str]:
    """(the field power_w comes from, its averaging window SQL, the device id SQL) for a header's fields: the
    column that covers the interval first (power.draw.average, else power.draw, whose meaning depends on the device
    type: pipelines/ingest/device_power.py), power.draw.instant only when the file has nothing else."""
    power_key = _power_key(pos)
    if power_key == "power_draw_average":
        window_sql = "1.0"
    elif power_key == "power_draw":
        window_sql = (
            str(float(window)) if window is not None else f"coalesce(draw_window_s, {DEFAULT_POWER_DRAW_WINDOW_S})"
        )
    else:
        window_sql = "0.0"
    if "uuid" in pos:
        device = val("uuid")
    elif "pci_bus_id" in pos:
        device = val("pci_bus_id")
    elif host is None:  # no name for the device: its rows are quarantined (NO_HOST)
        device = "NULL::VARCHAR"
    elif "index" in pos:
        device = f"{sql_str(host)} || ':' || {val('index')}"
    else:  # a file of one device: the host names it
        device = sql_str(host)
    return power_key, window_sql, device


def _split_sql(header: str, src: str, fields: int, text_sql: str = "raw_text") -> dict[str, str]:
    """How the lines of ``src`` are cut into fields: split in SQL (a list ``parts``), or already split by DuckDB's
    CSV reader (``fields`` columns field_1 .. field_N, each line's text ``text_sql`` rebuilt from them only where a
    row needs it: a quarantined row, a line that may repeat the header); and the test of a line that repeats the
    header."""
    if not fields:
        return {
            "lines": f"SELECT *, string_split(raw_text, ',') AS parts FROM {src}",
            "drop": "EXCLUDE (parts)",
            "n_parts": "len(parts)",
            "repeated_header": f"trim(raw_text) = {sql_str(header.strip())}",
        }
    first = sql_str(header.strip().split(",")[0])  # implied by the test, and cheaper than rebuilding every line
    return {
        "lines": f"SELECT * EXCLUDE (raw_text) FROM {src}",
        "drop": "",  # the fields stay: a quarantined row's text is rebuilt from them (common.finish)
        "n_parts": str(fields),
        "repeated_header": f"CASE WHEN ltrim(coalesce(field_1, '')) = {first} "
        f"THEN trim({text_sql}) = {sql_str(header.strip())} ELSE false END",
    }


def _cleaned_field_sql(i: int, unit: str | None, fields: int = 0) -> str:
    """Field i's text once: trimmed, the unit its header names ("power.draw [W]": "160.5 W") cut, [N/A] and
    [Not Supported] read as missing (string functions, not regular expressions: this runs per sample)."""
    v = f"trim(coalesce(field_{i}, ''))" if fields else f"trim(parts[{i}])"
    if unit:
        v = f"CASE WHEN suffix({v}, {sql_str(' ' + unit)}) THEN left({v}, -{len(unit) + 1}) ELSE {v} END"
    return f"nullif(nullif({v}, '[N/A]'), '[Not Supported]')"


# the timestamp forms tried in order; the typed read (telemetry_typed.py) reads the first
TS_FORMATS = (TS_FORMAT, "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")


def _columns(val, host, power_key: str, window_sql: str, tz_sql: str, typed_fields: dict):
    """(each contract column's raw text SQL, its typed SQL) over the cleaned fields v_<key> of a file's rows
    (columns_sql; ``val(key)``: a field's column, NULL when the file lacks it). A field read typed already
    (``typed_fields``) is its value as read, its text a non-NULL '' (a missing value is then a reason, as an empty
    text is)."""
    ts_fmt = "[" + ", ".join(sql_str(f) for f in TS_FORMATS) + "]"
    raw = {
        "device_id": "device",
        "ts": val("ts"),
        "power_w": val(power_key),
        "power_window_s": "''",  # never missing (a literal, or the inventory's window with a default): no text
        "util_pct": val("util_pct"),
        "mem_used_mib": val("mem_used_mib"),
        "host": sql_str(host) if host else "NULL::VARCHAR",
        "power_instant_w": val("power_draw_instant") if power_key != "power_draw_instant" else "NULL::VARCHAR",
        "energy_source": sql_str(_ENERGY_SOURCE[power_key]),
    }
    typed = {
        "device_id": "device",
        "ts": f"timezone({tz_sql}, try_strptime({val('ts')}, {ts_fmt}))",
        "power_window_s": window_sql,
    }
    for c, r in raw.items():
        if r.removeprefix("v_") in typed_fields:
            raw[c], typed[c] = "''", r if c != "ts" else f"timezone({tz_sql}, {r})"
    return raw, typed


class NvidiaSmiCsv:
    """``nvidia-smi --query-gpu=... --format=csv[,nounits]`` output, fields in any subset and order.

    Device id: uuid, else pci.bus_id, else <host>:<index>. Host: the ``host`` option, else the file name when it
    is ``<host>_<YYYY-MM-DD>.csv[.gz]``, else unknown: then a uuid or pci.bus_id column still names each device,
    and a file with neither has its rows quarantined saying so (never a host guessed from another name). The log
    says where each file's host came from. Power (the energy): the column that covers the interval between
    samples: power.draw.average (a 1 s average) when present, else power.draw, whose meaning depends on the device
    type in the inventory (pipelines/ingest/device_power.py: a 1 s average on Ampere and newer except GA100,
    instantaneous on GA100 and Volta and older) unless the ``power_draw_window_s`` option says, else
    power.draw.instant (window 0). A point reading once a second aliases with load that changes faster, so beside
    an average it is kept as ``power_instant_w`` (for shape), never integrated. ``energy_source`` names the column
    the energy came from, per sample and in the ingest report per file. A file with no uuid, pci.bus_id or index is one device named by its
    host. Timestamps are ``YYYY/MM/DD HH:MM:SS.fff`` in the ``timezone``
    option (default UTC). Values may carry units ("160.5 W"); "[N/A]" and "[Not Supported]" read as missing.
    """

    feed = "telemetry"  # the feed whose contract its rows meet
    option_names = ("host", "timezone", "power_draw_window_s")

    patterns = ("*.csv", "*.csv.gz")
    chunks = "header"  # a large file is read piece by piece, the header line heading every piece
    csv_fields = True  # DuckDB's reader may split the fields (pipelines/ingest/duckdb_lines.py read_csv_fields)

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        check_options(self, ctx.options)
        lines = strip_bom(lines)
        if lines.num_rows == 0:
            return finish(ctx, load_contract("telemetry"), empty_mapped(load_contract("telemetry")))
        header = lines["raw_text"][0].as_py()
        first_piece = lines["source_line"][0].as_py() == 1  # the host is logged once a file, not once a piece
        return self._parse_body(ctx, path, header, register(ctx, lines.slice(1)), first_piece)

    def parse_relation(self, ctx: ParseContext, path: Path, lines) -> str:
        """The same rows from a DuckDB relation of the whole file's lines (pipelines/ingest/duckdb_lines.py): the
        first line is the header."""
        check_options(self, ctx.options)
        if lines.header is not None:  # read as fields (duckdb_lines.read_csv_fields): line 1 is the header
            pos = _nvsmi_header(path, lines.header)[2]
            mapped = functools.partial(self._mapped_sql, ctx, path, lines.header)
            # most files: read typed, every row loads
            parsed = parse_typed(ctx, lines, pos, mapped, _ENERGY_SOURCE[_power_key(pos)])
            if parsed is not None:
                log.info(_host_note(path, *file_host(ctx.options, path), pos))
                return parsed
            lines.materialize(ctx.con)
            body = f"(SELECT * FROM {lines.name} WHERE source_line > 1)"
            return self._parse_body(ctx, path, lines.header, body, True, lines.fields, lines.text_sql)
        first = ctx.con.execute(  # the first line's number first: the text of that line only
            f"SELECT source_line, raw_text FROM {lines.name} WHERE source_line = "
            f"(SELECT min(source_line) FROM {lines.name})"
        ).fetchall()
        if not first:
            return finish(ctx, load_contract("telemetry"), empty_mapped(load_contract("telemetry")))
        header_line, header = first[0]
        body = f"(SELECT * FROM {lines.name} WHERE source_line > {int(header_line)})"
        return self._parse_body(ctx, path, header, body, True, lines.fields, lines.text_sql)

    def _parse_body(
        self, ctx: ParseContext, path: Path, header: str, src: str, log_host: bool, fields: int = 0, text_sql=None
    ) -> str:
        """The parsed rows of the lines after the header, in the relation ``src``; ``fields``: the relation has the
        lines' comma-separated fields split already (field_1 .. field_N, duckdb_lines.read_csv_fields), and
        ``text_sql`` rebuilds a line's text from them."""
        text_sql = text_sql if fields and text_sql else "raw_text"
        mapped = self._mapped_sql(ctx, path, header, src, log_host, fields, text_sql)
        return finish(ctx, load_contract("telemetry"), mapped, raw_text_sql=text_sql)

    def _mapped_sql(
        self,
        ctx: ParseContext,
        path: Path,
        header: str,
        src: str,
        log_host: bool,
        fields: int,
        text_sql: str,
        typed_fields: dict[str, str] | None = None,
    ) -> str:
        """The mapped rows (common.finish) of the lines of ``src``. ``typed_fields``: the fields ``src`` holds
        typed already (a key of the header's fields -> its column: formats/telemetry_typed.py), used as they are;
        its other fields are text, cleaned as ever."""
        names, units, pos = _nvsmi_header(path, header)
        tz = ctx.options.get("timezone", "UTC")
        window = ctx.options.get("power_draw_window_s")
        host, host_source = file_host(ctx.options, path)
        if log_host:
            log.info(_host_note(path, host, host_source, pos))
        typed_fields = typed_fields or {}

        def val(key):
            return f"v_{key}" if key in pos else "NULL::VARCHAR"

        split = _split_sql(header, src, fields, text_sql)
        cleaned = ", ".join(
            f"{typed_fields[key]} AS v_{key}"
            if key in typed_fields
            else f"{_cleaned_field_sql(i, units[i - 1], fields)} AS v_{key}"
            for key, i in pos.items()
        )
        power_key, window_sql, device = _nvsmi_power_and_device(pos, window, host, val)
        unnamed = host is None and not ({"uuid", "pci_bus_id"} & set(pos))  # no device id at all: quarantined
        contract = load_contract("telemetry")
        raw, typed = _columns(val, host, power_key, window_sql, sql_str(tz), typed_fields)
        return f"""
            WITH s0 AS ({split["lines"]}),
            s1 AS (SELECT * {split["drop"]}, {split["n_parts"]} AS n_parts, {cleaned} FROM s0),
            s2 AS (SELECT *, {device} AS device FROM s1),
            -- what power.draw means, once per inventory device rather than once per sample
            inv AS (SELECT device_id, coalesce(power_draw_window_s, {power_draw_window_sql("device_type")})
                        AS draw_window_s FROM raw_inventory),
            s AS (SELECT s2.*, inv.draw_window_s FROM s2 LEFT JOIN inv ON inv.device_id = s2.device)
            SELECT source_file, source_line, {
            "raw_text" if text_sql == "raw_text" else ", ".join(f"field_{i}" for i in range(1, fields + 1))
        },
                CASE WHEN {split["repeated_header"]} THEN 'repeated header line'
                     WHEN n_parts <> {len(names)} THEN 'expected {len(names)} fields, got ' || n_parts
                     {f"ELSE {sql_str(NO_HOST)}" if unnamed else ""}
                END AS pre_reason,
                {columns_sql(contract, raw, typed)}
            FROM s
        """
