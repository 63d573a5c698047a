"""Real browser: while a big layout runs (ResNet-1202 unrolled at layer detail, thousands of
nodes) the Diagram tab says so, and a newer setting supersedes the layout instead of queueing
behind it: the newer drawing is shown while the old layout would still be running, and the old
layout was abandoned, not finished (asking for it again lays it out again)."""
from browser_util import DIAGRAM, EXCEPTION, IDLE, diagram_node, key_css, settle

NOTE = "text=Graphviz is laying out"


def pick_detail(pg, detail: str) -> None:
    pg.locator(key_css("diagram_detail")).get_by_text(detail, exact=True).click()


def test_newer_setting_supersedes_a_big_layout(new_page, app_url):
    pg = new_page(1500, 1000)
    pg.goto(app_url + "/?preset=resnet1202&detail=layers&roll=off")
    note = pg.locator(NOTE)
    note.wait_for(state="visible", timeout=90_000)
    assert "nodes" in note.inner_text()
    assert pg.locator(IDLE).count() == 0  # the layout is still running

    pick_detail(pg, "stages")  # a newer setting while the big layout runs
    pg.wait_for_selector(DIAGRAM, timeout=45_000)
    settle(pg, timeout_ms=45_000)
    assert diagram_node(pg, "layer3").count() == 1
    assert diagram_node(pg, "layer3.57.conv1").count() == 0
    assert note.count() == 0

    # The abandoned layout was not kept: layer detail is laid out again, and says so.
    pick_detail(pg, "layers")
    note.wait_for(state="visible", timeout=45_000)
    pick_detail(pg, "stages")
    pg.wait_for_function("() => !document.body.innerText.includes('Graphviz is laying out')", timeout=45_000)
    settle(pg, timeout_ms=45_000)
    assert diagram_node(pg, "layer3").count() == 1
    assert pg.locator(EXCEPTION).count() == 0
