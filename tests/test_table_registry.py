"""Every table Python writes is declared once (schemas/tables/, and the feed contracts for raw_ tables); the DDL
comes from there, and dbt's sources document the same tables and columns."""

import re

import duckdb
import yaml

from pipelines.warehouse.tables import (
    RAW_TABLES,
    SOURCES_FILE,
    WRITTEN_TABLES,
    create_sql,
    create_tables,
    sources_yaml,
    table,
)
from tests.conftest import REPO


def source_tables() -> dict:
    (source,) = yaml.safe_load(SOURCES_FILE.read_text())["sources"]
    return {t["name"]: t for t in source["tables"]}


def test_the_dbt_sources_are_the_registry_table_for_table_and_column_for_column():
    sources = source_tables()
    assert set(sources) == set(RAW_TABLES + WRITTEN_TABLES)
    for name, source in sources.items():
        declared = table(name)
        assert [c["name"] for c in source["columns"]] == [c.name for c in declared.columns], name
        assert [c["data_type"] for c in source["columns"]] == [c.type for c in declared.columns], name
        assert source.get("description") and all(c.get("description") for c in source["columns"]), name
    # the file is exactly what the registry generates (python -m pipelines.warehouse.tables rewrites it)
    assert SOURCES_FILE.read_text() == sources_yaml()


def test_comparison_anomalies_and_quality_results_are_documented_sources():
    sources = source_tables()
    for name in ("cost_anomalies", "technique_comparison", "quality_check_results", "ingest_quarantine"):
        assert len(sources[name]["columns"]) >= 5
    assert "cost_change_pct" in {c["name"] for c in sources["technique_comparison"]["columns"]}


def test_the_generated_ddl_builds_each_declared_table():
    con = duckdb.connect()
    create_tables(con, *RAW_TABLES, *WRITTEN_TABLES)
    create_tables(con, *RAW_TABLES, *WRITTEN_TABLES)  # IF NOT EXISTS: a second run changes nothing
    for name in RAW_TABLES + WRITTEN_TABLES:
        built = [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()]
        assert built == [c.name for c in table(name).columns], name
    assert create_sql("technique_comparison", replace=True).startswith("CREATE OR REPLACE TABLE technique_comparison")
    con.execute("INSERT INTO cost_anomalies (anomaly_id) VALUES ('x')")
    con.execute(create_sql("cost_anomalies"))
    assert con.execute("SELECT count(*) FROM cost_anomalies").fetchall() == [(1,)]


def test_python_writes_only_declared_tables_and_declares_none_inline():
    written, inline = set(), []
    for path in (REPO / "pipelines").rglob("*.py"):
        text = path.read_text()
        written |= set(re.findall(r"INSERT INTO (\w+)", text))
        # tables.py declares the warehouse's tables; bare_reads.py times DuckDB storing raw files in a throwaway
        # database of its own (a benchmark's floor), not in the warehouse
        if path.name not in ("tables.py", "bare_reads.py"):
            inline += [
                f"{path.name}: {m}" for m in re.findall(r"CREATE (?:OR REPLACE )?TABLE (?:IF NOT EXISTS )?\w+", text)
            ]
    assert written - {"raw_"} <= set(RAW_TABLES + WRITTEN_TABLES), written
    assert {"request_energy_pieces", "cost_anomalies", "technique_comparison", "quality_check_results"} <= written
    assert not inline, inline


def test_python_outputs_read_marts_only():
    for rel in (
        "pipelines/analysis/whatif.py",
        "pipelines/outputs/focus.py",
        "pipelines/outputs/report.py",
        "pipelines/outputs/report_data.py",
        "pipelines/analysis/compare.py",
        "pipelines/analysis/anomalies.py",
    ):
        found = re.findall(r"\b(?:stg|int)_[a-z_]+", (REPO / rel).read_text())
        assert not found, f"{rel} reads {found}: staging and intermediate models are dbt's own"
