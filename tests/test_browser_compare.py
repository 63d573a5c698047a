"""Real-browser check of the Compare view at 1024 px: two resnet50s that differ only in `stride_on`
show that setting as a column, draw their units at one scale, and Measure all times both at the
Latency tab's settings (the chart follows), then stops when cancelled.

Saves a screenshot of the view after Measure all to test-results/compare_measure_all_1024.png.
"""
import json

import pytest
from browser_util import EXCEPTION, IMG, MAIN, ROOT, choose, cut_text, key_css, open_tab, settle

RESULTS = ROOT / "test-results"
WIDTH = 1024


@pytest.fixture
def page(new_page, app_url):
    pg = new_page(WIDTH, 900)
    pg.goto(app_url + "/?preset=resnet50")
    settle(pg)
    return pg


def click(pg, key: str) -> None:
    pg.locator(f"{key_css(key)} button").first.click()


def test_compare_shows_what_differs_at_one_scale_and_measures_all(page):
    pg = page
    open_tab(pg, "Compare")
    click(pg, "compare_add")
    settle(pg)
    choose(pg, "cfg_stride_on", "first")
    settle(pg)
    click(pg, "compare_add")
    settle(pg)
    assert pg.locator(EXCEPTION).count() == 0

    # the setting that differs has its row (a row per setting, a column per config), named in the caption
    cells = [t.strip() for t in pg.locator('[data-testid="stDataFrame"] table td').all_inner_texts()]
    assert "stride_on" in cells, cells
    assert pg.get_by_text("Highlighted: settings that differ — stride_on").count() == 1

    # the two units at one scale: rendered width over natural width alike
    pg.wait_for_function(f"() => [...document.querySelectorAll('{IMG}')].slice(0, 2)"
                         ".every(i => i.complete && i.naturalWidth > 0)")
    sizes = pg.evaluate(f"() => [...document.querySelectorAll('{IMG}')].slice(0, 2)"
                        ".map(i => [i.getBoundingClientRect().width, i.naturalWidth])")
    scales = [shown / natural for shown, natural in sizes]
    assert scales[0] == pytest.approx(scales[1], rel=0.02), sizes

    # Measure all at batch 1 on one CPU thread: progress, then the latency chart
    choose(pg, "lat_threads", "1")
    settle(pg)
    click(pg, "compare_measure_all")
    pg.wait_for_selector(f"{key_css('compare_measure_cancel')} button")
    pg.wait_for_selector(key_css("compare_chart_latency"), timeout=120_000)
    settle(pg)
    assert pg.locator(EXCEPTION).count() == 0
    # resnet50 with the stride on the first conv is the paper's ResNet-50: added under that preset's name
    assert pg.get_by_text("Measured resnet50, resnet50_paper in").count() == 1
    assert pg.locator(f"{key_css('compare_measure_cancel')} button").count() == 0
    cut = cut_text(pg, MAIN)
    assert not cut, json.dumps(cut, indent=1, ensure_ascii=False)
    RESULTS.mkdir(exist_ok=True)
    pg.mouse.move(0, 0)  # no tooltip over the settings
    pg.set_viewport_size({"width": WIDTH, "height": 3000})  # the page scrolls inside: a tall window shows it
    pg.evaluate("() => document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; })")
    pg.wait_for_timeout(1000)
    pg.screenshot(path=str(RESULTS / f"compare_measure_all_{WIDTH}.png"))
    pg.set_viewport_size({"width": WIDTH, "height": 900})

    # at another batch both are timed again; Cancel stops the run and says where
    batch = pg.locator(f"{key_css('lat_batch')} input")
    batch.fill("2")
    batch.press("Enter")
    settle(pg)
    click(pg, "compare_measure_all")
    pg.wait_for_selector(f"{key_css('compare_measure_cancel')} button")
    pg.get_by_text("1 of 2: timing resnet50…").wait_for()
    click(pg, "compare_measure_cancel")
    settle(pg)
    assert pg.locator(EXCEPTION).count() == 0
    assert pg.get_by_text("Measure all stopped while timing resnet50 (1 of 2)").count() == 1
    assert pg.locator(key_css("compare_chart_latency")).count() == 1  # the batch-1 results stay
