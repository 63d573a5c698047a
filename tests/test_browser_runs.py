"""Real-browser checks of kept runs: a latency measured in the Latency view is there again after
a reload (a new session), marked as kept, and is listed in the History view with its headline
figure, under the network's display name, and choosing it shows the whole run; a changed preset's files carry that name.

Screenshots go to test-results/screenshots/ (SCREENSHOT_DIR to move them): runs_latency_kept.png,
runs_history.png and runs_history_chosen.png.
"""
import json
import os
from pathlib import Path

from browser_util import EXCEPTION, MAIN, ROOT, choose, key_css, open_tab, settle

ASSETS = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / "test-results" / "screenshots")
NETWORK = "resnet20 (skip_span 1)"  # resnet20 changed: named by its changes wherever it goes
LINK = "?preset=resnet20&skip_span=1&view=Latency"
METRIC = '[data-testid="stMetricValue"]'


def one_cpu_thread(pg) -> None:
    """The Latency view's settings: the CPU (the only device here), one torch thread."""
    pg.wait_for_selector(f"{key_css('lat_threads')} input")
    choose(pg, "lat_threads", "1")
    settle(pg)


def test_a_measured_latency_survives_a_reload_and_is_listed_in_history(new_page, app_url):
    ASSETS.mkdir(parents=True, exist_ok=True)
    pg = new_page(1440, 1000)
    pg.goto(app_url + LINK)
    settle(pg)
    one_cpu_thread(pg)
    pg.locator(f"{key_css('lat_run')} button").click()
    pg.wait_for_selector(METRIC, timeout=180_000)
    settle(pg)
    median = pg.locator(METRIC).first.inner_text().strip()
    main = pg.locator(MAIN).inner_text()
    assert "1 thread" in main and "Kept from an earlier session" not in main  # this session's own
    with pg.expect_download() as dl:
        pg.locator(f"{key_css('lat_download_latency')} button").click()
    assert dl.value.suggested_filename == "resnet20_skip_span-1_latency.json"
    measured = json.loads(Path(dl.value.path()).read_text())
    assert measured["median_ms"] > 0 and measured["config"]["skip_span"] == 1

    # A reload is a new session: at the same settings the view reads the run back from the store.
    pg.reload()
    settle(pg)
    one_cpu_thread(pg)
    pg.wait_for_selector(METRIC, timeout=60_000)
    main = pg.locator(MAIN).inner_text()
    assert "Kept from an earlier session: measured" in main and "on host" in main
    assert pg.locator(METRIC).first.inner_text().strip() == median
    assert pg.locator(EXCEPTION).count() == 0
    pg.screenshot(path=str(ASSETS / "runs_latency_kept.png"), full_page=True)

    # History lists it: kind, the network's display name, the device and the headline figure.
    open_tab(pg, "History")
    # The table is drawn on a canvas; its cells are also written to an off-screen table for screen readers.
    grid = pg.locator(f'{key_css("hist_table")} table[role="grid"]').first
    grid.wait_for(state="attached", timeout=60_000)
    rows = grid.text_content()
    assert NETWORK in rows and "latency" in rows and "1 thread" in rows
    assert f"{measured['median_ms']:.3g} ms median, batch 1" in rows  # the headline figure
    pg.screenshot(path=str(ASSETS / "runs_history.png"), full_page=True)

    # Choosing the row (its selection box, first column of the first row under the header) shows the whole run.
    box = pg.locator(f'{key_css("hist_table")} [data-testid="stDataFrameResizable"]').bounding_box()
    pg.mouse.click(box["x"] + 15, box["y"] + 35 + 17)
    settle(pg)
    main = pg.locator(MAIN).inner_text()
    assert f"latency of {NETWORK} on CPU" in main and "median_ms" in main
    assert pg.locator(f"{key_css('hist_download_one')} button").count() == 1
    assert pg.locator(EXCEPTION).count() == 0
    pg.screenshot(path=str(ASSETS / "runs_history_chosen.png"), full_page=True)


def test_a_changed_preset_s_config_downloads_under_its_changes(new_page, app_url):
    pg = new_page(1440, 1000)
    pg.goto(app_url + "?preset=resnet20&skip_span=1")
    settle(pg)
    assert pg.locator(f"{MAIN} h3").first.inner_text().strip() == "resnet20 (modified: skip_span 1)"
    pg.get_by_text("Import / export config").click()
    with pg.expect_download() as dl:
        pg.locator(f"{key_css('download_config')} button").click()
    assert dl.value.suggested_filename == "resnet20_skip_span-1.json"
    doc = json.loads(Path(dl.value.path()).read_text())
    assert doc["name"] == NETWORK and doc["skip_span"] == 1
