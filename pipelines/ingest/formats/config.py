"""Where ingest configuration (formats.yaml, mapping files) is read from: the config directory, never the landing.

A landing directory is where log shippers and other teams drop files; formats.yaml and mapping files are code (a
mapping's expressions run during ingest). They are read from ``INFERCOST_CONFIG_DIR`` (default
``$INFERCOST_HOME/config``); the landing folder is consulted too only when ``INFERCOST_CONFIG_IN_LANDING=true``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from pipelines.settings import current

log = logging.getLogger(__name__)

FORMATS_FILE = "formats.yaml"


def config_dirs(landing: Path | None) -> list[Path]:
    """The folders configuration is read from, first match wins: the config directory, then (opt-in) the landing."""
    settings = current()
    dirs = [settings.config_dir]
    if settings.config_in_landing and landing is not None:
        dirs.append(Path(landing))
    return dirs


def formats_config(landing: Path | None) -> dict:
    """formats.yaml: which reader (and options) each feed's files need (``<feed>: {format: ..., options: {...}}``)."""
    for folder in config_dirs(landing):
        path = folder / FORMATS_FILE
        if path.exists():
            config = yaml.safe_load(path.read_text()) or {}
            if not isinstance(config, dict):
                raise ValueError(f"{path}: expected a mapping of feed -> {{format, options}}")
            return config
    if landing is not None and (Path(landing) / FORMATS_FILE).exists():
        log.warning(
            "%s is not read: configuration lives in %s (INFERCOST_CONFIG_DIR); set "
            "INFERCOST_CONFIG_IN_LANDING=true only if no one else can write to the landing folder",
            Path(landing) / FORMATS_FILE,
            current().config_dir,
        )
    return {}


def resolve_mapping(path: str | Path, landing: Path | None) -> Path:
    """A mapping file named by an option: absolute as given; relative in the config directory (or, opt-in, the
    landing), else relative to the working directory (a path the operator typed)."""
    path = Path(path)
    if path.is_absolute():
        return path
    for folder in config_dirs(landing):
        if (folder / path).exists():
            return folder / path
    if landing is not None and (Path(landing) / path).exists() and not path.exists():
        raise ValueError(
            f"mapping {path} is in the landing folder {landing}, which is not read for configuration: "
            f"move it to {current().config_dir} (INFERCOST_CONFIG_DIR), or set "
            "INFERCOST_CONFIG_IN_LANDING=true if no one else can write there"
        )
    return path
