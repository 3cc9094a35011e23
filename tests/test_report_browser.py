"""The HTML report opened in a real browser (headless Chromium): the page renders (a screenshot that is not
blank), writes nothing to the console, and requests nothing outside the file.

Chromium comes from the system (Debian's ``chromium`` package; ``.ci/run`` installs it where it can); where
no browser is installed the tests are skipped with the reason. The harness is checked on a page with a
console error and an external image, so its checks can fail."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image", reason="Pillow (a matplotlib dependency) reads the screenshot")

from targetsim.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((found for name in BROWSERS if (found := shutil.which(name))), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium installed (Debian: apt install chromium; "
                                                        ".ci/run installs it where it can)")

# A headless browser that starts no background service (updates, sync, accounts) and resolves no host name,
# so that nothing leaves the machine whatever a page asks for; the net log records what it asked for.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-default-apps", "--disable-extensions", "--no-pings",
         "--disable-client-side-phishing-detection", "--disable-features=Translate,OptimizationHints,MediaRouter",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0")


def open_in_browser(page: Path, folder: Path, width: int = 1280, height: int = 2400) -> dict:
    """Screenshot ``page``; return the screenshot's path, the console messages and the page's requests of
    anything but ``file:`` and ``data:`` addresses."""
    shot, netlog = folder / f"{page.stem}.png", folder / f"{page.stem}.netlog.json"
    done = subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={folder / 'profile'}", f"--log-net-log={netlog}",
                           f"--window-size={width},{height}", f"--screenshot={shot}", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.is_file(), f"no screenshot: {done.stderr[-2000:]}"
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    events = json.loads(netlog.read_text(encoding="utf-8"))["events"]
    # the page's own requests carry its (file://) top frame in their network isolation key; the browser's
    # own (there should be none with the flags above) do not
    requests = sorted({e["params"]["url"] for e in events
                       if "url" in e.get("params", {}) and "file://" in str(e["params"].get("network_isolation_key", ""))
                       and not e["params"]["url"].startswith(("file:", "data:"))})
    return {"screenshot": shot, "console": console, "requests": requests}


def painted(shot: Path) -> tuple[float, int]:
    """(share of pixels that are not near-white, number of distinct colours) of a screenshot."""
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    inked = float(np.mean(pixels.min(axis=1) < 235))
    return inked, len(np.unique(pixels, axis=0))


@pytest.fixture(scope="module")
def report_page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    results, page = folder / "base.nc", folder / "base.html"
    runner = CliRunner()
    done = runner.invoke(main, ["run", str(ROOT / "scenarios/base.yaml"), "-o", str(results), "--paths", "5000",
                                "--quiet"])
    assert done.exit_code == 0, done.output
    done = runner.invoke(main, ["report", str(results), "-o", str(page), "--goal-paths", "1000"])
    assert done.exit_code == 0, done.output
    return page


def test_the_harness_sees_console_errors_and_external_requests(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><p>bad</p><script>console.error('broken on purpose')</script>"
                   "<img src='https://example.com/a.png'></body></html>", encoding="utf-8")
    seen = open_in_browser(bad, tmp_path, height=600)
    assert any("broken on purpose" in line for line in seen["console"])
    assert seen["requests"] == ["https://example.com/a.png"]
    inked, _ = painted(seen["screenshot"])
    assert inked < 0.01  # one word on a white page: what a blank report would look like, nearly


def test_the_report_renders_without_console_errors_or_requests(report_page, tmp_path):
    seen = open_in_browser(report_page, tmp_path)
    assert seen["console"] == []
    assert seen["requests"] == []
    inked, colours = painted(seen["screenshot"])
    # text, tables, badges and the first fan charts: well inked, and in colour
    assert inked > 0.05 and colours > 200, (inked, colours)


def test_the_report_fits_a_phone(report_page, tmp_path):
    seen = open_in_browser(report_page, tmp_path, width=390, height=1600)
    assert seen["console"] == []
    image = Image.open(seen["screenshot"]).convert("RGB")
    assert image.width == 390
    inked, _ = painted(seen["screenshot"])
    assert inked > 0.05
