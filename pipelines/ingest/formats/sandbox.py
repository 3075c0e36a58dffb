"""Mapping expressions (``sql:``, ``skip_when``) are code from a file: each must be one scalar expression, and all
of them run on a connection of their own that sees only the file's rows.

- :func:`scalar_expression` parses ``SELECT (<expr>)`` with DuckDB's own parser and accepts exactly one statement,
  a SELECT of one unaliased expression with no FROM, WHERE, CTE or subquery; what is pasted into the mapped query
  is DuckDB's re-rendering of that parse tree, never the text as written.
- :func:`sandbox_connection` is an in-memory connection with the file's rows registered as ``src``, then external
  access (files, network, extensions, ATTACH, COPY) switched off and the configuration locked. It holds no table of
  the warehouse, so a mapping can neither read nor change one.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.settings import current


class UnsafeExpression(ValueError):
    """A mapping expression that is not one scalar SQL expression; the message names the mapping and the field."""


def _walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def scalar_expression(expr, where: str, mapping: Path | str) -> str:
    """``expr`` re-rendered by DuckDB's parser, in parentheses, when it is one scalar expression; else
    UnsafeExpression naming the mapping file and the field (``where``)."""

    def refuse(why: str) -> UnsafeExpression:
        return UnsafeExpression(
            f"{mapping}: {where} must be one SQL expression over the source columns ({why}); "
            f"refused: {str(expr)[:200]!r}"
        )

    if not isinstance(expr, str) or not expr.strip():
        raise refuse("it is empty or not text")
    query = f"SELECT ({expr})"
    con = duckdb.connect()
    try:
        try:
            statements = con.extract_statements(query)
        except duckdb.Error as exc:
            raise refuse(f"it does not parse: {str(exc).splitlines()[0]}") from None
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise refuse("it holds more than one statement")
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [query]).fetchall()[0][0])
        if tree.get("error"):
            raise refuse(tree.get("error_message", "it does not parse"))
        node = tree["statements"][0]["node"]
        if node.get("type") != "SELECT_NODE" or len(node.get("select_list", ())) != 1:
            raise refuse("it is more than one expression")
        if node["select_list"][0].get("alias"):
            raise refuse("an expression has no alias")
        if (
            (node.get("from_table") or {}).get("type") != "EMPTY"
            or node.get("where_clause")
            or node.get("having")
            or node.get("qualify")
            or node.get("sample")
            or node.get("modifiers")
            or (node.get("cte_map") or {}).get("map")
            or (node.get("group_expressions") or [])
        ):
            raise refuse("it reads from a table or holds a clause")
        if any(n.get("class") == "SUBQUERY" or "subquery" in n for n in _walk(node["select_list"])):
            raise refuse("it holds a subquery")
        rendered = con.execute("SELECT json_deserialize_sql(?::JSON)", [json.dumps(tree)]).fetchall()[0][0]
    finally:
        con.close()
    if not rendered.startswith("SELECT "):
        raise refuse("it does not render back as an expression")
    return f"({rendered.removeprefix('SELECT ')})"


def sandbox_connection(table: pa.Table) -> duckdb.DuckDBPyConnection:
    """An in-memory connection seeing only ``table`` (as ``src``), with no external access and a locked
    configuration; the session settings (UTC, memory cap) are those of every infercost connection."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{current().duckdb_memory}'")
    con.register("src", table)
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def evaluate(table: pa.Table, query: str) -> pa.Table:
    """The rows of ``query`` over ``table`` (``src``), computed in a sandbox connection."""
    con = sandbox_connection(table)
    try:
        return con.sql(query).to_arrow_table()
    finally:
        con.close()
