"""The HTML report in a real browser: it renders (not blank), raises no error and every image decodes.

Needs a `chromium` (or `chromium-browser`) binary on PATH and skips cleanly without one. The
report has no script; to observe errors and image decoding, a copy of the page gets a small
test-only probe that writes its findings into the DOM, which `--dump-dom` reads back.
"""

from __future__ import annotations

import html as html_lib
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robustinv.report.html import render_html
from test_html_report import WHEN, full_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium or chromium-browser on PATH")

# Runs before the page's own content: records errors, then after `load` checks every image.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push("error: " + e.message); }, true);
var consoleError = console.error;
console.error = function () {
  window.__errors.push("console: " + Array.prototype.join.call(arguments, " "));
  consoleError.apply(console, arguments);
};
window.addEventListener("load", function () {
  var broken = [];
  for (var i = 0; i < document.images.length; i++) {
    var img = document.images[i];
    if (!(img.complete && img.naturalWidth > 0)) { broken.push(i); }
  }
  var out = document.createElement("pre");
  out.id = "probe-result";
  out.textContent = "images=" + document.images.length + ";broken=" + broken.join(",")
    + ";errors=" + window.__errors.join("|");
  document.body.appendChild(out);
});
</script>
"""


def chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with a throw-away profile; it must not hang the suite."""
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--hide-scrollbars", f"--user-data-dir={cwd / 'profile'}", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browser") / "report.html"
    path.write_text(render_html(full_run(), rendered_at=WHEN), encoding="utf-8")
    return path


def test_screenshot_is_not_blank(report: Path) -> None:
    shot = report.parent / "report.png"
    done = chromium(f"--screenshot={shot}", "--window-size=1280,2400", report.as_uri(), cwd=report.parent)
    assert shot.is_file(), done.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.format == "PNG" and image.size == (1280, 2400)
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert pixels.std() > 10  # a blank or single-colour page has none
    assert (pixels < 128).mean() > 0.005  # some dark ink: text, lines


def test_no_errors_and_every_image_decodes(report: Path) -> None:
    probed = report.parent / "probed.html"
    page = report.read_text(encoding="utf-8")
    probed.write_text(page.replace("<head>", "<head>\n" + PROBE, 1), encoding="utf-8")
    done = chromium("--virtual-time-budget=5000", "--dump-dom", probed.as_uri(), cwd=report.parent)
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', done.stdout, re.DOTALL)
    assert found, (done.stdout[-1000:], done.stderr[-2000:])
    result = html_lib.unescape(found.group(1))
    assert result == f"images={page.count('<img')};broken=;errors=", result
