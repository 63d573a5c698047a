"""Real-browser tests: `streamlit run app.py` driven by Playwright in headless Chromium.

The journey: open the app, choose a preset, change the skip span and see the diagram change, add
two configs to Compare, download an SVG and parse it. The inspection: hover, click, zoom, pan and
find nodes in the Diagram view. Saves its screenshots to test-results/screenshots/ (`make screenshots`
writes them to assets/, the README's, instead) and the measured update times to
test-results/browser_timings.json (reported, never asserted).
"""
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from browser_util import (DIAGRAM, FRAME, IMG, ROOT, choose, diagram_node, diagram_version, settle, title, view_box,
                          wait_diagram_change)

RESULTS = ROOT / "test-results"
# The test suite leaves tracked files alone: screenshots go to test-results/ unless asked for.
ASSETS = Path(os.environ.get("SCREENSHOT_DIR") or RESULTS / "screenshots")


def test_journey(new_page, app_url):
    timings = {}
    pg = new_page()
    ASSETS.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(exist_ok=True)

    pg.goto(app_url)
    pg.wait_for_selector(DIAGRAM)
    settle(pg)
    assert "resnet50" in title(pg)

    # A setting change on resnet50 redraws the diagram.
    before = diagram_version(pg)
    pg.locator(".st-key-cfg_shortcut input").click()
    pg.get_by_role("option", name="C", exact=True).click()
    timings["resnet50_setting_change_s"] = wait_diagram_change(pg, before)
    settle(pg)
    pg.screenshot(path=str(ASSETS / "diagram.png"))

    # Choose a preset, then change the skip span: the diagram changes each time.
    before = diagram_version(pg)
    choose(pg, "preset", "resnet18")
    wait_diagram_change(pg, before)
    settle(pg)
    assert "resnet18" in title(pg)
    before = diagram_version(pg)
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
    assert pg.locator(".st-key-compare_name_0 input").input_value() == "resnet18 (skip_span 1)"  # as changed
    assert pg.locator(".st-key-compare_name_1 input").input_value() == "resnet34"
    pg.screenshot(path=str(ASSETS / "compare.png"), full_page=True)

    # A large network at layer detail: resnet152.
    pg.get_by_role("tab", name="Diagram").click()
    pg.wait_for_selector(DIAGRAM)
    settle(pg)
    before = diagram_version(pg)
    choose(pg, "preset", "resnet152")
    wait_diagram_change(pg, before)
    settle(pg)
    before = diagram_version(pg)
    pg.locator(".st-key-diagram_detail").get_by_text("layers").click()
    timings["resnet152_layers_render_s"] = wait_diagram_change(pg, before, timeout=120_000)
    settle(pg)
    assert pg.locator(f"{DIAGRAM} g.node").count() > 500  # every conv, BN, ReLU and add
    zoom = int(pg.locator(".dv-zoom").inner_text().rstrip("%"))
    assert 50 <= zoom <= 100  # opens at a legible size, panned from its start

    (RESULTS / "browser_timings.json").write_text(json.dumps(timings, indent=2))
    print("browser timings:", timings)


def test_inspect_the_diagram(new_page, app_url):
    """Hover a node for its facts, click it to inspect it, zoom and pan, find a node by its path,
    reopen the selection from the page address, and open the selected unit in the Unit view."""
    pg = new_page()
    pg.goto(app_url + "/?preset=resnet18")
    pg.wait_for_selector(DIAGRAM)
    settle(pg)
    before = diagram_version(pg)
    pg.locator(".st-key-diagram_detail").get_by_text("layers").click()
    wait_diagram_change(pg, before)
    settle(pg)

    conv = diagram_node(pg, "layer1.0.conv1")
    conv.hover()
    tip = pg.locator(".dv-tip")
    assert tip.is_visible() and "params 36,864" in tip.inner_text()
    assert "layer1.0.conv1" in conv.locator("[data-tip]").get_attribute("data-tip")  # also kept in the SVG

    conv.click()
    settle(pg)
    panel = pg.locator(".st-key-diagram_inspector")
    assert "36,864" in panel.inner_text() and "layer1.0: shape check" in panel.inner_text()
    assert "node=layer1.0.conv1" in pg.url
    assert pg.locator(FRAME).get_attribute("data-selected") == "layer1.0.conv1"
    assert pg.locator(f"{DIAGRAM} g.dv-selected").count() == 1

    # Colour by parameters: the drawing changes, the selection stays.
    before = diagram_version(pg)
    choose(pg, "diagram_color_by", "parameters")
    wait_diagram_change(pg, before)
    settle(pg)
    assert pg.locator(f"{DIAGRAM} g.node.legend").count() == 1
    assert pg.locator(FRAME).get_attribute("data-selected") == "layer1.0.conv1"
    diagram_node(pg, "layer1.0.conv1").hover()
    pg.screenshot(path=str(ASSETS / "inspect.png"))

    # Zoom with the wheel and the buttons, pan by dragging: the viewBox follows, nothing reruns.
    box = view_box(pg)
    stage = pg.locator(".dv-stage").bounding_box()
    pg.mouse.move(stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2)
    pg.mouse.wheel(0, -400)
    pg.wait_for_function("b => document.querySelector('.dv-stage svg').getAttribute('viewBox') !== b",
                         arg=" ".join(map(str, box)))
    zoomed = view_box(pg)
    assert zoomed[2] < box[2] and zoomed[3] < box[3]  # zoomed in: a smaller window on the drawing
    pg.mouse.down()
    pg.mouse.move(stage["x"] + stage["width"] / 2 + 120, stage["y"] + stage["height"] / 2 + 60, steps=5)
    pg.mouse.up()
    pg.wait_for_timeout(100)
    panned = view_box(pg)
    assert panned[0] < zoomed[0] and panned[2] == pytest.approx(zoomed[2])
    pg.locator(".dv-fit").click()
    pg.wait_for_timeout(100)
    fitted = view_box(pg)
    assert fitted[3] > box[3]  # the whole (tall) drawing in view
    pg.locator(".dv-100").click()
    pg.wait_for_timeout(100)
    assert pg.locator(".dv-zoom").inner_text() == "100%"
    assert pg.locator(FRAME).get_attribute("data-selected") == "layer1.0.conv1"  # a drag is no click

    # Find a node by its path: selected, outlined and centred.
    find = pg.locator(".st-key-diagram_find input")
    find.fill("layer3.1")
    find.press("Enter")
    pg.wait_for_function("() => document.querySelector('.dv')?.dataset.selected === 'layer3.1'")
    settle(pg)
    assert "node=layer3.1" in pg.url and "layer3.1: shape check" in panel.inner_text()
    sel = pg.locator(f"{DIAGRAM} g.dv-selected").bounding_box()
    stage = pg.locator(".dv-stage").bounding_box()
    assert abs(sel["y"] + sel["height"] / 2 - (stage["y"] + stage["height"] / 2)) < stage["height"] / 4

    # A shared link reopens the same selection.
    pg.goto(pg.url)
    pg.wait_for_function("() => document.querySelector('.dv')?.dataset.selected === 'layer3.1'", timeout=120_000)
    settle(pg)
    assert "layer3.1: shape check" in pg.locator(".st-key-diagram_inspector").inner_text()

    # The selected unit in the Unit view.
    pg.locator(".st-key-inspect_open_unit button").click()
    pg.wait_for_selector(IMG)
    settle(pg)
    assert pg.get_by_role("tab", name="Unit").get_attribute("aria-selected") == "true"
    picked = pg.locator(".st-key-unit_pick").evaluate(
        "e => e.textContent + ' ' + [...e.querySelectorAll('input')].map(i => i.value).join(' ')")
    assert "layer3.1" in picked


def selected_tab(pg) -> str:
    return pg.locator('[role="tab"][aria-selected="true"]').first.inner_text().strip()


def test_back_undoes_a_change_and_a_link_reopens_the_view(new_page, app_url):
    pg = new_page()
    pg.goto(app_url + "/?preset=resnet18")
    pg.wait_for_selector(DIAGRAM)
    settle(pg)
    span = pg.locator(".st-key-cfg_skip_span")
    assert span.locator("input").input_value() == "2"  # the block's own length, as a number
    minus = span.locator('[data-testid="stNumberInputStepDown"]')
    assert minus.is_enabled()
    before = diagram_version(pg)
    minus.click()
    wait_diagram_change(pg, before)
    settle(pg)
    assert "skip_span=1" in pg.url and "resnet18 (modified: skip_span 1)" in title(pg)
    before = diagram_version(pg)
    pg.locator(".st-key-diagram_detail").get_by_text("layers").click()
    wait_diagram_change(pg, before)
    settle(pg)
    assert "detail=layers" in pg.url
    pg.get_by_role("tab", name="Summary").click()
    settle(pg)
    assert "view=Summary" in pg.url
    link = pg.url

    pg.go_back()  # the tab change undone
    settle(pg)
    assert selected_tab(pg) == "Diagram" and "view=" not in pg.url
    pg.go_back()  # the detail
    settle(pg)
    assert "detail=" not in pg.url
    pg.go_back()  # the skip span
    settle(pg)
    assert span.locator("input").input_value() == "2" and title(pg) == "resnet18"
    assert "skip_span=1" not in pg.url
    assert not pg.locator('[data-testid="stException"]').count()

    pg.goto(link)  # a shared link opens the view, the detail and the settings it was copied from
    settle(pg)
    assert selected_tab(pg) == "Summary"
    assert span.locator("input").input_value() == "1"
    pg.get_by_role("tab", name="Diagram").click()
    pg.wait_for_selector(DIAGRAM)
    settle(pg)
    assert pg.locator(".st-key-diagram_detail label:has(input:checked)").inner_text().strip() == "layers"
