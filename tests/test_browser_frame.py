"""Real-browser checks of the Diagram view's frame, measured in pixels at 1024x768 and 1440x900:
every Learn *Show me* opens a drawn view at a legible size (the Diagram at the detail its text
speaks of), a found node, or one clicked at the window's foot, is brought into the window, the
frame is no taller than the window, a left-right drawing fills its frame, and a colour legend
stays in view when zoomed in.

Screenshots go to test-results/frame_<what>_<width>.png.
"""
import re

import pytest
from browser_util import (DIAGRAM, EXCEPTION, FRAME, IMG, ROOT, choose, diagram_node, key_css, open_tab, settle,
                          wait_diagram_change)

from explorer import lessons

RESULTS = ROOT / "test-results"

# The drawing as the window shows it: the stage's box, the drawing's box (nodes, arcs and clusters,
# clipped to the stage), how many nodes are in view, the smallest node text in CSS px, and the zoom the toolbar shows.
DRAWN_JS = """
() => {
  const stage = document.querySelector('.dv-stage'), svg = stage.querySelector('svg');
  const s = stage.getBoundingClientRect();
  const vb = svg.getAttribute('viewBox').split(/\\s+/).map(Number);
  const px = s.width / vb[2];  // CSS px per SVG unit (the viewBox has the stage's aspect ratio)
  let l = 1e9, t = 1e9, r = -1e9, b = -1e9, shown = 0, font = 1e9;
  for (const g of svg.querySelectorAll('g.node:not(.legend), g.edge, g.cluster')) {
    const n = g.getBoundingClientRect();
    const L = Math.max(n.left, s.left), T = Math.max(n.top, s.top);
    const R = Math.min(n.right, s.right), B = Math.min(n.bottom, s.bottom);
    if (R <= L || B <= T) continue;
    l = Math.min(l, L); t = Math.min(t, T); r = Math.max(r, R); b = Math.max(b, B);
    if (!g.classList.contains('node')) continue;
    shown += 1;
    for (const text of g.querySelectorAll('text'))
      font = Math.min(font, parseFloat(text.getAttribute('font-size')) * px);
  }
  const whole = svg.querySelector('g.graph').getBoundingClientRect();  // all of it, in view or not
  return {stage: {x: s.left, y: s.top, w: s.width, h: s.height}, drawn: {x: l, y: t, w: r - l, h: b - t},
          whole: {w: whole.width, h: whole.height},
          shown, font, zoom: document.querySelector('.dv-zoom').textContent,
          frame: document.querySelector('.dv').getBoundingClientRect().height, window: innerHeight};
}
"""


def drawn(pg) -> dict:
    pg.wait_for_selector(DIAGRAM)
    pg.wait_for_timeout(300)  # the frame's first layout
    return pg.evaluate(DRAWN_JS)


def expand(pg, question: str) -> None:
    """Open the Learn view's expander holding `question` (an open one stays open)."""
    details = pg.locator('[data-testid="stExpander"] details').filter(has_text=question).first
    if details.get_attribute("open") is None:
        details.locator("summary").click()
        pg.wait_for_timeout(300)


def assert_legible_and_fitted(d: dict, what: str) -> None:
    assert d["zoom"] not in ("", "0%"), (what, d)
    assert d["shown"] >= 2, (what, d)  # a drawing, not an empty frame
    assert d["font"] >= 8, (what, d)   # node text readable without zooming
    assert d["drawn"]["w"] >= 0.7 * d["stage"]["w"], (what, d)  # it fills the frame's width
    assert d["drawn"]["h"] >= 0.5 * d["stage"]["h"], (what, d)  # and is not lost in an empty frame


def test_every_show_me_opens_a_drawn_view_at_the_detail_its_text_speaks_of(new_page, app_url):
    pg = new_page(1024, 768)
    pg.goto(app_url + "/?preset=resnet20&view=Unit&node=layer1.0")  # a node selected before
    pg.wait_for_selector(IMG)
    settle(pg)
    choose(pg, "unit_pick", "layer3.2")  # a unit picked before: a lesson shows the one its text names
    settle(pg)
    assert any(lesson.look_at == "Diagram" for lesson in lessons.LESSONS)
    for lesson in lessons.LESSONS:
        open_tab(pg, "Learn")
        expand(pg, lesson.question)
        pg.locator(f"{key_css('learn_' + lesson.key)} button").click()
        settle(pg)
        assert pg.locator(EXCEPTION).count() == 0, lesson.key
        assert pg.get_by_role("tab", name=lesson.look_at).get_attribute("aria-selected") == "true", lesson.key
        if lesson.look_at == "Diagram":
            checked = pg.locator(f"{key_css('diagram_detail')} label").filter(
                has=pg.locator("input:checked")).inner_text().strip()
            assert checked == lesson.detail, (lesson.key, checked)
            assert pg.locator(FRAME).get_attribute("data-selected") == "", lesson.key  # its first view
            d = drawn(pg)
            pg.screenshot(path=str(RESULTS / f"frame_show_me_{lesson.key}_1024.png"))
            assert_legible_and_fitted(d, lesson.key)
        elif lesson.look_at == "Unit":
            pg.wait_for_selector(IMG)
            box = pg.locator(IMG).first.bounding_box()
            assert box["width"] > 200 and box["height"] > 200, (lesson.key, box)
            named = re.findall(r"layer\d\.\d+", lesson.answer)
            if named:  # the unit its text speaks of
                assert f"{named[0]}: " in pg.locator('[data-testid="stMain"]').inner_text(), lesson.key  # its caption


def test_weight_layer_lesson_opens_layer_detail():
    """The lesson about weight layers opens the layer-level diagram its text speaks of."""
    lesson = next(le for le in lessons.LESSONS if le.key == "weight_layer")
    assert (lesson.look_at, lesson.detail) == ("Diagram", "layers")


@pytest.mark.parametrize("width,height", [(1024, 768), (1440, 900)])
def test_a_found_node_is_brought_into_the_window_and_the_frame_fits_it(new_page, app_url, width, height):
    pg = new_page(width, height)
    pg.goto(app_url + "/?preset=resnet50")
    pg.wait_for_selector(DIAGRAM)
    settle(pg)
    d = drawn(pg)
    assert d["frame"] <= height, d  # the frame is sized to the window, not a fixed 720 px + toolbar
    find = pg.locator(f"{key_css('diagram_find')} input")
    find.fill("layer3.4")
    find.press("Enter")
    pg.wait_for_function("() => document.querySelector('.dv')?.dataset.selected === 'layer3.4'")
    settle(pg)
    sel = pg.locator(f"{DIAGRAM} g.dv-selected").bounding_box()
    stage = pg.locator(".dv-stage").bounding_box()
    pg.screenshot(path=str(RESULTS / f"frame_found_{width}.png"))
    middle = sel["y"] + sel["height"] / 2
    assert 0 <= sel["y"] and sel["y"] + sel["height"] <= height, (sel, height)  # whole, in the window
    assert stage["y"] <= middle <= stage["y"] + stage["height"], (sel, stage)
    assert stage["y"] >= 0 and stage["y"] + stage["height"] <= height, (stage, height)


def test_a_left_right_drawing_fills_its_frame(new_page, app_url):
    pg = new_page(1440, 900)
    pg.goto(app_url + "/?preset=resnet18")
    pg.wait_for_selector(DIAGRAM)
    settle(pg)
    before = pg.locator(FRAME).get_attribute("data-version")
    pg.locator(key_css("diagram_direction")).get_by_text("left-right").click()
    wait_diagram_change(pg, before)
    settle(pg)
    d = drawn(pg)
    pg.screenshot(path=str(RESULTS / "frame_left_right_1440.png"))
    assert d["zoom"] not in ("", "0%") and d["shown"] >= 2 and d["font"] >= 8, d
    assert d["drawn"]["w"] >= 0.9 * d["stage"]["w"], d  # from edge to edge
    assert d["stage"]["h"] <= d["whole"]["h"] + 12, d  # the frame as tall as the drawing: no empty band


def test_a_colour_legend_stays_in_view_when_zoomed_in(new_page, app_url):
    pg = new_page(1024, 768)
    pg.goto(app_url + "/?preset=resnet18&detail=layers")
    pg.wait_for_selector(DIAGRAM)
    settle(pg)
    before = pg.locator(FRAME).get_attribute("data-version")
    choose(pg, "diagram_color_by", "parameters")
    wait_diagram_change(pg, before)
    settle(pg)
    stage = pg.locator(".dv-stage")
    stage.scroll_into_view_if_needed()
    box = stage.bounding_box()
    pg.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 3)
    for _ in range(6):
        pg.mouse.wheel(0, -300)
        pg.wait_for_timeout(50)
    pg.wait_for_timeout(300)
    box = stage.bounding_box()
    pg.screenshot(path=str(RESULTS / "frame_legend_zoomed_1024.png"))
    # a legend shown (not hidden), whole inside the zoomed frame
    shown = pg.evaluate("""() => [...document.querySelectorAll('.dv g.node.legend')]
        .filter(g => getComputedStyle(g).visibility !== 'hidden')
        .map(g => { const r = g.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; })""")
    inside = [b for b in shown if b["w"] > 0 and box["x"] <= b["x"] and b["x"] + b["w"] <= box["x"] + box["width"] + 1
              and box["y"] <= b["y"] and b["y"] + b["h"] <= box["y"] + box["height"] + 1]
    assert inside, (shown, box)
    text = pg.locator(f"{FRAME} g.node.legend").filter(has_text="log scale")
    assert text.count() >= 1  # the scale is named
    fonts = pg.evaluate("""() => { const out = [];
        for (const g of document.querySelectorAll('.dv-legends g.node.legend')) {
          const svg = g.closest('svg'), k = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
          for (const t of g.querySelectorAll('text')) out.push(parseFloat(t.getAttribute('font-size')) * k);
        } return out; }""")
    assert fonts and min(fonts) >= 11, fonts


def test_a_node_clicked_at_the_windows_foot_is_brought_into_view(new_page, app_url):
    """A node of which only a sliver shows at the bottom of the window, clicked there, ends up whole
    in the window (the frame scrolled into view, the drawing panned as needed)."""
    pg = new_page(1024, 768)
    pg.goto(app_url + "/?preset=resnet18")
    pg.wait_for_selector(DIAGRAM)
    settle(pg)
    node = pg.evaluate("""() => { const H = innerHeight, s = document.querySelector('.dv-stage').getBoundingClientRect();
      for (const g of document.querySelectorAll('.dv-stage g.node')) {
        const r = g.getBoundingClientRect();
        if (r.top > H && r.bottom < s.bottom - 4 && r.height > 12) return {id: g.querySelector('title').textContent, top: r.top};
      } return null; }""")
    assert node, "a node below the window's foot, inside the frame"
    pg.evaluate("""n => { const by = n.top - (innerHeight - 8);  // its top 8 px in the window
      document.querySelector('[data-testid="stMain"]').scrollBy(0, by); window.scrollBy(0, by); }""", node)
    pg.wait_for_timeout(300)
    box = diagram_node(pg, node["id"]).bounding_box()
    assert box["y"] < 768 < box["y"] + box["height"], box  # cut by the window's foot
    pg.mouse.click(box["x"] + box["width"] / 2, 768 - 3)
    pg.wait_for_function("id => document.querySelector('.dv')?.dataset.selected === id", arg=node["id"])
    settle(pg)
    box = diagram_node(pg, node["id"]).bounding_box()
    stage = pg.locator(".dv-stage").bounding_box()
    assert 0 <= box["y"] and box["y"] + box["height"] <= 768, box
    assert stage["y"] <= box["y"] and box["y"] + box["height"] <= stage["y"] + stage["height"], (box, stage)
