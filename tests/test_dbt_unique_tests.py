"""The project's uniqueness tests (dbt/macros/test_unique.sql, test_unique_combination.sql) find repeats by a hash
first and confirm them on the values: rendered from their Jinja and run on DuckDB, they must return exactly the rows
a plain group by returns, also when every value's hash collides (a stand-in hash that is always 0)."""

import duckdb
import jinja2
import pytest

from pipelines.settings import REPO_ROOT

MACROS = REPO_ROOT / "dbt" / "macros"


def _render(file: str, macro: str, **kwargs) -> str:
    # dbt's `{% test name(...) %}` block is a macro named test_<name>; plain Jinja knows it as a macro
    text = (MACROS / file).read_text().replace("{% test ", "{% macro test_").replace("{% endtest %}", "{% endmacro %}")
    return str(getattr(jinja2.Environment().from_string(text).module, macro)(**kwargs))


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("""
        CREATE TABLE pieces AS SELECT * FROM (VALUES
            ('r1', 'd1', 1), ('r1', 'd1', 1), ('r1', 'd2', 1), ('r2', 'd1', 1), ('r3', NULL, 2), ('r3', NULL, 2),
            ('r4', 'd1', 3), ('r4', 'd1', 3), ('r4', 'd1', 3), (NULL, 'd9', 4), (NULL, 'd9', 5), (NULL, 'd8', 5)
        ) AS t(request_id, device_id, bucket)
    """)
    con.execute("CREATE MACRO always_zero(a) AS 0")
    con.execute("CREATE MACRO always_zero3(a, b, c) AS 0")
    return con


def _rows(con, sql):
    return sorted(con.execute(sql).fetchall(), key=repr)


@pytest.mark.parametrize("model", ["pieces", "(select * from pieces where bucket < 5) dbt_subquery"])
@pytest.mark.parametrize("collide", [False, True])
def test_unique_returns_the_plain_group_bys_repeats(con, model, collide):
    sql = _render("test_unique.sql", "duckdb__test_unique", model=model, column_name="request_id")
    if collide:
        sql = sql.replace("hash(", "always_zero(")
    plain = (
        f"select request_id as unique_field, count(*) as n_records from {model} where request_id is not null "
        "group by request_id having count(*) > 1"
    )
    expected = _rows(con, plain)
    assert expected == [("r1", 3), ("r3", 2), ("r4", 3)]
    assert _rows(con, sql) == expected


@pytest.mark.parametrize("collide", [False, True])
def test_unique_combination_returns_the_plain_group_bys_repeats_nulls_equal(con, collide):
    columns = ["request_id", "device_id", "bucket"]
    sql = _render("test_unique_combination.sql", "test_unique_combination", model="pieces", columns=columns)
    if collide:
        sql = sql.replace("hash(", "always_zero3(")
    expected = [("r1", "d1", 1, 2), ("r3", None, 2, 2), ("r4", "d1", 3, 3)]
    assert _rows(con, "select *, count(*) from pieces group by all having count(*) > 1") == expected
    assert _rows(con, sql) == expected


def test_a_table_without_repeats_passes(con):
    con.execute("CREATE TABLE ids AS SELECT 'id-' || i AS request_id FROM range(100000) t(i)")
    sql = _render("test_unique.sql", "duckdb__test_unique", model="ids", column_name="request_id")
    assert con.execute(sql).fetchall() == []
    con.execute("INSERT INTO ids VALUES ('id-99999')")
    assert con.execute(sql).fetchall() == [("id-99999", 2)]
