"""Every table Python writes, declared once: their columns live in schemas/tables/*.yaml (the contract format), the
raw tables' in the feed contracts schemas/<feed>.yaml plus the lineage columns. The DDL is generated from here, and
dbt's sources (dbt/models/staging/_sources.yml) document the same tables and columns (tests/test_table_registry.py
holds them together; ``python -m pipelines.warehouse.tables`` rewrites the sources file).

Imports no Dagster.
"""

from __future__ import annotations

import functools
import sys

import duckdb
import yaml

from pipelines.settings import REPO_ROOT
from pipelines.warehouse.contracts import (
    FEEDS,
    FLEET_TABLES,
    SCHEMAS_DIR,
    Column,
    Contract,
    load_contract,
    read_contract,
)

TABLES_DIR = SCHEMAS_DIR / "tables"
SOURCES_FILE = REPO_ROOT / "dbt" / "models" / "staging" / "_sources.yml"

# tables the pipeline writes besides the raw_ ones, in the order dbt's sources list them
WRITTEN_TABLES = (
    "request_energy_pieces",
    "device_energy_buckets",
    "unattributed_requests",
    "clock_skew_checks",
    "ingest_quarantine",
    "ingest_file_stats",
    "ingest_file_days",
    "quality_check_results",
    "cost_anomalies",
    "budget_status",
    "technique_comparison",
)
RAW_TABLES = tuple(f"raw_{name}" for name in FEEDS + FLEET_TABLES)


@functools.cache
def lineage_columns() -> tuple[Column, ...]:
    """The columns every raw table carries after its contract's."""
    return read_contract(TABLES_DIR / "lineage.yaml").columns


@functools.cache
def table(name: str) -> Contract:
    """The declared shape of a table Python writes: raw_<feed> (contract + lineage) or one of WRITTEN_TABLES."""
    if name in RAW_TABLES:
        contract = load_contract(name.removeprefix("raw_"))
        return Contract(
            name=name,
            version=contract.version,
            description=contract.description,
            columns=contract.columns + lineage_columns(),
            key=contract.key,
        )
    if name not in WRITTEN_TABLES:
        raise KeyError(f"{name!r} is not a table the pipeline writes (schemas/tables/, or a raw_ table)")
    declared = read_contract(TABLES_DIR / f"{name}.yaml")
    if declared.name != name:
        raise ValueError(f"schemas/tables/{name}.yaml declares {declared.name!r}")
    return declared


def create_sql(name: str, replace: bool = False) -> str:
    """CREATE TABLE for a declared table: IF NOT EXISTS, or OR REPLACE when ``replace``."""
    verb = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE IF NOT EXISTS"
    return f"{verb} {name} ({table(name).ddl_columns()})"


def create_tables(con: duckdb.DuckDBPyConnection, *names: str, replace: bool = False) -> None:
    """Create each table; a table an older version created gets the columns its contract has since gained
    (nullable, at the end: a contract only ever appends columns)."""
    for name in names:
        con.execute(create_sql(name, replace=replace))
        have = {r[0] for r in con.execute(f"SELECT column_name FROM (DESCRIBE {name})").fetchall()}
        for c in table(name).columns:
            if c.name not in have:
                con.execute(f"ALTER TABLE {name} ADD COLUMN {c.name} {c.type}")


def _source_columns(contract: Contract) -> list[dict]:
    out = []
    for c in contract.columns:
        text = c.description.strip() or c.name
        if c.unit:
            text += f" Unit: {c.unit}."
        out.append({"name": c.name, "data_type": c.type, "description": text})
    return out


def sources_yaml() -> str:
    """dbt's sources file, generated from the registry: every table Python writes with every column."""
    tables = []
    for name in RAW_TABLES + WRITTEN_TABLES:
        contract = table(name)
        where = f"schemas/{name.removeprefix('raw_')}.yaml" if name in RAW_TABLES else f"schemas/tables/{name}.yaml"
        tables.append(
            {
                "name": name,
                "description": f"{' '.join(contract.description.split())} ({where})",
                "columns": _source_columns(contract),
            }
        )
    doc = {
        "version": 2,
        "sources": [
            {
                "name": "raw",
                "schema": "main",
                "description": "Every table the Python pipeline writes (ingest, attribution, quality, anomalies, comparison). "
                "Generated from schemas/ by `python -m pipelines.warehouse.tables`; do not edit by hand.",
                "tables": tables,
            }
        ],
    }
    return (
        "# generated from schemas/*.yaml and schemas/tables/*.yaml by `python -m pipelines.warehouse.tables`\n"
        + yaml.safe_dump(doc, sort_keys=False, width=120, allow_unicode=True)
    )


def main() -> None:
    SOURCES_FILE.write_text(sources_yaml())
    sys.stdout.write(f"wrote {SOURCES_FILE}\n")


if __name__ == "__main__":
    main()
