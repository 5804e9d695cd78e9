"""The preview page in a real browser: headless Chromium (the Debian package) opens the
compiled two-drug job's preview.html from disk with no console error and no request
beyond the page itself, draws the tablet in 3D in both APIs' colours, answers the cut-away
and rotate controls, shows both release curves with their targets, and prints without
its controls. A screenshot is kept in tests/artifacts/.

Chromium is installed by ``make test`` (scripts/ensure-chromium.sh). Without it the test
skips, unless DOSEPRINT_REQUIRE_BROWSER=1 (CI) makes that a failure."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.colors import rgb_to_hsv, to_rgb
from PIL import Image

from conftest import ROOT
from doseprint.job.manifest import JobManifest
from doseprint.report.preview import api_colours

CHROMIUM = Path(os.environ.get("DOSEPRINT_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "tests" / "artifacts"
# Headless without a GPU: WebGL comes from SwiftShader. No network, no background chatter.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
         "--enable-unsafe-swiftshader", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _unavailable(reason: str) -> None:
    if os.environ.get("DOSEPRINT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (DOSEPRINT_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A fresh Chromium profile (persistent context) driven by Playwright."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is not installed (scripts/ensure-chromium.sh installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing (pip install -e '.[dev]')")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            viewport={"width": 1100, "height": 900})
        yield context
        context.close()


@pytest.fixture(scope="module")
def loaded(browser: Any, two_drug_job: Path) -> Iterator[tuple[Any, list[str], list[str]]]:
    """The job's preview.html opened from disk: (page, console errors, requested URLs)."""
    page = browser.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.on("request", lambda r: requests.append(r.url))
    page.goto((two_drug_job / "preview.html").as_uri())
    page.wait_for_function("document.body.dataset.viewer !== undefined", timeout=30_000)
    yield page, errors, requests
    page.close()


def canvas_pixels(page: Any) -> np.ndarray[Any, Any]:
    """The 3D view's pixels (RGB), read back from its WebGL canvas."""
    url = page.evaluate("document.querySelector('#viewer canvas').toDataURL('image/png')")
    data = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def hue_share(pixels: np.ndarray[Any, Any], colour: str) -> float:
    """Share of the pixels that are saturated and within 15° of hue of ``colour``."""
    hsv = rgb_to_hsv(pixels / 255.0).reshape(-1, 3)
    gap = np.abs(hsv[:, 0] - rgb_to_hsv(np.array(to_rgb(colour)))[0])
    near = (np.minimum(gap, 1 - gap) < 15 / 360) & (hsv[:, 1] > 0.3) & (hsv[:, 2] > 0.1)
    return float(near.mean())


def test_page_loads_without_errors_or_network(
    loaded: tuple[Any, list[str], list[str]], two_drug_job: Path
) -> None:
    page, errors, requests = loaded
    state = page.evaluate("document.body.dataset.viewer")
    assert state == "ready", state
    assert errors == []
    page_url = (two_drug_job / "preview.html").as_uri()
    # The page itself and the blob that carries three.js: nothing else is fetched.
    assert requests[0] == page_url
    assert all(u == page_url or u.startswith("blob:") for u in requests), requests
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "preview-two-drug.png"), full_page=True)
    assert (ARTIFACTS / "preview-two-drug.png").stat().st_size > 10_000


def test_3d_view_draws_both_compartments(
    loaded: tuple[Any, list[str], list[str]], two_drug_job: Path
) -> None:
    page, errors, _ = loaded
    pixels = canvas_pixels(page)
    background = np.all(pixels == 255, axis=2)
    assert pixels.shape[0] >= 300 and pixels.shape[1] >= 600
    assert 0.03 < 1 - background.mean() < 0.9
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) >= 20
    job = json.loads((two_drug_job / "job.json").read_text(encoding="utf-8"))
    for api, colour in api_colours(JobManifest.from_json(job)).items():
        assert hue_share(pixels, colour) > 0.005, api
    assert errors == []


def test_cut_away_rotate_and_zoom_redraw(loaded: tuple[Any, list[str], list[str]]) -> None:
    page, errors, _ = loaded
    before = canvas_pixels(page)
    page.locator("#viewer input.cut").fill("50")
    cut = canvas_pixels(page)
    assert np.abs(cut.astype(int) - before).sum(axis=2).astype(bool).mean() > 0.002
    box = page.locator("#viewer canvas").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y + 40, steps=5)
    page.mouse.up()
    turned = canvas_pixels(page)
    assert np.abs(turned.astype(int) - cut).sum(axis=2).astype(bool).mean() > 0.002
    page.locator("#viewer button.zoom-in").click()
    zoomed = canvas_pixels(page)
    assert (~np.all(zoomed == 255, axis=2)).mean() > (~np.all(turned == 255, axis=2)).mean()
    page.locator("#viewer button.reset").click()
    page.locator("#viewer input.cut").fill("0")
    assert errors == []


def test_both_release_curves_and_targets_are_drawn(
    loaded: tuple[Any, list[str], list[str]], two_drug_job: Path
) -> None:
    page, _, _ = loaded
    job = json.loads((two_drug_job / "job.json").read_text(encoding="utf-8"))
    for api in api_colours(JobManifest.from_json(job)):
        curve = page.locator(f'svg path.curve[data-api="{api}"]').first
        assert curve.is_visible()
        length = curve.evaluate("p => p.getTotalLength()")
        assert length > 100
        marks = page.locator(f'svg g.target[data-api="{api}"] circle')
        assert marks.count() >= 1 and marks.first.is_visible()
        assert page.locator(f'li.release[data-api="{api}"] .met').inner_text() == "met"


def test_prints_without_controls(loaded: tuple[Any, list[str], list[str]]) -> None:
    page, errors, _ = loaded
    page.emulate_media(media="print")
    try:
        assert not page.locator("#viewer .controls").is_visible()
        assert page.locator("#viewer canvas").is_visible()
        pdf = page.pdf(format="A4")
        assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
    finally:
        page.emulate_media(media="screen")
    assert errors == []


def test_missing_browser_skips_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOSEPRINT_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception):
        _unavailable("no browser")
    monkeypatch.setenv("DOSEPRINT_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="no browser"):
        _unavailable("no browser")
