"""Hostile input (issue #17): configuration in the landing folder, mapping expressions that try to be statements."""

from datetime import date

import duckdb
import pyarrow as pa
import pytest
import yaml

from pipelines.ingest.formats.sandbox import (
    UnsafeExpression,
    evaluate,
    scalar_expression,
)
from pipelines.ingest.loader import ingest_feed

DAY = date(2026, 11, 2)
LOG = "id,tag,s,e\nr1,a,2026-11-02T10:00:00Z,2026-11-02T10:00:01Z\nr2,b,2026-11-02T11:00:00Z,2026-11-02T11:00:02Z\n"


def mapping(tenant_sql: str = "tag", skip_when: str | None = None) -> str:
    source = {"type": "csv", **({"skip_when": skip_when} if skip_when else {})}
    return yaml.safe_dump(
        {
            "feed": "requests",
            "source": source,
            "fields": {
                "request_id": "id",
                "started_at": "s",
                "ended_at": "e",
                "model": {"const": "llama-3.1-8b-instruct"},
                "device_id": {"const": "gpu-0"},
                "prompt_tokens": {"const": 3},
                "completion_tokens": {"const": 4},
                "tenant": {"sql": tenant_sql},
            },
        }
    )


def state(con):
    return (
        con.execute("SELECT count(*) FROM raw_requests").fetchall()[0][0],
        con.execute("SELECT sum(purchase_cost) FROM raw_inventory").fetchall()[0][0],
        sorted(r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()),
        con.execute("SELECT count(*) FROM duckdb_databases()").fetchall()[0][0],
    )


def run(con, landing, config_dir, text):
    (landing / "requests" / "log.csv").write_text(LOG)
    (config_dir / "m.yaml").write_text(text)
    return ingest_feed(con, "requests", landing, DAY, fmt="mapped", options={"mapping": "m.yaml"})


def test_a_plain_expression_maps(con, landing, config_dir):
    report = run(con, landing, config_dir, mapping("upper(tag) || '-' || id", skip_when="tag = 'b'"))
    # the row skip_when sets aside is skipped, not rejected (counted apart, kept in the quarantine with its reason)
    assert (report.rows_loaded, report.rows_quarantined, report.rows_skipped) == (1, 0, 1)
    assert con.execute("SELECT tenant FROM raw_requests").fetchall() == [("A-r1",)]


def test_reading_the_environment_through_read_text_is_refused(con, landing, config_dir, monkeypatch):
    monkeypatch.setenv("INFERCOST_ALERT_WEBHOOK_SECRET", "s3cret-webhook-key")
    before = state(con)
    with pytest.raises(UnsafeExpression, match=r"m.yaml: fields.tenant.sql must be one SQL expression .*subquery"):
        run(con, landing, config_dir, mapping("(SELECT content FROM read_text('/proc/self/environ'))"))
    assert state(con) == before
    dump = str(con.execute("SELECT * FROM ingest_quarantine").fetchall())
    assert "s3cret" not in dump


@pytest.mark.parametrize(
    "statement",
    [
        "COPY (SELECT 42) TO '{out}'",
        "ATTACH '{out}' AS evil",
        "CREATE TABLE pwned AS SELECT 1",
        "UPDATE raw_inventory SET purchase_cost = 0",
    ],
)
@pytest.mark.parametrize("where", ["sql", "skip_when"])
def test_statements_smuggled_into_an_expression_are_refused(con, landing, config_dir, tmp_path, statement, where):
    out = tmp_path / "exfiltrated.out"
    injected = "1); " + statement.format(out=out) + "; SELECT (1"
    before = state(con)
    text = mapping(injected) if where == "sql" else mapping(skip_when=injected)
    with pytest.raises(UnsafeExpression, match="more than one statement|does not parse"):
        run(con, landing, config_dir, text)
    assert not out.exists()
    assert state(con) == before


@pytest.mark.parametrize(
    "expr, why",
    [
        ("1) FROM read_text('/etc/passwd') --", "reads from a table"),  # the comment eats the closing parenthesis
        ("1) AS x FROM raw_inventory WHERE (1", "has no alias"),
        ("tag) FROM raw_inventory WHERE (1", "reads from a table"),
        ("1), (2", "more than one expression"),
        ("tag IN (SELECT device_id FROM raw_inventory)", "subquery"),
        ("EXISTS (SELECT 1)", "subquery"),
        ("", "empty"),
    ],
)
def test_only_one_scalar_expression_passes(expr, why):
    with pytest.raises(UnsafeExpression, match=why):
        scalar_expression(expr, "fields.x.sql", "m.yaml")
    # what passes is DuckDB's own rendering of the parse, not the text as written
    assert scalar_expression("a || 'x'  -- a comment\n", "f", "m.yaml") == "((a || 'x'))"


def test_the_sandbox_sees_only_the_file_and_nothing_outside(tmp_path):
    rows = pa.table({"a": ["1"]})
    assert evaluate(rows, "SELECT a FROM src").to_pylist() == [{"a": "1"}]
    (tmp_path / "secret.txt").write_text("s3cret")
    for query in (
        f"SELECT content FROM read_text('{tmp_path / 'secret.txt'}')",
        f"COPY (SELECT 1) TO '{tmp_path / 'x.csv'}'",
        f"ATTACH '{tmp_path / 'x.duckdb'}'",
        "SET enable_external_access = true",
    ):
        with pytest.raises(duckdb.Error):
            evaluate(rows, query)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.txt"]
    with pytest.raises(duckdb.CatalogException):
        evaluate(rows, "SELECT * FROM raw_inventory")


def test_configuration_in_the_landing_is_not_read_unless_opted_in(con, landing, config_dir, monkeypatch):
    (landing / "requests" / "log.csv").write_text(LOG)
    (landing / "m.yaml").write_text(mapping())
    with pytest.raises(ValueError, match="in the landing folder .* not read for configuration.*INFERCOST_CONFIG_DIR"):
        ingest_feed(con, "requests", landing, DAY, fmt="mapped", options={"mapping": "m.yaml"})
    # a formats.yaml dropped in the landing does not choose the reader: the default (openai_jsonl) reads log.csv?
    # no: its patterns are *.jsonl, so nothing is read at all
    (landing / "formats.yaml").write_text("requests: {format: mapped, options: {mapping: m.yaml}}\n")
    assert ingest_feed(con, "requests", landing, DAY).rows_read == 0
    monkeypatch.setenv("INFERCOST_CONFIG_IN_LANDING", "true")
    assert ingest_feed(con, "requests", landing, DAY).rows_loaded == 2
