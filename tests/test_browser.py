"""The standalone HTML page in a real browser: headless Chromium renders it, not blank and without horizontal overflow.

Skipped, with the reason, when no Chromium is installed (``apt-get install chromium``).
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest

from convgrad import cli

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((path for name in BROWSERS if (path := shutil.which(name))), None)
if BROWSER is None:
    pytest.skip("no Chromium found (apt-get install chromium): the standalone page is not rendered in a browser",
                allow_module_level=True)
pytest.importorskip("matplotlib")
PIL = pytest.importorskip("PIL")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--disable-extensions", "--mute-audio"]

MEASURE = """
<script>
window.addEventListener("load", function () {
  var root = document.documentElement;
  var report = document.createElement("div");
  report.id = "convgrad-measure";
  report.setAttribute("data-scroll-width", String(root.scrollWidth));
  report.setAttribute("data-inner-width", String(window.innerWidth));
  report.setAttribute("data-images", String(Array.prototype.filter.call(document.images,
      function (im) { return im.complete && im.naturalWidth > 0; }).length));
  document.body.appendChild(report);
});
</script>
"""


def _chromium(tmp_path: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(tmp_path)}
    return subprocess.run([str(BROWSER), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=120, check=False, env=env)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """``convgrad explain --format html`` of a real layer: long title, shapes, the picture, 15 code blocks."""
    path = tmp_path_factory.mktemp("page") / "layer.html"
    code = cli.main(["explain", "--input", "8x64x56x56", "--weight", "64x64x3x3", "--padding", "1", "--stride", "2",
                     "--format", "html", "-o", str(path)])
    assert code == 0
    return path


@pytest.mark.parametrize("width", [1024, 500])
def test_no_horizontal_overflow(page: pathlib.Path, tmp_path: pathlib.Path, width: int) -> None:
    measured = tmp_path / "measured.html"
    measured.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    done = _chromium(tmp_path, f"--window-size={width},900", "--virtual-time-budget=5000", "--dump-dom",
                     measured.as_uri())
    match = re.search(r'id="convgrad-measure" data-scroll-width="(\d+)" data-inner-width="(\d+)" '
                      r'data-images="(\d+)"', done.stdout)
    assert match, (done.returncode, done.stderr[-2000:])
    scroll, inner, images = (int(v) for v in match.groups())
    assert inner == width and images == 1
    assert scroll <= inner, f"the page is {scroll} px wide in a {inner} px window"


def test_screenshot_is_not_blank(page: pathlib.Path, tmp_path: pathlib.Path) -> None:
    from PIL import Image

    shot = tmp_path / "shot.png"
    done = _chromium(tmp_path, "--window-size=1000,1400", f"--screenshot={shot}", "--virtual-time-budget=5000",
                     page.as_uri())
    assert shot.exists(), (done.returncode, done.stderr[-2000:])
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.shape == (1400, 1000, 3)
    ink = np.any(pixels < 200, axis=2).mean()  # text, lines, the picture
    colours = len(np.unique(pixels.reshape(-1, 3)[::7], axis=0))
    assert ink > 0.02 and colours > 50, (ink, colours)
    green = np.all(np.abs(pixels.astype(int) - (0xDA, 0xFB, 0xE1)) < 4, axis=2).mean()
    assert green > 0.0005  # the verdict badges are rendered in their colour
