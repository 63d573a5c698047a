"""Real browser: ResNet-1202's diagram is drawn rolled (a run of 199 identical units as one node
with its count); hovering it says what it stands for, clicking it inspects the run, finding a node
inside the run selects the run's node and a button unrolls the drawing, which the page address
then keeps. A screenshot at 1024x768 goes to test-results/roll_1024.png."""
from browser_util import (DIAGRAM, EXCEPTION, FRAME, ROOT, diagram_node, diagram_version, key_css, settle,
                          wait_diagram_change)

RESULTS = ROOT / "test-results"


def test_rolled_diagram_hover_click_find_unroll(new_page, app_url):
    RESULTS.mkdir(exist_ok=True)
    pg = new_page(1024, 768)
    pg.goto(app_url + "/?preset=resnet1202")
    pg.wait_for_selector(DIAGRAM, timeout=120_000)
    settle(pg)
    run = diagram_node(pg, "layer2.1-199")
    assert run.count() == 1 and "layer2.1 - layer2.199 x 199" in run.text_content()
    assert diagram_node(pg, "layer2.57").count() == 0
    assert pg.locator(f"{key_css('diagram_roll_toggle')} input").is_checked()

    run.scroll_into_view_if_needed()
    run.hover()
    tip = pg.locator(".dv-tip")
    tip.wait_for(state="visible")
    assert "199 identical units drawn once" in tip.inner_text() and "all 199: params" in tip.inner_text()

    run.click()
    settle(pg)
    assert pg.locator(FRAME).get_attribute("data-selected") == "layer2.1-199"
    inspector = pg.locator(key_css("diagram_inspector"))
    assert "parameters per unit" in inspector.inner_text()
    pg.screenshot(path=str(RESULTS / "roll_1024.png"))

    find = pg.locator(f"{key_css('diagram_find')} input")
    find.fill("layer2.57.conv1")
    find.press("Enter")
    settle(pg)
    assert pg.locator(FRAME).get_attribute("data-selected") == "layer2.1-199"
    before = diagram_version(pg)
    pg.locator(f"{key_css('diagram_unroll')} button").first.click()
    wait_diagram_change(pg, before, timeout=120_000)
    settle(pg)
    assert diagram_node(pg, "layer2.57").count() == 1
    assert pg.locator(FRAME).get_attribute("data-selected") == "layer2.57"
    assert not pg.locator(f"{key_css('diagram_roll_toggle')} input").is_checked()
    assert "roll=off" in pg.url
    assert pg.locator(EXCEPTION).count() == 0
