"""A digest of every table in a warehouse, to show that a change of code left every number as it was.

    python -m pipelines.devtools.marts_digest WAREHOUSE.duckdb [--ignore COLUMN ...] > digest.txt

One line per table: its name, row count and a hash of its rows in a fixed order (every column cast to text,
floats rounded to 12 significant digits so that a summation order does not count as a change). Columns that
record when something ran (``loaded_at``, ``computed_at``...) are left out. Diff two digests taken before and
after a change; a table that appears, disappears or changes shows as a changed line.
"""

from __future__ import annotations

import argparse
import hashlib
import sys

import duckdb

RUN_TIME_COLUMNS = {
    "loaded_at",
    "evaluated_at",
    "computed_at",
    "checked_at",
    "detected_at",
    "published_at",
    "run_at",
    "sent_at",
}


def _text(column: str, type_: str) -> str:
    quoted = f'"{column}"'
    if type_ in ("DOUBLE", "FLOAT", "REAL") or type_.startswith("DECIMAL"):
        return f"coalesce(printf('%.12g', {quoted}::DOUBLE), 'NULL')"
    return f"coalesce(CAST({quoted} AS VARCHAR), 'NULL')"


def table_digests(path: str, ignore: set[str] = frozenset()) -> dict[str, tuple[int, str]]:
    con = duckdb.connect(path, read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
            ).fetchall()
        ]
        out = {}
        for table in tables:
            cols = [
                (c, t)
                for c, t in con.execute(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                    "AND table_schema = 'main' ORDER BY ordinal_position",
                    [table],
                ).fetchall()
                if c not in RUN_TIME_COLUMNS | set(ignore)
            ]
            if not cols:
                continue
            row = " || '|' || ".join(_text(c, t) for c, t in cols)
            lines = [r[0] for r in con.execute(f'SELECT {row} AS line FROM "{table}" ORDER BY line').fetchall()]
            digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
            out[table] = (len(lines), digest)
        return out
    finally:
        con.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse")
    parser.add_argument("--ignore", action="append", default=[], help="a column to leave out (repeatable)")
    args = parser.parse_args(argv)
    for table, (rows, digest) in table_digests(args.warehouse, set(args.ignore)).items():
        sys.stdout.write(f"{table}\t{rows}\t{digest}\n")


if __name__ == "__main__":
    main()
