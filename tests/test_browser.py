"""One real-browser journey: `streamlit run app.py` driven by Playwright in headless Chromium.

Open the app, choose a preset, change the skip span and see the diagram change, add two configs
to Compare, download an SVG and parse it. Saves the README screenshots to assets/ and the
measured update times to test-results/browser_timings.json (reported, never asserted).
"""
import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from browser_util import CHROMIUM_FLAGS, IMG, ROOT, choose, chromium_path, settle, streamlit_server, title
from playwright.sync_api import sync_playwright

ASSETS = ROOT / "assets"
RESULTS = ROOT / "test-results"


@pytest.fixture(scope="module")
def server():
    with streamlit_server() as (url, _):
        yield url


@pytest.fixture(scope="module")
def page(server):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        pg = browser.new_page(viewport={"width": 1500, "height": 1000}, accept_downloads=True)
        pg.set_default_timeout(60_000)
        yield pg
        browser.close()


def diagram_src(pg):
    return pg.locator(IMG).first.get_attribute("src")


def wait_diagram_change(pg, before, timeout=60_000):
    """Seconds until the diagram image differs from `before`."""
    t0 = time.perf_counter()
    pg.wait_for_function(
        "s => { const i = document.querySelector('.diagram img'); return i && i.getAttribute('src') !== s; }",
        arg=before, timeout=timeout)
    return time.perf_counter() - t0


def test_journey(page, server):
    timings = {}
    pg = page
    ASSETS.mkdir(exist_ok=True)
    RESULTS.mkdir(exist_ok=True)

    pg.goto(server)
    pg.wait_for_selector(IMG)
    settle(pg)
    assert "resnet50" in title(pg)

    # A setting change on resnet50 redraws the diagram.
    before = diagram_src(pg)
    pg.locator(".st-key-cfg_shortcut input").click()
    pg.get_by_role("option", name="C", exact=True).click()
    timings["resnet50_setting_change_s"] = wait_diagram_change(pg, before)
    settle(pg)
    pg.screenshot(path=str(ASSETS / "diagram.png"))

    # Choose a preset, then change the skip span: the diagram changes each time.
    before = diagram_src(pg)
    choose(pg, "preset", "resnet18")
    wait_diagram_change(pg, before)
    settle(pg)
    assert "resnet18" in title(pg)
    before = diagram_src(pg)
    span = pg.locator(".st-key-cfg_skip_span input")
    span.fill("1")
    span.press("Enter")
    timings["resnet18_skip_span_change_s"] = wait_diagram_change(pg, before)
    settle(pg)
    assert "skip_span=1" in pg.url  # the link holds the settings
    assert "skip span 1 ·" in pg.locator('[data-testid="stMain"]').inner_text()

    # Download the SVG and parse it.
    with pg.expect_download() as dl:
        pg.locator(".st-key-download_svg button").click()
    path = dl.value.path()
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    assert "resnet18" in Path(path).read_text()

    # Unit view: the paper-style figure of a real unit.
    pg.get_by_role("tab", name="Unit").click()
    pg.wait_for_selector(IMG)
    settle(pg)
    pg.screenshot(path=str(ASSETS / "unit.png"))

    # Compare: add two configs.
    pg.get_by_role("tab", name="Compare").click()
    pg.locator(".st-key-compare_add button").click()
    settle(pg)
    choose(pg, "preset", "resnet34")
    settle(pg)
    pg.locator(".st-key-compare_add button").click()
    settle(pg)
    pg.wait_for_selector(".st-key-compare_remove_1")
    assert pg.locator(".st-key-compare_name_0 input").input_value() == "resnet18"
    assert pg.locator(".st-key-compare_name_1 input").input_value() == "resnet34"
    pg.screenshot(path=str(ASSETS / "compare.png"), full_page=True)

    # A large network at layer detail: resnet152.
    pg.get_by_role("tab", name="Diagram").click()
    pg.wait_for_selector(IMG)
    settle(pg)
    before = diagram_src(pg)
    choose(pg, "preset", "resnet152")
    wait_diagram_change(pg, before)
    settle(pg)
    before = diagram_src(pg)
    pg.locator(".st-key-diagram_detail").get_by_text("layers").click()
    timings["resnet152_layers_render_s"] = wait_diagram_change(pg, before, timeout=120_000)
    settle(pg)
    box = pg.locator(IMG).first.bounding_box()
    assert box["height"] > 2000  # drawn at a legible size, inside a scrolling frame

    (RESULTS / "browser_timings.json").write_text(json.dumps(timings, indent=2))
    print("browser timings:", timings)
