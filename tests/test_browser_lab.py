"""Real-browser check of a cancelled Lab run: start a short run of the first experiment (three
epochs, one seed), press Cancel once an epoch has finished, and read what the page says: a message
naming the run cut short and the runs that did not start, and the results table with that run's
row ticked cancelled and its true wall time.

A screenshot of the view at 1024 px goes to test-results/lab_cancelled_1024.png.
"""
import re

import pytest
from browser_util import EXCEPTION, ROOT, key_css, open_tab, settle, start_lab_run

RESULTS = ROOT / "test-results"
PROGRESS = '[data-testid="stProgress"]'
MESSAGE = '[data-testid="stAlert"]:has-text("Cancelled after")'

TABLE = '[data-testid="stDataFrame"]'  # the first is the results table, one row per variant
TABLE_JS = """
grid => {
  const rows = [...grid.querySelectorAll('table tr')].map(
    r => Object.fromEntries([...r.children].map(c => [c.getAttribute('aria-colindex'), c.innerText.trim()])));
  const names = rows[0];
  return rows.slice(1).map(r => Object.fromEntries(Object.entries(r).map(([i, v]) => [names[i], v])));
}
"""


@pytest.fixture
def page(new_page, app_url):
    pg = new_page(1024, 900)
    pg.goto(app_url)
    settle(pg)
    return pg


def results_table(pg) -> list[dict]:
    """The rows of the results table, each as {column: text} ('true'/'false' for a tick box), read
    from the accessible copy of the cells that the grid keeps for the columns in view: once at
    its left edge and once scrolled to its right edge."""
    grid = pg.locator(TABLE).first
    grid.scroll_into_view_if_needed()
    rows: list[dict] = []
    for edge in ("0", "s.scrollWidth"):
        grid.evaluate(f"g => {{ const s = g.querySelector('.dvn-scroller'); if (s) s.scrollLeft = {edge}; }}")
        pg.wait_for_timeout(500)  # the grid redraws the columns now in view
        seen = grid.evaluate(TABLE_JS)
        rows = [{**old, **new} for old, new in zip(rows, seen)] if rows else seen
    return rows


def test_cancel_says_what_was_cut_short_and_keeps_its_numbers(page):
    pg = page
    open_tab(pg, "Lab")
    start_lab_run(pg, epochs=3)
    # the first epoch has finished: the bar reads "... plain20: epoch 1/3 · 2.10 s"
    pg.wait_for_function("sel => /epoch [1-3]\\/3/.test(document.querySelector(sel)?.innerText || '')",
                         arg=PROGRESS, timeout=120_000)
    pg.locator(f"{key_css('lab_cancel')} button").first.click()
    pg.wait_for_selector(MESSAGE, timeout=60_000)
    settle(pg)
    assert pg.locator(EXCEPTION).count() == 0
    message = pg.locator(MESSAGE).inner_text()
    assert re.search(r"Cancelled after [\d.]+ s: \S+ ran [\d.]+ s and stopped ", message), message
    assert "did not run." in message and "resnet56" in message  # the last run never started

    RESULTS.mkdir(exist_ok=True)
    pg.locator(MESSAGE).scroll_into_view_if_needed()
    pg.screenshot(path=str(RESULTS / "lab_cancelled_1024.png"))

    rows = results_table(pg)
    cut = [r for r in rows if r.get("cancelled") == "true"]
    assert len(cut) == 1, rows  # the one run cut short, and no other
    assert cut[0]["run"] in message.split(" ran ")[0]
    seconds = float(cut[0]["seconds"].removesuffix(" s").replace(",", ""))
    assert seconds > 0, cut[0]
    finished = [r for r in rows if r is not cut[0]]
    assert all(r["cancelled"] == "false" and r["epochs"] == "3" for r in finished), rows
    assert int(cut[0]["epochs"]) < 3
    assert len(rows) < 4  # the runs that did not start have no row
    pg.screenshot(path=str(RESULTS / "lab_cancelled_table_1024.png"))
