"""A feed resolved once for a run: its contract, the reader for its files (format and options), its raw table, its
stage table and its duplicate-key rule. formats.yaml in the config directory (not the landing: a mapping is code)
chooses readers, one per feed or one per file pattern (first match wins); each feed has a default. A reader declares
the feed its rows are for (``feed``); a reader of another feed is refused before anything is read or written."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fnmatch import fnmatch
from pathlib import Path

from pipelines.ingest.files import MAX_DOCUMENT_LINE_BYTES, MAX_LINE_BYTES
from pipelines.ingest.formats import FORMATS, FleetCsv, ParseContext
from pipelines.ingest.formats.config import formats_config
from pipelines.ingest.report import IngestError
from pipelines.warehouse.contracts import Contract, load_contract

DEFAULT_FORMATS = {
    "requests": "openai_jsonl",
    "telemetry": "nvidia_smi_csv",
    "prices": "market_csv",
    "carbon": "carbon_csv",
}


@dataclass(frozen=True)
class Feed:
    name: str
    contract: Contract
    reader: object
    """A reader of formats/ (``patterns``, ``parse(ctx, path, lines)``, optionally ``chunks``)."""
    options: dict = field(default_factory=dict)
    format: str = ""
    routes: tuple = ()
    """(pattern, feed with that pattern's reader) in formats.yaml's order, when the feed's files need several."""

    @property
    def patterns(self) -> tuple[str, ...]:
        """The file name patterns this feed reads."""
        return tuple(p for p, _ in self.routes) if self.routes else tuple(self.reader.patterns)

    def for_file(self, path: Path) -> Feed:
        """The feed with the reader (and options) that reads this file: the first route whose pattern its name
        matches, else the feed's own reader."""
        return next((routed for pattern, routed in self.routes if fnmatch(Path(path).name, pattern)), self)

    @property
    def raw_table(self) -> str:
        return f"raw_{self.name}"

    @property
    def stage_table(self) -> str:
        """Where a run's batches wait until the day is replaced (a temporary table)."""
        return f"_stage_{self.name}"

    @property
    def chunks(self) -> str | None:
        """How the reader takes a file piece by piece: "lines" (every line stands alone), "header" (the first line
        is a header, repeated at the top of every later piece), or None (the file is read whole)."""
        return getattr(self.reader, "chunks", None)

    @property
    def max_line_bytes(self) -> int:
        """The longest line kept: MAX_LINE_BYTES for a reader that takes a file line by line, MAX_DOCUMENT_LINE_BYTES
        for one that takes a file whole (a JSON document may be one line); a reader may set its own."""
        return getattr(self.reader, "max_line_bytes", MAX_LINE_BYTES if self.chunks else MAX_DOCUMENT_LINE_BYTES)

    @property
    def duplicate_key(self) -> tuple[str, ...]:
        """The key whose repeats are quarantined (the first loads); empty when repeats all load."""
        return self.contract.key if self.contract.on_duplicate_key == "quarantine" else ()


def reader_feed(reader, options: dict | None = None, landing: Path | None = None) -> str | None:
    """The feed a reader's rows are for: its own ``feed``, else (a mapped reader) the feed its mapping file names;
    None when that cannot be known before reading (a mapping file that is missing: the read says so)."""
    feed = getattr(reader, "feed", None)
    if feed or not hasattr(reader, "mapping"):
        return feed or None
    try:
        return reader.mapping(ParseContext(con=None, landing=landing, day=None, options=dict(options or {})))[1]["feed"]
    except ValueError:
        return None


def readers_of(name: str) -> list[str]:
    """The formats whose reader reads the feed ``name``."""
    return sorted(f for f, r in FORMATS.items() if reader_feed(r) == name)


def resolve_feed(name: str, fmt: str | None = None, options: dict | None = None, landing: Path | None = None) -> Feed:
    """A feed with the given format (else its default) and options; refused when the reader is of another feed."""
    fmt = fmt or DEFAULT_FORMATS[name]
    if fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r} for {name}; known: {', '.join(sorted(FORMATS))}")
    reads = reader_feed(FORMATS[fmt], options, landing)
    if reads is not None and reads != name:
        raise IngestError(
            f"format {fmt} reads the {reads} feed, not {name}: nothing was read or changed; "
            f"readers of {name}: {', '.join(readers_of(name))} (or mapped, with a mapping file of {name})"
        )
    return Feed(name, load_contract(name), FORMATS[fmt], dict(options or {}), fmt)


def resolve_landing_feed(name: str, landing: Path, fmt: str | None = None, options: dict | None = None) -> Feed:
    """A feed as configured for a landing directory: the arguments, else ``$INFERCOST_CONFIG_DIR/formats.yaml``, else
    the feed's default format. formats.yaml gives a feed one reader (``<feed>: {format: ..., options: {...}}``) or one
    per file pattern (``<feed>: [{pattern: "epf_*.csv", format: ..., options: {...}}, ...]``, the first pattern a
    file's name matches wins). Options merge, the arguments' winning; a format given as an argument reads every file."""
    configured = landing_formats(Path(landing)).get(name, {})
    if isinstance(configured, list) and not fmt:
        routes = tuple(
            (
                _route_pattern(landing, name, r),
                resolve_feed(name, r.get("format"), {**(r.get("options") or {}), **(options or {})}, landing),
            )
            for r in configured
        )
        if not routes:
            raise IngestError(f"formats.yaml: {name} lists no file patterns")
        first = routes[0][1]
        return replace(first, routes=routes)
    if isinstance(configured, list):
        configured = {}
    return resolve_feed(
        name, fmt or configured.get("format"), {**(configured.get("options") or {}), **(options or {})}, landing
    )


def _route_pattern(landing: Path, name: str, route) -> str:
    if not isinstance(route, dict) or not route.get("pattern"):
        raise IngestError(f"formats.yaml: each entry of {name} needs a pattern (and a format)")
    return str(route["pattern"])


def fleet_feed(name: str) -> Feed:
    """A fleet table (fleet/<name>.csv) read like a feed."""
    return Feed(name, load_contract(name), FleetCsv(name))


def landing_formats(landing: Path) -> dict:
    """formats.yaml from the config directory, not the landing (pipelines/ingest/formats/config.py)."""
    try:
        return formats_config(Path(landing))
    except ValueError as exc:
        raise IngestError(str(exc)) from exc
