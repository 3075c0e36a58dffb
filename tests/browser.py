"""Opening the HTML report in headless Chromium: the DOM after its script ran, and a screenshot of the same layout
in which each chart's plot area must hold coloured pixels (the marks: axes, gridlines and zero lines are grey)."""

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import run

WINDOW = (1100, 9000)  # tall enough for the whole report, so the screenshot and the DOM share one layout


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium is missing: .ci/run installs Debian's chromium")
    pytest.skip("no chromium on this machine (apt-get install chromium)")


def _chromium(page: Path, profile: Path, *args: str):
    return run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            # no network at all: a chart that needed to fetch something would not draw
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "--virtual-time-budget=20000",
            f"--user-data-dir={profile}",
            *args,
            page.as_uri(),
        ],
        ok=False,
        timeout=180,
    )


def assert_fetches_nothing(page: str) -> None:
    """The page is its own text plus the unchanged plotly.js bundle (whose code names map-tile and logo URLs it
    only uses for map charts and the logo, which the report does not draw); outside that bundle nothing links out."""
    from plotly.offline import get_plotlyjs

    bundle = f"<script>{get_plotlyjs()}</script>"
    assert page.count(bundle) == 1, "plotly.js is inlined exactly once, unchanged"
    rest = page.replace(bundle, "")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", rest), "the report must not fetch anything"
    assert "<script src" not in rest and "<link" not in rest


def open_report(page: Path, tmp_path: Path) -> tuple[dict, dict]:
    """The <body> attributes and, per chart id, its attributes (data-marks, data-plot-rect) after the page drew."""
    dom = _chromium(page, tmp_path / "profile", "--dump-dom")
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stderr[-2000:]
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))
    charts = {}
    for tag in re.findall(r'<div class="chart[^"]*"[^>]*>', dom.stdout):
        a = dict(re.findall(r'([\w-]+)="([^"]*)"', tag))
        charts[a["id"]] = a
    return attrs, charts


def coloured_pixels_per_chart(page: Path, tmp_path: Path, charts: dict) -> dict[str, int]:
    """A screenshot of the page, and per chart the pixels inside its plot area that are neither white nor grey."""
    import numpy as np
    from PIL import Image

    shot = tmp_path / "report.png"
    done = _chromium(page, tmp_path / "profile-shot", f"--screenshot={shot}")
    assert shot.exists(), done.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    counts = {}
    for chart_id, a in charts.items():
        x, y, w, h = (int(v) for v in a["data-plot-rect"].split(","))
        assert y + h <= WINDOW[1], f"{chart_id} lies below the screenshot: make WINDOW taller"
        r, g, b = (np.asarray(band, dtype=np.int16) for band in image.crop((x, y, x + w, y + h)).split())
        counts[chart_id] = int(((np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)) > 60).sum())
    return counts
