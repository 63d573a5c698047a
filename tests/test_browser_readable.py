"""Real-browser checks of what a user reads: at 1024 and 1440 px every value in the sidebar, the
header and the Diagram (with a node inspected), Unit, Summary, Latency, Compare (two configs), Lab (a
one-epoch, one-seed run: its results table and charts) and Learn views fits its box (no text cut short or ending in
"…"), the unit figures (the Unit view's, Compare's side by side) read at 11 px or more without a
scroll box of their own, and two download buttons clicked in quick succession each deliver their file.

Screenshots of each view at 1024 px go to test-results/readable_<view>_1024.png.
"""
import json
from pathlib import Path

import pytest
from browser_util import DIAGRAM, EXCEPTION, IMG, ROOT, cut_text, key_css, open_tab, settle, start_lab_run

RESULTS = ROOT / "test-results"
WIDTHS = (1024, 1440)
VIEWS = ("Diagram", "Unit", "Summary", "Latency", "Compare", "Lab", "Learn")


def prepare(pg, view: str) -> None:
    """Open `view` and bring it to the state a user reads (a measurement made, a table open)."""
    open_tab(pg, view)
    if view == "Diagram":
        pg.wait_for_selector(DIAGRAM)
        find = pg.locator(f"{key_css('diagram_find')} input")  # the inspector panel beside the drawing, filled
        find.fill("layer2.0.conv1")
        find.press("Enter")
        settle(pg)
        pg.wait_for_selector(f"{key_css('diagram_inspector')} [data-testid='stTable'], "
                             f"{key_css('diagram_inspector')} table")
    elif view == "Compare":
        for _ in range(2):  # two configs: the table, the charts and the diff
            pg.locator(f"{key_css('compare_add')} button").click()
            settle(pg)
    elif view == "Unit":
        pg.wait_for_selector(IMG)
    elif view == "Latency":
        pg.locator(f"{key_css('lat_run')} button").click()
        pg.wait_for_selector('[data-testid="stMetricValue"]', timeout=120_000)
        settle(pg)
        assert pg.locator('[data-testid="stMetricValue"]').count() == 4  # median, p10-p90, throughput, batch
    elif view == "Lab":  # the shortest run of the first experiment: one epoch, one seed
        start_lab_run(pg, epochs=1)
        pg.wait_for_selector(f"{key_css('lab_json')} button", timeout=180_000)
        settle(pg)
        assert pg.locator('[data-testid="stDataFrame"]').count() >= 1  # the results table
        assert pg.locator('[data-testid="stPlotlyChart"]').count() >= 2  # the curves
    elif view == "Learn":
        pg.get_by_text("Where does BatchNorm go", exact=False).first.click()
        pg.wait_for_selector('[data-testid="stTable"]')
        settle(pg)


@pytest.mark.parametrize("width", WIDTHS)
def test_every_value_fits_its_box(new_page, app_url, width):
    RESULTS.mkdir(exist_ok=True)
    pg = new_page(width, 900)
    # resnet50 with a changed skip span: the longest title, and the figures of a large network
    pg.goto(app_url + "/?preset=resnet50&skip_span=1")
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


def test_quick_clicks_on_download_buttons_each_deliver_their_file(new_page, app_url):
    """Config JSON, then 0.5 s later the PyTorch code (made on click), then the summary JSON: a rerun
    started by one click used to replace the file the next click asked for, which never came."""
    pg = new_page(1440, 900)
    pg.goto(app_url + "/?preset=resnet20")
    settle(pg)
    open_tab(pg, "Summary")
    pg.get_by_text("Import / export config").click()
    pg.wait_for_selector(f"{key_css('download_pytorch')} button")
    downloads = []
    pg.on("download", lambda d: downloads.append(d))
    pg.locator(f"{key_css('download_config')} button").first.click()
    pg.wait_for_timeout(500)  # the next click while the first one's file is on its way
    pg.locator(f"{key_css('download_pytorch')} button").first.click()
    pg.wait_for_timeout(500)
    with pg.expect_download(timeout=30_000):
        pg.locator(f"{key_css('download_summary')} button").first.click()
    pg.wait_for_function("n => true", arg=0)
    for _ in range(60):  # the code file is made on the server: up to 30 s
        if len(downloads) >= 3:
            break
        pg.wait_for_timeout(500)
    files = {d.suggested_filename: Path(d.path()).read_text() for d in downloads}
    assert sorted(files) == ["resnet20.json", "resnet20.py", "resnet20_summary.json"], sorted(files)
    assert json.loads(files["resnet20.json"])["name"] == "resnet20"
    assert json.loads(files["resnet20_summary.json"])["name"] == "resnet20"
    assert "def build_model" in files["resnet20.py"]
    for key in ("download_config", "download_pytorch", "download_summary"):  # none left greyed out
        assert pg.locator(f"{key_css(key)} button").first.is_enabled()


# Each static figure (Unit and Compare views) as the page shows it: its smallest text in CSS px (the
# SVG's font sizes, in points, at the scale the <img> is drawn), and the boxes between it and the
# page that cut it or scroll on their own ("x"/"y").
FIGURES_JS = """
() => [...document.querySelectorAll('.diagram img')].filter(img => img.offsetParent).map(img => {
  const doc = new DOMParser().parseFromString(atob(img.src.split(',')[1]), 'image/svg+xml');
  const sizes = [...doc.querySelectorAll('text')].map(t => parseFloat(t.getAttribute('font-size')));
  const r = img.getBoundingClientRect();
  const boxes = [];
  for (let a = img.parentElement; a && a.dataset.testid !== 'stMain'; a = a.parentElement) {
    const st = getComputedStyle(a);
    if (st.overflowY !== 'visible' && a.scrollHeight > a.clientHeight + 1) boxes.push('y');
    if (st.overflowX !== 'visible' && a.scrollWidth > a.clientWidth + 1) boxes.push('x');
  }
  return {font: Math.min(...sizes) * (4 / 3) * r.width / img.naturalWidth, boxes,
          width: r.width, natural: img.naturalWidth};
})
"""


@pytest.mark.parametrize("width,height", [(1024, 768), (1440, 900)])
def test_unit_figures_read_at_11px_without_a_scroll_box_of_their_own(new_page, app_url, width, height):
    """The Unit view's figure (and, at 1024 px, Compare's units side by side) at 11 px text or more,
    whole: no frame of its own that scrolls or cuts off its foot (the ReLU, y and the equation)."""
    RESULTS.mkdir(exist_ok=True)
    pg = new_page(width, height)
    pg.goto(app_url + "/?preset=resnet50&view=Unit")
    pg.wait_for_selector(IMG)
    settle(pg)
    figures = pg.evaluate(FIGURES_JS)
    pg.screenshot(path=str(RESULTS / f"readable_unit_figure_{width}.png"), full_page=True)
    assert len(figures) == 1, figures
    assert figures[0]["font"] >= 11 and not figures[0]["boxes"], figures
    if width != 1024:
        return
    pg.goto(app_url + "/?preset=ecaresnet50d&view=Unit")  # a wide figure (its gate's formula and labels)
    pg.wait_for_selector(IMG)
    settle(pg)
    figures = pg.evaluate(FIGURES_JS)
    assert len(figures) == 1 and figures[0]["font"] >= 11 and not figures[0]["boxes"], figures
    open_tab(pg, "Compare")
    for _ in range(3):  # three units side by side
        pg.locator(f"{key_css('compare_add')} button").click()
        settle(pg)
    pg.wait_for_selector(IMG)
    units = pg.evaluate(FIGURES_JS)[:3]  # the units side by side come before the diff's drawings
    pg.screenshot(path=str(RESULTS / f"readable_compare_units_{width}.png"), full_page=True)
    assert len(units) == 3 and all(f["font"] >= 11 and not f["boxes"] for f in units), units
    assert len({round(f["width"] / f["natural"], 3) for f in units}) == 1  # at one scale
