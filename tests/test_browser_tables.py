"""Real-browser check that every table fits its frame at 1024x768 and 1440x900: the Unit view's
shape check, Compare's table and its diff, the Summary's torchinfo table, the Lab's results, the
Diagram's inspector and History's list of kept runs (screenshots history_1024.png and
history_1440.png in test-results/screenshots/). Each table's scroll width is measured against its
visible width (a table that needs a horizontal scroll bar hides columns a reader came for), and
its right edge against the main area's. Also: a clicked tab keeps no focus outline.
"""
import os
from pathlib import Path

import pytest
from browser_util import EXCEPTION, MAIN, ROOT, choose, key_css, open_tab, settle, start_lab_run

SIZES = [(1024, 768), (1440, 900)]
SHOTS = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / "test-results" / "screenshots")

# Each table under `scope`: Streamlit's data grid scrolls in its .dvn-scroller, an HTML table in
# its wrapper. Cell text cut with an ellipsis is allowed; columns out of sight are not.
WIDTHS_JS = """
scope => {
  const main = document.querySelector('[data-testid="stMain"] [data-testid="stMainBlockContainer"]')
               || document.querySelector('[data-testid="stMain"]');
  const limit = main.getBoundingClientRect().right;
  const grids = [...document.querySelectorAll(scope + ' [data-testid="stDataFrame"]')].map(g => [g, g.querySelector('.dvn-scroller')]);
  const tables = [...document.querySelectorAll(scope + ' [data-testid="stTable"], ' + scope + ' [data-testid="stMarkdownContainer"] table')]
                 .map(t => [t, t.tagName === 'TABLE' ? t.parentElement : (t.querySelector('table')?.parentElement || t)]);
  return [...grids, ...tables].filter(([el, s]) => s && el.offsetParent !== null).map(([el, s]) => ({
    what: [...el.querySelectorAll('[role="columnheader"], th')].map(h => h.innerText.trim()).join('|'),
    scroll: s.scrollWidth, visible: s.clientWidth,
    right: Math.round(el.getBoundingClientRect().right), limit: Math.round(limit),
  }));
}
"""


def assert_tables_fit(pg, scope: str, least: int = 1) -> list[dict]:
    tables = pg.evaluate(WIDTHS_JS, scope)
    assert len(tables) >= least, (scope, tables)
    for t in tables:
        assert t["scroll"] <= t["visible"] + 1, f"{scope}: {t['what']} scrolls sideways: {t}"
        assert t["right"] <= t["limit"] + 1, f"{scope}: {t['what']} reaches past the main area: {t}"
    return tables


@pytest.fixture(params=SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def page(request, new_page, app_url):
    width, height = request.param
    pg = new_page(width, height)
    pg.app_url = app_url
    return pg


def visit(pg, query: str, view: str | None = None) -> None:
    pg.goto(pg.app_url + "/?" + query)
    settle(pg)
    if view:
        open_tab(pg, view)
    assert pg.locator(EXCEPTION).count() == 0


def test_unit_view_shape_check_fits(page):
    visit(page, "preset=resnet50", "Unit")
    page.locator(f'{MAIN} [data-testid="stDataFrame"]').first.scroll_into_view_if_needed()
    page.wait_for_selector(f'{MAIN} [data-testid="stDataFrame"] [role="columnheader"]', state="attached")
    tables = assert_tables_fit(page, MAIN)
    assert any(t["what"].startswith("unit|x|F(x)") for t in tables), tables


def test_summary_torchinfo_table_fits(page):
    visit(page, "preset=resnet50", "Summary")
    page.get_by_text("Per-layer table (torchinfo)").click()
    settle(page)
    tables = assert_tables_fit(page, MAIN, least=3)
    assert any("output shape" in t["what"] for t in tables), tables


def test_compare_table_and_diff_fit(page):
    pg = page
    visit(pg, "preset=resnet50", "Compare")
    pg.locator(f"{key_css('compare_add')} button").first.click()
    settle(pg)
    choose(pg, "cfg_bn_position", "before_conv")  # a variant with a diff to read
    settle(pg)
    pg.locator(f"{key_css('compare_add')} button").first.click()
    settle(pg)
    assert pg.locator(EXCEPTION).count() == 0
    tables = assert_tables_fit(pg, MAIN, least=2)
    headers = [t["what"] for t in tables]
    assert any(h.startswith("setting|") for h in headers) and any("change" in h for h in headers), headers


def test_inspector_table_fits_its_panel_with_a_short_header(page):
    pg = page
    visit(pg, "preset=resnet50&node=layer3.0.downsample.0")
    panel = key_css("diagram_inspector")
    pg.wait_for_selector(f"{panel} table")
    settle(pg)  # the diagram beside it has its layout: the panel has its final width
    assert_tables_fit(pg, panel)
    box = pg.evaluate("""sel => { const p = document.querySelector(sel);
        return {scroll: p.scrollWidth, visible: p.clientWidth,
                right: Math.max(...[...p.querySelectorAll('table')].map(t => t.getBoundingClientRect().right)),
                edge: p.getBoundingClientRect().right,
                lines: Math.max(...[...p.querySelectorAll('th')].map(h => { const c = getComputedStyle(h);
                    return (h.clientHeight - parseFloat(c.paddingTop) - parseFloat(c.paddingBottom))
                           / (parseFloat(c.lineHeight) || 1.6 * parseFloat(c.fontSize)); }))}; }""", panel)
    assert box["scroll"] <= box["visible"] + 1 and box["right"] <= box["edge"] + 1, box
    assert box["lines"] < 2.5, f"a header wraps onto more than two lines: {box}"


def test_lab_results_fit(page):
    pg = page
    visit(pg, "preset=resnet50", "Lab")
    start_lab_run(pg, epochs=1)
    pg.wait_for_selector(f'{MAIN} [data-testid="stDataFrame"]', timeout=300_000)
    settle(pg)
    tables = assert_tables_fit(pg, MAIN)
    assert any("run" in t["what"] for t in tables), tables


def test_a_clicked_tab_keeps_no_outline(page):
    visit(page, "preset=resnet20")
    page.locator('[data-testid="stTab"]', has_text="Summary").first.click()
    settle(page)
    style = page.evaluate("""() => { const t = document.activeElement, c = getComputedStyle(t);
        return {tab: t.getAttribute('data-testid'), outline: c.outlineStyle, width: c.outlineWidth, shadow: c.boxShadow}; }""")
    assert style["tab"] == "stTab", style  # the clicked tab has the focus...
    assert (style["outline"] == "none" or style["width"] == "0px") and style["shadow"] in ("none", ""), style


def test_history_table_fits(page, tmp_path):
    """Runs as a GPU machine keeps them (long device names, every kind), imported into History."""
    import explorer
    from explorer.runs import make_record

    cfg = explorer.preset("resnext50_32x4d").replace(skip_span=1)  # a long display name
    gpu = "CUDA: NVIDIA H100 80GB HBM3, 79.1 GiB"
    records = [
        make_record("latency", cfg, {"batch": 256, "dtype": "bfloat16"}, gpu, {"median_ms": 123.456, "batch": 256}),
        make_record("sweep", cfg, {}, gpu, {"points": [{"batch": 512, "throughput": 12345.6}]}),
        make_record("profile", cfg, {}, "CPU (Intel Xeon Platinum 8480+, 112 threads)", {"total_ms": 4567.8}),
        make_record("lab", cfg, {}, gpu, {"history": [{"seed": 12, "epoch": 160, "val_acc": 0.9312}]}),
    ]
    path = tmp_path / "runs.jsonl"
    path.write_text("".join(r.to_json() + "\n" for r in records))
    visit(page, "preset=resnet20", "History")
    page.locator(f'{key_css("hist_import")} input[type="file"]').set_input_files(str(path))
    page.wait_for_selector(f'{MAIN} [data-testid="stAlertContentSuccess"]', timeout=60_000)
    settle(page)
    page.wait_for_selector(f'{key_css("hist_table")} [role="columnheader"]', state="attached")  # listed at once
    cells = page.locator(f'{key_css("hist_table")} table[role="grid"]').first.text_content()
    for text in ("resnext50_32x4d (skip_span 1)", "123 ms median, batch 256", "best 12,346 img/s at batch 512",
                 "4.57 s in all", "val acc 93.1 % after 160 epochs", "CPU (Intel Xeon Platinum 8480+, 112 threads)"):
        assert text in cells, text
    settle(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"history_{page.viewport_size['width']}.png"), full_page=True)
    tables = assert_tables_fit(page, MAIN)
    assert any(t["what"].startswith("when (UTC)|kind|network") for t in tables), tables
