"""Keeping reader choices in one place: ``$INFERCOST_CONFIG_DIR/formats.yaml`` (pipelines/ingest/formats/config.py).

``infercost ingest --feed F --format X --option K=V`` records its choice there, so that every later reader of the
feed (``materialize``, the Dagster assets, the schedule) reads its files the same way. Pure Python; imports no
Dagster.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

from pipelines.ingest.feeds import DEFAULT_FORMATS
from pipelines.ingest.formats import FORMATS
from pipelines.ingest.formats.config import FORMATS_FILE, formats_config
from pipelines.ingest.report import IngestError


def save_reader_choice(
    config_dir: Path | None,
    feed: str,
    fmt: str | None = None,
    options: dict | None = None,
    *,
    landing: Path | None = None,
) -> Path:
    """Merge one feed's reader choice into ``<config_dir>/formats.yaml`` (None: INFERCOST_CONFIG_DIR) and return
    the file's path.

    The file starts from what is there, else from the formats.yaml in force for ``landing`` (the landing's own, when
    INFERCOST_CONFIG_IN_LANDING lets it be read), so no other feed's choice is lost. A format given replaces the
    feed's format; when it differs from the one recorded, the old reader's options are dropped (they belonged to
    it). Options given are merged over the recorded ones, as strings. The file is replaced whole (written beside
    it, then renamed), so a reader never sees half of it; comments in it are not kept.
    """
    from pipelines.settings import current

    if feed not in DEFAULT_FORMATS:
        raise IngestError(f"unknown feed {feed!r}; known: {', '.join(DEFAULT_FORMATS)}")
    if fmt is not None and fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r} for {feed}; known: {', '.join(sorted(FORMATS))}")
    config_dir = Path(config_dir) if config_dir is not None else current().config_dir
    path = config_dir / FORMATS_FILE
    config = _load(path) if path.exists() else _load_in_force(landing)
    entry = config.get(feed) or {}
    if isinstance(entry, str):  # the short form, `feed: format`
        entry = {"format": entry}
    if isinstance(entry, list):
        raise IngestError(
            f"{path}: {feed} chooses its readers by file pattern; edit that list by hand instead of "
            "passing --format/--option"
        )
    if not isinstance(entry, dict):
        raise IngestError(f"{path}: {feed}: expected {{format: ..., options: {{...}}}}")
    recorded = entry.get("format") or DEFAULT_FORMATS[feed]
    kept = {} if fmt is not None and fmt != recorded else dict(entry.get("options") or {})
    merged = {**kept, **{str(k): str(v) for k, v in (options or {}).items()}}
    new_entry = {"format": fmt or recorded}
    if merged:
        new_entry["options"] = merged
    config[feed] = new_entry
    config_dir.mkdir(parents=True, exist_ok=True)
    return _write_atomically(path, config)


def _load(path: Path) -> dict:
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise IngestError(f"{path}: not YAML ({str(exc).splitlines()[0]}); fix it before adding a choice") from None
    if not isinstance(config, dict):
        raise IngestError(f"{path}: expected a mapping of feed -> {{format, options}}")
    return config


def _load_in_force(landing: Path | None) -> dict:
    if landing is None:
        return {}
    try:
        return dict(formats_config(Path(landing)))
    except ValueError as exc:
        raise IngestError(str(exc)) from None


def _write_atomically(path: Path, config: dict) -> Path:
    text = (
        "# which reader (and options) each feed's files need; `infercost ingest --format/--option` writes here\n"
        + yaml.safe_dump(config, sort_keys=True, default_flow_style=False)
    )
    fd, tmp = tempfile.mkstemp(prefix=".formats.", suffix=".yaml", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
