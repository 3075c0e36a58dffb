import os
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
