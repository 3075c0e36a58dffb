"""The data contracts in schemas/*.yaml: the one place canonical columns, types and units are written down."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import yaml

from pipelines.settings import current

SCHEMAS_DIR = current().schemas_dir

_ARROW = {
    "VARCHAR": pa.string(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool
    description: str = ""
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    allowed: tuple | None = None
    """The values a required column may take (others quarantine the row); on an optional column (a tag such as
    quantization or batching) the known values: another value loads as logged and a quality check names it."""


@dataclass(frozen=True)
class Contract:
    name: str
    version: int
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    partition_by: str | None = None
    on_duplicate_key: str = "quarantine"
    """What a second row with the same key within a day gets: "quarantine" (the first by file and line loads) or
    "keep" (all load; telemetry duplicates are averaged by the kernel)."""
    rules: tuple[tuple[str, str], ...] = ()
    """Row rules beyond single columns: (SQL condition over the mapped row, SQL expression giving the reason)."""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, _ARROW[c.type], nullable=not c.required) for c in self.columns])

    def ddl_columns(self) -> str:
        return ", ".join(f"{c.name} {c.type}" for c in self.columns)


@functools.cache
def load_contract(name: str) -> Contract:
    path = SCHEMAS_DIR / f"{name}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no data contract {name!r} at {path}")
    return read_contract(path)


def read_contract(path: Path) -> Contract:
    """A contract from one YAML file (schemas/<feed>.yaml, or schemas/tables/<table>.yaml)."""
    raw = yaml.safe_load(path.read_text())
    cols = tuple(
        Column(
            name=c["name"],
            type=c["type"],
            required=bool(c.get("required", False)),
            description=c.get("description", ""),
            unit=c.get("unit"),
            min=c.get("min"),
            max=c.get("max"),
            allowed=tuple(c["allowed"]) if c.get("allowed") else None,
        )
        for c in raw["columns"]
    )
    unknown = {c.type for c in cols} - set(_ARROW)
    if unknown:
        raise ValueError(f"{path}: unknown column types {sorted(unknown)}")
    return Contract(
        name=raw["name"],
        version=int(raw["version"]),
        description=raw.get("description", ""),
        columns=cols,
        key=tuple(raw.get("key", ())),
        partition_by=raw.get("partition_by"),
        on_duplicate_key=raw.get("on_duplicate_key", "quarantine"),
        rules=tuple((r["when"], r["reason"]) for r in raw.get("rules", ())),
    )


FEEDS = ("requests", "telemetry", "prices", "carbon")
OPTIONAL_FEEDS = ("carbon",)  # a landing folder that does not exist loads nothing
# in load order: a device's currency needs its rate (fx_rates), a deployment its device (inventory)
FLEET_TABLES = ("fx_rates", "inventory", "deployments", "models", "regions", "clock_offsets")
OPTIONAL_FLEET_TABLES = ("clock_offsets",)  # an absent file loads as an empty table
