import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


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
    from pipelines.warehouse.contracts import FLEET_TABLES
    from pipelines.ingest.loader import ingest_fleet_table
    from pipelines.warehouse.connection import connect

    c = connect(tmp_path / "w.duckdb")
    for name in FLEET_TABLES:
        ingest_fleet_table(c, name, landing)
    yield c
    c.close()


def quarantine(con, feed):
    return {line: reason for line, reason in con.execute(
        "SELECT source_line, reason FROM ingest_quarantine WHERE feed = ? ORDER BY source_line", [feed]).fetchall()}


def assert_row_identity(con, feed):
    for f, read, loaded, quarantined in con.execute(
            "SELECT source_file, rows_read, rows_loaded, rows_quarantined FROM ingest_file_stats WHERE feed = ?",
            [feed]).fetchall():
        assert read == loaded + quarantined, f
    loaded = con.execute(f"SELECT count(*) FROM raw_{feed}").fetchall()[0][0]
    stats = con.execute("SELECT sum(rows_loaded) FROM ingest_file_stats WHERE feed = ?", [feed]).fetchall()[0][0]
    assert loaded == stats
