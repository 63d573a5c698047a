"""Real-browser checks of what a user reads: at 1024 and 1440 px every value in the sidebar, the
header and the Unit, Summary, Latency and Learn views fits its box (no text cut short or ending in
"…"), and two download buttons clicked in quick succession each deliver their file.

Screenshots of each view at 1024 px go to test-results/readable_<view>_1024.png.
"""
import json
from pathlib import Path

import pytest
from browser_util import (CHROMIUM_FLAGS, EXCEPTION, IMG, ROOT, chromium_path, cut_text, key_css, open_tab, settle,
                          streamlit_server)
from playwright.sync_api import sync_playwright

RESULTS = ROOT / "test-results"
WIDTHS = (1024, 1440)
VIEWS = ("Unit", "Summary", "Latency", "Learn")


@pytest.fixture(scope="module")
def server():
    with streamlit_server() as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield b
        b.close()


def new_page(browser, width: int):
    pg = browser.new_page(viewport={"width": width, "height": 900}, accept_downloads=True)
    pg.set_default_timeout(60_000)
    return pg


def prepare(pg, view: str) -> None:
    """Open `view` and bring it to the state a user reads (a measurement made, a table open)."""
    open_tab(pg, view)
    if view == "Unit":
        pg.wait_for_selector(IMG)
    elif view == "Latency":
        pg.locator(f"{key_css('lat_run')} button").click()
        pg.wait_for_selector('[data-testid="stMetricValue"]', timeout=120_000)
        settle(pg)
        assert pg.locator('[data-testid="stMetricValue"]').count() == 4  # median, p10-p90, throughput, batch
    elif view == "Learn":
        pg.get_by_text("Where does BatchNorm go", exact=False).first.click()
        pg.wait_for_selector('[data-testid="stTable"]')
        settle(pg)


@pytest.mark.parametrize("width", WIDTHS)
def test_every_value_fits_its_box(browser, server, width):
    RESULTS.mkdir(exist_ok=True)
    pg = new_page(browser, width)
    try:
        # resnet50 with a changed skip span: the longest title, and the figures of a large network
        pg.goto(server + "/?preset=resnet50&skip_span=1")
        settle(pg)
        problems = {}
        for view in VIEWS:
            prepare(pg, view)
            assert pg.locator(EXCEPTION).count() == 0, view
            if width == 1024:
                pg.screenshot(path=str(RESULTS / f"readable_{view.lower()}_{width}.png"))
            cut = cut_text(pg)
            if cut:
                problems[view] = cut
        assert not problems, json.dumps(problems, indent=1, ensure_ascii=False)
    finally:
        pg.close()


def test_two_quick_downloads_each_deliver_their_file(browser, server):
    pg = new_page(browser, 1440)
    try:
        pg.goto(server + "/?preset=resnet20")
        settle(pg)
        open_tab(pg, "Summary")
        pg.get_by_text("Import / export config").click()
        pg.wait_for_selector(f"{key_css('download_config')} button")
        downloads = []
        pg.on("download", lambda d: downloads.append(d))
        pg.locator(f"{key_css('download_config')} button").click()
        pg.wait_for_timeout(500)  # the second click while the first one's file is on its way
        with pg.expect_download(timeout=30_000) as second:
            pg.locator(f"{key_css('download_summary')} button").click()
        pg.wait_for_function("() => true")  # let the first download's event be delivered
        names = sorted(d.suggested_filename for d in downloads)
        assert names == ["resnet20.json", "resnet20_summary.json"], names
        config = json.loads(Path(next(d for d in downloads if d.suggested_filename == "resnet20.json").path()).read_text())
        assert config["name"] == "resnet20"
        assert json.loads(Path(second.value.path()).read_text())["name"] == "resnet20"
        for key in ("download_config", "download_summary"):  # neither left greyed out
            assert pg.locator(f"{key_css(key)} button").is_enabled()
    finally:
        pg.close()
