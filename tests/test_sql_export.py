"""`infercost sql --format csv|json|parquet --out FILE`: the answer leaves the sandbox as a file Python writes (the
query's connection still reaches no file), whole or cut by --max-rows (0: all), never half written."""

import csv
import json
import shutil

import duckdb
import pyarrow.parquet as pq
import pytest

from pipelines.cli.main import main

ROWS = 120_007  # more than one batch of the reader (100,000)


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "published").mkdir(parents=True)
    live = home / "warehouse.duckdb"
    with duckdb.connect(str(live)) as con:
        con.execute(f"""
            CREATE TABLE fct_request_cost AS SELECT 'r' || range AS request_id,
            TIMESTAMP '2026-11-02 00:00:00' + to_microseconds(range) AS started_at,
            DATE '2026-11-02' + (range % 3)::INT AS request_date,
            (range * 0.001)::DECIMAL(18, 3) AS total_cost_usd,
            CASE WHEN range % 7 = 0 THEN NULL ELSE range * 10.0 END AS energy_j,
            CASE WHEN range = 1 THEN 'cost, "quoted"' END AS cost_caveat
            FROM range({ROWS})""")
    shutil.copyfile(live, home / "published" / "warehouse.duckdb")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INFERCOST_HOME", str(home))
    monkeypatch.delenv("INFERCOST_WAREHOUSE", raising=False)
    monkeypatch.delenv("INFERCOST_PUBLISHED", raising=False)
    return home


QUERY = "SELECT * FROM fct_request_cost ORDER BY request_id"


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_every_row_is_written_with_max_rows_0(home, tmp_path, fmt, capsys):
    out = tmp_path / f"answer.{fmt}"
    main(["sql", QUERY, "--format", fmt, "--out", str(out), "--max-rows", "0"])
    assert f"wrote {ROWS:,} rows as {fmt}" in capsys.readouterr().out
    if fmt == "csv":
        with out.open() as f:
            rows = list(csv.DictReader(f))
    elif fmt == "json":
        rows = json.loads(out.read_text())
    else:
        rows = pq.read_table(out).to_pylist()
    assert len(rows) == ROWS
    by_id = {r["request_id"]: r for r in rows}
    assert set(rows[0]) == {"request_id", "started_at", "request_date", "total_cost_usd", "energy_j", "cost_caveat"}
    if fmt != "parquet":
        assert by_id["r1"]["cost_caveat"] == 'cost, "quoted"'
        assert str(by_id["r7"]["energy_j"] or "") == ""  # null stays empty / null
        assert str(by_id["r5"]["request_date"]).startswith("2026-11-04")
    if fmt == "json":
        assert by_id["r2"]["started_at"] == "2026-11-02T00:00:00.000002"
        assert by_id["r2"]["total_cost_usd"] == pytest.approx(0.002)
        assert by_id["r7"]["energy_j"] is None
    if fmt == "parquet":
        assert by_id["r7"]["energy_j"] is None and by_id["r8"]["energy_j"] == 80.0
    assert list(tmp_path.glob(".*part")) == []


def test_max_rows_cuts_and_says_so(home, tmp_path, capsys):
    out = tmp_path / "first.csv"
    main(["sql", QUERY, "--out", str(out), "--max-rows", "10"])  # format from the extension
    captured = capsys.readouterr()
    assert "wrote 10 rows as csv" in captured.out
    assert f"{ROWS - 10:,} more rows left out by --max-rows 10" in captured.err
    assert len(out.read_text().splitlines()) == 11


def test_csv_to_stdout_and_the_table_with_max_rows_0(home, capsys):
    main(["sql", "SELECT request_id FROM fct_request_cost ORDER BY request_id LIMIT 3", "--format", "csv"])
    assert capsys.readouterr().out.splitlines() == ['"request_id"', '"r0"', '"r1"', '"r10"']
    main(["sql", "SELECT request_id FROM fct_request_cost LIMIT 120", "--max-rows", "0"])
    printed = capsys.readouterr().out
    assert len(printed.splitlines()) == 122 and "more rows" not in printed


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--out", "x.txt"], "cannot tell the format of x.txt"),
        (["--format", "parquet"], "--format parquet needs --out FILE"),
        (["--format", "table", "--out", "x.csv"], "--out needs --format csv, json or parquet"),
        (["--max-rows", "-1"], "--max-rows must be 0"),
    ],
)
def test_unusable_export_options_are_refused(home, tmp_path, argv, expected, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sql", QUERY, *argv])
    assert exc.value.code == 1
    assert expected in capsys.readouterr().err
    assert not list(tmp_path.glob("x.*"))


def test_a_failing_query_leaves_no_file(home, tmp_path, capsys):
    out = tmp_path / "bad.json"
    with pytest.raises(SystemExit):
        main(["sql", "SELECT 1 / (request_id::INT) FROM fct_request_cost", "--out", str(out)])
    assert "query failed" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.glob(".*part")) == []


def test_the_query_still_cannot_write_a_file_itself(home, tmp_path, capsys):
    target = tmp_path / "copied.csv"
    with pytest.raises(SystemExit):
        main(["sql", f"COPY fct_request_cost TO '{target}'", "--out", str(tmp_path / "a.csv")])
    with pytest.raises(SystemExit):
        main(["sql", f"SELECT * FROM read_csv('{target}')", "--out", str(tmp_path / "b.csv")])
    assert not target.exists() and not (tmp_path / "a.csv").exists() and not (tmp_path / "b.csv").exists()
