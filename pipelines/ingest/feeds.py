"""A feed resolved once for a run: its contract, the reader for its files (format and options), its raw table, its
stage table and its duplicate-key rule. formats.yaml in the config directory (not the landing: a mapping is code)
chooses readers; each feed has a default."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipelines.ingest.files import MAX_DOCUMENT_LINE_BYTES, MAX_LINE_BYTES
from pipelines.ingest.formats import FORMATS, FleetCsv
from pipelines.ingest.formats.config import formats_config
from pipelines.ingest.report import IngestError
from pipelines.warehouse.contracts import Contract, load_contract

DEFAULT_FORMATS = {"requests": "openai_jsonl", "telemetry": "nvidia_smi_csv", "prices": "market_csv",
                   "carbon": "carbon_csv"}


@dataclass(frozen=True)
class Feed:
    name: str
    contract: Contract
    reader: object
    """A reader of formats/ (``patterns``, ``parse(ctx, path, lines)``, optionally ``chunks``)."""
    options: dict = field(default_factory=dict)

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


def resolve_feed(name: str, fmt: str | None = None, options: dict | None = None) -> Feed:
    """A feed with the given format (else its default) and options."""
    fmt = fmt or DEFAULT_FORMATS[name]
    if fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r} for {name}; known: {', '.join(sorted(FORMATS))}")
    return Feed(name, load_contract(name), FORMATS[fmt], dict(options or {}))


def resolve_landing_feed(name: str, landing: Path, fmt: str | None = None, options: dict | None = None) -> Feed:
    """A feed as configured for a landing directory: the arguments, else ``$INFERCOST_CONFIG_DIR/formats.yaml``
    (``<feed>: {format: ..., options: {...}}``), else the feed's default format. Options merge, the arguments'
    winning."""
    configured = landing_formats(Path(landing)).get(name, {})
    return resolve_feed(name, fmt or configured.get("format"), {**configured.get("options", {}), **(options or {})})


def fleet_feed(name: str) -> Feed:
    """A fleet table (fleet/<name>.csv) read like a feed."""
    return Feed(name, load_contract(name), FleetCsv(name))


def landing_formats(landing: Path) -> dict:
    """formats.yaml from the config directory, not the landing (pipelines/ingest/formats/config.py)."""
    try:
        return formats_config(Path(landing))
    except ValueError as exc:
        raise IngestError(str(exc)) from exc
