"""report.html is self-contained and renders in headless Chromium (screenshotted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.fixtures.tools import require_tool
from tests.steps.benchmark.bench_fixtures import Sweep

WIDTH, HEIGHT = 1280, 2400
# matplotlib's first colour (C0, #1f77b4): only the embedded plots draw it, the page's CSS never does.
PLOT_BLUE = np.array([31, 119, 180])


def test_report_renders_in_chromium(sweep: Sweep, tmp_path: Path):
    chromium = require_tool("chromium")
    report = tmp_path / "report"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "steps.benchmark",
            f"--runs-uri={sweep.runs_uri}",
            f"--report-uri=file://{report}",
            f"--outputs-dir={tmp_path}/outputs",
            "--gpu-price-per-hour=2.48",
            "--cpu-price-per-hour=0.19",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    page = (report / "report.html").read_text()
    assert not re.search(r"""(src|href)=["'](?!data:)""", page), "the page must not load anything"
    assert page.count("src='data:image/png;base64,") == 3

    # Moved away from the report directory so the page cannot be using the PNGs next to it.
    alone = tmp_path / "alone.html"
    alone.write_text(page)
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            str(chromium),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--hide-scrollbars",
            f"--window-size={WIDTH},{HEIGHT}",
            f"--screenshot={shot}",
            alone.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape == (HEIGHT, WIDTH, 3)
    blue = (np.abs(pixels - PLOT_BLUE).sum(axis=2) < 30).sum()
    dark = (pixels.sum(axis=2) < 200).sum()  # text and table rules
    assert blue > 500, "no plot pixels: the embedded images did not render"
    assert dark > 5000, "no text: the page did not render"
