"""`infercost sql` runs one SELECT on the warehouse's tables and nothing else (issue #17, section 1).

Every way of writing or reading outside the warehouse that once worked through the old first-word regex is tried
against a small warehouse made here (a live file and its published copy); each must be refused with one line and a
non-zero exit, leave every file as it was (no new file in the test's folder or the working directory, the same row
counts), and print no secret.
"""

import os
import shutil
import subprocess
import sys

import duckdb
import pytest

from pipelines.cli.main import main
from pipelines.warehouse.readonly_query import QueryRefused, query_read_only
from tests.conftest import REPO

SECRET = "s3cret-sentinel-8c41"
TABLES = {"fct_request_cost": 40, "agg_daily_model_cost": 4}


@pytest.fixture
def home(tmp_path, monkeypatch):
    """INFERCOST_HOME with a live warehouse and its published copy; the working directory is an empty folder."""
    home = tmp_path / "home"
    (home / "published").mkdir(parents=True)
    live = home / "warehouse.duckdb"
    con = duckdb.connect(str(live))
    con.execute(
        "CREATE TABLE fct_request_cost AS SELECT 'r' || range AS request_id, "
        "['llama-3.1-8b-instruct', 'mixtral-8x7b-instruct'][range % 2 + 1] AS model, "
        "DATE '2026-11-02' + (range // 20)::INT AS request_date, (range * 0.001)::DOUBLE AS total_cost_usd, "
        "range * 10.0 AS energy_j FROM range(40)"
    )
    con.execute(
        "CREATE TABLE agg_daily_model_cost AS SELECT request_date, model, count(*) AS requests, "
        "sum(total_cost_usd) AS cost_usd FROM fct_request_cost GROUP BY ALL"
    )
    con.close()
    shutil.copyfile(live, home / "published" / "warehouse.duckdb")
    (tmp_path / "secret.csv").write_text(f"token\n{SECRET}\n")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("INFERCOST_HOME", str(home))
    monkeypatch.delenv("INFERCOST_WAREHOUSE", raising=False)
    monkeypatch.delenv("INFERCOST_PUBLISHED", raising=False)
    monkeypatch.setenv("INFERCOST_ALERT_WEBHOOK_SECRET", SECRET)
    return home


def files_under(*roots):
    """Every file below the roots with its size and modification time."""
    return {(str(p), p.stat().st_size, p.stat().st_mtime_ns) for root in roots for p in root.rglob("*") if p.is_file()}


def row_counts(home):
    counts = {}
    for path in (home / "warehouse.duckdb", home / "published" / "warehouse.duckdb"):
        con = duckdb.connect(str(path), read_only=True)
        counts[path.name + str(path.parent)] = {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in TABLES
        }
        con.close()
    return counts


def attacks(home, tmp_path):
    live, published = home / "warehouse.duckdb", home / "published" / "warehouse.duckdb"
    secret = tmp_path / "secret.csv"
    return [
        # several statements, the first harmless
        ([f"SELECT 1; ATTACH '{live}' AS w (READ_WRITE); DELETE FROM w.fct_request_cost"], "exactly one"),
        (["--live", f"SELECT 1; ATTACH '{published}' AS p (READ_WRITE); DROP TABLE p.fct_request_cost"], "exactly one"),
        (["SELECT 1; EXPORT DATABASE 'exported'"], "exactly one"),
        (["SELECT 1; COPY fct_request_cost TO 'x.csv'"], "exactly one"),
        (["SELECT 1; SET enable_external_access = true; SELECT * FROM read_text('/etc/passwd')"], "exactly one"),
        # a statement that writes, however it is dressed
        (["/* c */ COPY fct_request_cost TO 'x.csv'"], "COPY statement"),
        (["-- a comment\nCOPY fct_request_cost TO 'x.csv'"], "COPY statement"),
        ([";COPY fct_request_cost TO 'x.csv'"], "COPY statement"),
        (["\ufeffCOPY fct_request_cost TO 'x.csv'"], "COPY statement"),
        (["\n\t copy (SELECT * FROM fct_request_cost) TO 'x.parquet' (FORMAT parquet)"], "COPY statement"),
        (["EXPLAIN ANALYZE COPY fct_request_cost TO 'x.csv'"], "EXPLAIN statement"),
        (["EXPORT DATABASE 'exported'"], "EXPORT statement"),
        (["ATTACH 'new.duckdb'"], "ATTACH statement"),
        ([f"ATTACH '{tmp_path / 'new.duckdb'}' AS n"], "ATTACH statement"),
        (["--live", f"ATTACH '{live}' AS w2 (READ_WRITE)"], "ATTACH statement"),
        (["COPY FROM DATABASE memory TO w"], "statement"),
        (["CREATE TABLE t AS SELECT 1"], "CREATE statement"),
        (["DELETE FROM fct_request_cost"], "DELETE statement"),
        (["INSTALL httpfs"], "statement"),
        (["SET enable_external_access = true"], "SET statement"),
        (["PRAGMA enable_external_access"], "PRAGMA statement"),
        (["CHECKPOINT"], "statement"),
        # a SELECT that reaches outside the warehouse
        (["SELECT * FROM read_text('/etc/passwd')"], "no other file"),
        (["SELECT * FROM read_text('/proc/self/environ')"], "no other file"),
        ([f"SELECT * FROM read_csv('{secret}')"], "no other file"),
        ([f"SELECT * FROM '{secret}'"], "no other file"),
        ([f"SELECT * FROM read_blob('{secret}')"], "no other file"),
        (["SELECT * FROM glob('*')"], "no other file"),
        ([f"SELECT * FROM glob('{tmp_path}/*')"], "no other file"),
        ([f"SELECT * FROM read_parquet('{tmp_path}/x.parquet')"], "no other file"),
        (["SELECT * FROM query('COPY fct_request_cost TO ''x.csv''')"], "query failed"),
        ([""], "no SQL statement"),
        (["-- nothing but a comment"], "no SQL statement"),
    ]


def test_every_attack_is_refused_in_one_line_and_changes_nothing(home, tmp_path, capsys):
    before_files, before_rows = files_under(tmp_path), row_counts(home)
    for argv, expected in attacks(home, tmp_path):
        with pytest.raises(SystemExit) as exit_:
            main(["sql", *argv])
        out, err = capsys.readouterr()
        assert exit_.value.code == 1, argv
        assert out == "", argv
        assert err.startswith("infercost: ") and expected in err, (argv, err)
        assert len(err.strip().splitlines()) == 1 or expected == "query failed", (argv, err)
        assert SECRET not in out + err and "root:" not in out + err, argv
        assert files_under(tmp_path) == before_files, argv  # no file written (the cwd is inside tmp_path)
    assert row_counts(home) == before_rows
    assert not any((home.parent / "cwd").iterdir())


def test_the_environment_of_the_process_is_not_readable(home, tmp_path):
    """/proc/self/environ holds the alert secrets of the real process: run it as one, with the secret set."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    before = files_under(tmp_path)
    for q in [
        "SELECT * FROM read_text('/proc/self/environ')",
        "SELECT content FROM read_blob('/proc/self/environ')",
        "SELECT * FROM read_csv('/proc/self/environ', sep='\\0', header=false)",
    ]:
        run = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "sql", q],
            cwd=home.parent / "cwd",
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 1 and run.stdout == "", run.stderr
        assert SECRET not in run.stderr and "no other file" in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1
    assert files_under(tmp_path) == before


ANALYST_QUERIES = [
    (
        (
            "WITH daily AS (SELECT request_date, model, sum(total_cost_usd) AS usd FROM fct_request_cost GROUP BY ALL) "
            "SELECT model, sum(usd) AS usd FROM daily GROUP BY model ORDER BY model"
        ),
        2,
    ),
    (
        (
            "SELECT request_id, total_cost_usd, sum(total_cost_usd) OVER (PARTITION BY model ORDER BY request_id) AS "
            "running_usd, rank() OVER (ORDER BY energy_j DESC) AS energy_rank FROM fct_request_cost"
        ),
        40,
    ),
    ("FROM agg_daily_model_cost SELECT model, requests", 4),
    ("SHOW TABLES", 2),
    ("DESCRIBE fct_request_cost", 5),
    ("SUMMARIZE agg_daily_model_cost", 4),
    ("SELECT 'a; DELETE FROM fct_request_cost; COPY' AS text_with_semicolons  -- COPY in a comment", 1),
    ("  select count(*) AS n from fct_request_cost;", 1),
    ("VALUES (1, 'a'), (2, 'b')", 2),
    ("SELECT model FROM fct_request_cost UNION SELECT model FROM agg_daily_model_cost", 2),
]


@pytest.mark.parametrize("sql,rows", ANALYST_QUERIES)
def test_analyst_queries_still_run(home, sql, rows):
    result = query_read_only(home / "published" / "warehouse.duckdb", sql)
    assert result.table.num_rows == result.total_rows == rows


def test_the_command_prints_the_answer_and_counts_the_rest(home, capsys):
    main(["sql", "--max-rows", "3", "SELECT request_id, total_cost_usd FROM fct_request_cost ORDER BY energy_j"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["request_id", "total_cost_usd"]
    assert out[2].split() == ["r0", "0"] and out[-1] == "... 37 more rows"
    main(["sql", "--live", "SELECT count(*) AS n FROM agg_daily_model_cost"])
    assert capsys.readouterr().out.splitlines()[2].strip() == "4"


def test_the_sandbox_refuses_without_the_cli(home):
    with pytest.raises(QueryRefused, match="no other file"):
        query_read_only(home / "warehouse.duckdb", "SELECT * FROM read_text('/etc/passwd')")
    with pytest.raises(QueryRefused, match="read-only"):
        query_read_only(home / "warehouse.duckdb", "DROP TABLE fct_request_cost")


def test_views_over_the_lake_are_read_and_other_parquet_is_not(home, tmp_path):
    """Found by a stranger: with the spark engine, the published copy's row-level tables are views over the lake
    (pipelines/spark/lake_io.py), which the sandbox refused to read. The lake is readable; Parquet elsewhere is not."""
    day = home / "lake" / "raw_requests" / "day=2026-11-02"
    day.mkdir(parents=True)
    outside = tmp_path / "outside.parquet"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT 'r' || range AS request_id FROM range(7)) TO '{day / 'part-0.parquet'}'")
    con.execute(f"COPY (SELECT {SECRET!r} AS token) TO '{outside}'")
    con.close()
    published = home / "published" / "warehouse.duckdb"
    con = duckdb.connect(str(published))
    con.execute(
        f"CREATE VIEW raw_requests AS SELECT * FROM read_parquet('{home / 'lake'}/raw_requests/day=*/*.parquet')"
    )
    con.execute(f"CREATE VIEW leaked AS SELECT * FROM read_parquet('{outside}')")
    con.close()
    assert query_read_only(published, "SELECT count(*) AS n FROM raw_requests").table.column("n").to_pylist() == [7]
    with pytest.raises(QueryRefused, match="no other file"):
        query_read_only(published, "SELECT * FROM leaked")


def cli(args, cwd, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )


def test_live_while_the_pipeline_writes_says_what_to_do(home):
    live = home / "warehouse.duckdb"
    hold = (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
        "c.execute('CREATE TABLE IF NOT EXISTS _busy(x INT)'); print('writing', flush=True); time.sleep(120)"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold, str(live)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "writing"
        busy = cli(["sql", "--live", "SELECT 1"], home)
        assert busy.returncode == 1 and busy.stdout == ""
        assert busy.stderr.strip() == (
            f"infercost: the pipeline is writing to {live} (PID {holder.pid}); query the published copy (drop --live)"
        ), busy.stderr
        published = cli(["sql", "SELECT count(*) AS n FROM fct_request_cost"], home)
        assert published.returncode == 0 and published.stdout.splitlines()[2].strip() == "40"
        alerts = cli(["alerts", "list"], home)  # a reader: the published copy, whoever holds the live file
        assert alerts.returncode == 0 and "alert(s)" in alerts.stdout, alerts.stderr
        ingest = cli(["ingest", "--partition", "2026-11-02"], home)  # a writer of its own: told who holds the file
        assert ingest.returncode == 1 and ingest.stderr == (
            f"infercost: the pipeline is writing to {live} (PID {holder.pid}); wait for that run to finish\n"
        )
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_a_reader_that_stops_early_gets_no_broken_pipe_error(home):
    """`infercost sql ... | head -1`: the rest of the rows go nowhere, quietly."""
    cmd = (
        f"{sys.executable} -m pipelines.cli sql --max-rows 100000 'SELECT range AS n, range * 2 AS m "
        "FROM range(100000)' | head -1"
    )
    run = subprocess.run(
        ["bash", "-c", cmd],
        cwd=home,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.stdout.split() == ["n", "m"]
    assert run.stderr == ""
    # the same, reading one line from a pipe and closing it: the command ends at once with SIGPIPE's status
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "sql", "--max-rows", "100000", "SELECT range AS n FROM range(100000)"],
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout.readline().split() == [b"n"]
    proc.stdout.close()
    assert proc.wait(timeout=120) == 141
    assert proc.stderr.read() == b""
    proc.stderr.close()
