import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

# a developer's INFERCOST_* settings must not leak into a subprocess test; these two are kept: where the third-party
# test data lives, and a memory cap for this machine (it changes no number)
_KEPT_SETTINGS = {"INFERCOST_REALDATA", "INFERCOST_DUCKDB_MEMORY"}


def cli_env(
    home: Path | None = None, landing: Path | None = None, warehouse: Path | None = None, **extra: str
) -> dict[str, str]:
    """The environment of a subprocess test: this interpreter's bin first on PATH (dbt, dagster), no inherited
    INFERCOST_* setting or DAGSTER_HOME, then the given home, landing folder, warehouse file and extra variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "DAGSTER_HOME" and (not k.startswith("INFERCOST_") or k in _KEPT_SETTINGS)
    }
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["GX_ANALYTICS_ENABLED"] = "false"
    for name, path in (("INFERCOST_HOME", home), ("INFERCOST_LANDING", landing), ("INFERCOST_WAREHOUSE", warehouse)):
        if path is not None:
            env[name] = str(path)
    return {**env, **extra}


def run(
    cmd: list[str], env: dict[str, str] | None = None, ok: bool = True, timeout: float = 300, tail: int = 3000
) -> subprocess.CompletedProcess:
    """Run cmd in the repo; with ok=True fail the test, showing the command and the tail of its output, unless it
    exits 0 (pass ok=False to check a refusal yourself)."""
    done = subprocess.run(
        cmd, cwd=REPO, env=cli_env() if env is None else env, capture_output=True, text=True, timeout=timeout
    )
    if ok:
        assert done.returncode == 0, (
            f"{' '.join(map(str, cmd))} exited {done.returncode}\n"
            f"--- stdout (tail) ---\n{done.stdout[-tail:]}\n"
            f"--- stderr (tail) ---\n{done.stderr[-tail:]}"
        )
    return done


def dbt_build(work: Path, env: dict[str, str], *select: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`dbt build` of the repo's project in ``env`` (its warehouse), with dbt's target and logs under ``work``
    (never the source tree); ``select`` narrows it (dbt --select), none builds everything."""
    return run(
        ["dbt", "build", "--project-dir", "dbt", "--profiles-dir", "dbt"]
        + ["--target-path", str(work / "target"), "--log-path", str(work / "logs")]
        + (["--select", *select] if select else []),
        env=env,
        timeout=timeout,
        tail=4000,
    )


def run_cli(
    args: list,
    home: Path | None = None,
    landing: Path | None = None,
    env: dict[str, str] | None = None,
    ok: bool = True,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """`infercost <args>` in a subprocess, in cli_env(home, landing) unless env is given; see run for ok."""
    return run(
        [sys.executable, "-m", "pipelines.cli", *map(str, args)],
        env=cli_env(home=home, landing=landing) if env is None else env,
        ok=ok,
        timeout=timeout,
    )


def sample_landing(root: Path, edit_inventory=None, linked=("requests", "telemetry", "prices", "carbon")) -> Path:
    """A landing folder under ``root`` holding the sample day: the ``linked`` feeds as links to sample_logs/, the
    fleet files copied, inventory.csv's lines passed through ``edit_inventory`` (a function of the list of lines)
    when given. Feeds not linked get an empty folder, for the test to fill."""
    landing = root / "landing"
    (landing / "fleet").mkdir(parents=True)
    for feed in ("requests", "telemetry", "prices", "carbon"):
        if feed in linked:
            (landing / feed).symlink_to(REPO / "sample_logs" / feed)
        else:
            (landing / feed).mkdir()
    for src in (REPO / "sample_logs" / "fleet").iterdir():
        lines = src.read_text().splitlines(keepends=True)
        if src.name == "inventory.csv" and edit_inventory is not None:
            lines = edit_inventory(lines)
        (landing / "fleet" / src.name).write_text("".join(lines))
    return landing


def sample_telemetry_hour(landing: Path, host: str, day: str = "2026-11-02", hour: int = 0) -> None:
    """The sample host's nvidia-smi lines of one hour of ``day``, header first, into landing/telemetry/."""
    import gzip

    stamp = f"{day.replace('-', '/')} {hour:02d}:"
    with gzip.open(REPO / "sample_logs" / "telemetry" / f"{host}_{day}.csv.gz", "rt") as f:
        lines = [x for i, x in enumerate(f) if i == 0 or x.startswith(stamp)]
    (landing / "telemetry" / f"{host}_{day}.csv").write_text("".join(lines))


def realdata_dir() -> Path:
    """Third-party data beside the repo (../shared/realdata), or $INFERCOST_REALDATA."""
    return Path(os.environ.get("INFERCOST_REALDATA", REPO.parent / "shared" / "realdata"))


@pytest.fixture(scope="session")
def realdata() -> Path:
    path = realdata_dir()
    if not path.is_dir():
        message = f"real data not found at {path} (set INFERCOST_REALDATA)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


# an ingest test's landing folder (the sample fleet files, empty feed folders) and a warehouse with the fleet loaded
@pytest.fixture
def landing(tmp_path):
    land = tmp_path / "landing"
    shutil.copytree(REPO / "sample_logs" / "fleet", land / "fleet")
    for sub in ("requests", "telemetry", "prices"):
        (land / sub).mkdir(parents=True)
    return land


# the config directory (formats.yaml, mapping files), apart from the landing folder as configuration must be
@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    folder = tmp_path / "config"
    folder.mkdir()
    monkeypatch.setenv("INFERCOST_CONFIG_DIR", str(folder))
    return folder


@pytest.fixture
def con(tmp_path, landing):
    from pipelines.ingest.loader import ingest_fleet_table
    from pipelines.warehouse.connection import connect
    from pipelines.warehouse.contracts import FLEET_TABLES

    c = connect(tmp_path / "w.duckdb")
    for name in FLEET_TABLES:
        ingest_fleet_table(c, name, landing)
    yield c
    c.close()


def quarantine(con, feed):
    return {
        line: reason
        for line, reason in con.execute(
            "SELECT source_line, reason FROM ingest_quarantine WHERE feed = ? ORDER BY source_line", [feed]
        ).fetchall()
    }


def assert_row_identity(con, feed):
    for f, read, loaded, quarantined, skipped in con.execute(
        "SELECT source_file, rows_read, rows_loaded, rows_quarantined, rows_skipped FROM ingest_file_stats "
        "WHERE feed = ?",
        [feed],
    ).fetchall():
        assert read == loaded + quarantined + skipped, f
    loaded = con.execute(f"SELECT count(*) FROM raw_{feed}").fetchall()[0][0]
    stats = con.execute("SELECT sum(rows_loaded) FROM ingest_file_stats WHERE feed = ?", [feed]).fetchall()[0][0]
    assert loaded == stats


# a real multi-process Spark cluster (a master and two executor JVMs of 1 core and 1 GB), shared by the session
SPARK_TEST_MASTER = "local-cluster[2,1,1024]"


@pytest.fixture(scope="session")
def spark():
    from pipelines.spark.session import spark_session

    session = spark_session(SPARK_TEST_MASTER, app_name="infercost-tests", conf={"spark.driver.memory": "1g"})
    yield session
    session.stop()
