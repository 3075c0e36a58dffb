"""Keeping a landing's reader choices in one place: ``<landing>/formats.yaml``.

``infercost ingest --feed F --format X --option K=V`` records its choice here, so that every later reader of the
landing (``materialize``, the Dagster assets, the schedule) reads the feed's files the same way. Pure Python; imports
no Dagster.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

from pipelines.ingest.feeds import DEFAULT_FORMATS, landing_formats
from pipelines.ingest.formats import FORMATS
from pipelines.ingest.report import IngestError

FORMATS_FILE = "formats.yaml"


def save_reader_choice(landing: Path, feed: str, fmt: str | None = None, options: dict | None = None) -> Path:
    """Merge one feed's reader choice into ``<landing>/formats.yaml`` and return the file's path.

    A format given replaces the feed's format; when it differs from the one recorded, the old reader's options are
    dropped (they belonged to it). Options given are merged over the recorded ones, as strings. Other feeds' entries
    are kept. The file is replaced whole (written beside it, then renamed), so a reader never sees half of it;
    comments in it are not kept.
    """
    if feed not in DEFAULT_FORMATS:
        raise IngestError(f"unknown feed {feed!r}; known: {', '.join(DEFAULT_FORMATS)}")
    if fmt is not None and fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r} for {feed}; known: {', '.join(sorted(FORMATS))}")
    landing = Path(landing)
    config = landing_formats(landing)
    entry = config.get(feed) or {}
    if not isinstance(entry, dict):
        raise IngestError(f"{landing / FORMATS_FILE}: {feed}: expected {{format: ..., options: {{...}}}}")
    recorded = entry.get("format") or DEFAULT_FORMATS[feed]
    kept = {} if fmt is not None and fmt != recorded else dict(entry.get("options") or {})
    merged = {**kept, **{str(k): str(v) for k, v in (options or {}).items()}}
    new_entry = {"format": fmt or recorded}
    if merged:
        new_entry["options"] = merged
    config[feed] = new_entry
    return _write_atomically(landing / FORMATS_FILE, config)


def _write_atomically(path: Path, config: dict) -> Path:
    text = ("# which reader (and options) each feed's files need; `infercost ingest --format/--option` writes here\n"
            + yaml.safe_dump(config, sort_keys=True, default_flow_style=False))
    fd, tmp = tempfile.mkstemp(prefix=".formats.", suffix=".yaml", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
