"""The Diagram view's inspector: a selection's facts from the trace, the drawn node that holds it,
the find box's paths, the selection in the page address (AppTest), and colour by a fact."""
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import explorer
from explorer import diagram
from explorer.app import inspector
from explorer.trace import trace

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def drawn_ids(cfg, detail, fold=False):
    """Node ids and cluster paths of a drawing, read from its DOT source."""
    src = diagram.build_graph(cfg, detail, fold=fold).source
    nodes = set(re.findall(r'^\s*"([^"]+)" \[', src, re.M)) - {"legend"}
    clusters = set(re.findall(r'^\s*subgraph "cluster_([^"]+)"', src, re.M))
    return nodes, clusters


def test_facts_of_a_conv_and_its_unit():
    tr = trace(explorer.preset("resnet18"))
    f = inspector.node_facts(tr, "layer1.0.conv1")
    assert f["what"] == "conv 3x3, 64" and f["params"] == 36_864 and f["macs"] == 115_605_504
    rows = {r["fact"]: r for r in f["rows"]}
    assert rows["shape"]["value"] == "64x56x56 -> 64x56x56"
    assert rows["parameters"]["value"] == "36,864" and rows["parameters"]["share"] == "0.32%"
    assert f["unit"]["name"] == "layer1.0" and f["unit"]["shortcut"] == "identity"
    assert f["unit"]["in_shape"] == [64, 56, 56]


def test_facts_of_a_unit_add_up_and_name_its_projection():
    tr = trace(explorer.preset("resnet18"))
    f = inspector.node_facts(tr, "layer2.0")
    ops = [o for o in tr.nodes if o.unit == "layer2.0"]
    assert f["params"] == sum(o.params for o in ops) == tr.module_params["layer2.0"]
    assert f["unit"]["shortcut"] == "projection" and f["unit"]["shortcut_params"] == 8_448
    stage = inspector.node_facts(tr, "layer3")
    assert stage["params"] == tr.module_params["layer3"] and stage["unit"] is None
    assert inspector.node_facts(tr, "stem")["params"] == tr.module_params["conv1"] + tr.module_params["bn1"]
    assert inspector.node_facts(tr, "layer9.0") is None


def test_measured_time_joins_the_facts():
    tr = trace(explorer.preset("resnet18"))
    times = {"layer1.0.conv1": 0.5, "fc": 1.5}
    rows = {r["fact"]: r for r in inspector.node_facts(tr, "layer1.0.conv1", times)["rows"]}
    assert rows["measured time"]["value"] == "500 µs" and rows["measured time"]["share"] == "25.00%"


@pytest.mark.parametrize("preset", ["resnet18", "preact_resnet110", "resnet20"])
@pytest.mark.parametrize("detail", diagram.DETAILS)
def test_every_drawn_node_has_facts_and_every_op_a_drawn_home(preset, detail):
    cfg = explorer.preset(preset)
    tr = trace(cfg)
    for fold in ((False, True) if detail == "layers" else (False,)):
        nodes, clusters = drawn_ids(cfg, detail, fold)
        for node in nodes:
            assert inspector.node_facts(tr, node) is not None, node
        for op in tr.nodes:
            assert diagram.node_id(tr, op.id, detail, fold) in nodes | clusters, (op.id, detail, fold)
        for path in [*(u.name for u in tr.units), *tr.stages]:
            assert diagram.node_id(tr, path, detail, fold) in nodes | clusters, (path, detail, fold)


def test_the_drawn_node_of_a_selection_at_each_detail():
    tr = trace(explorer.preset("resnet18"))
    assert [diagram.node_id(tr, "layer2.0.bn1", d) for d in diagram.DETAILS] == ["layer2", "layer2.0", "layer2.0.bn1"]
    assert diagram.node_id(tr, "layer2.0.bn1", "layers", fold=True) == "layer2.0.conv1"
    # the projection is the skip arc's label at unit detail: its unit's node holds it
    assert diagram.node_id(tr, "layer2.0.downsample.0", "units") == "layer2.0"
    assert diagram.node_id(tr, "conv1", "units") == "stem" and diagram.node_id(tr, "flatten", "layers") == "avgpool"
    assert diagram.node_id(tr, "layer2.0", "layers") == "layer2.0"  # its cluster
    assert diagram.node_id(tr, "stem", "layers") == "" and diagram.node_id(tr, "layer9", "units") == ""
    post = trace(explorer.preset("resnet20"))
    assert [o.id for o in inspector.ops_of(post, "layer1.0.post")] == ["layer1.0.relu2"]
    assert [o.id for o in inspector.ops_of(tr, "head")] == ["avgpool", "flatten", "fc"]
    assert inspector.ops_of(tr, "") == [] and "layer1.0.post" in inspector.known_paths(tr)


def test_find_box_paths():
    tr = trace(explorer.preset("resnet18"))
    assert inspector.resolve_path(tr, " layer3.1 ") == ("layer3.1", "")
    assert inspector.resolve_path(tr, "cluster_layer3.1") == ("layer3.1", "")
    assert inspector.resolve_path(tr, "") == (None, "")
    path, why = inspector.resolve_path(tr, "layer3.1.conv3")
    assert path is None and "not a module of resnet18" in why and "`layer3.1.conv1`" in why
    assert inspector.resolve_path(tr, "x" * 500)[0] is None


def test_selection_in_the_query():
    assert inspector.selection_from_query({"node": " layer3.4.conv2 ", "preset": "resnet50"}) == "layer3.4.conv2"
    assert inspector.selection_from_query({"preset": "resnet50"}) is None
    assert inspector.selection_from_query({"node": ""}) is None
    assert inspector.selection_query("layer1.0") == {"node": "layer1.0"}
    assert inspector.selection_query(None) == {}


def test_profile_times_of_the_same_architecture():
    cfg = explorer.preset("resnet18")

    class Profile:
        def times(self):
            return {"fc": 2.0}

    results = {("latency", cfg, "settings"): {"median_ms": 1.0},
               ("profile", cfg.replace(name="renamed"), "settings"): Profile()}
    assert inspector.profile_times(results, cfg) == {"fc": 2.0}
    assert inspector.profile_times({("profile", cfg, "s"): {"profile": [{"module": "fc", "ms": 3.0}]}},
                                   cfg) == {"fc": 3.0}
    assert inspector.profile_times(results, explorer.preset("resnet34")) is None


# -- in the app ----------------------------------------------------------------------------------
def app(query):
    at = AppTest.from_file(APP, default_timeout=180)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def panel(at):
    return "\n".join(m.value for m in at.markdown)


def param(at, key):
    value = at.query_params[key]
    return value[0] if isinstance(value, list) else value


def test_a_link_reopens_the_selection_and_the_find_box_moves_it():
    at = app({"preset": "resnet18", "node": "layer1.0.conv1"})
    assert not at.exception and not at.session_state["url_error"]
    assert "| parameters | 36,864 (0.32%) |" in panel(at)
    assert "**Unit `layer1.0`: shape check**" in panel(at)
    # the shortcut named as the diagram's tooltip names it
    tr = trace(explorer.preset("resnet18"))
    tooltip = diagram.overlay.shortcut_tooltip(tr, tr.unit("layer1.0")).splitlines()
    assert tooltip[1] == "identity (x added unchanged)" and f"| shortcut | {tooltip[1]} |" in panel(at)
    assert param(at, "node") == "layer1.0.conv1" and param(at, "name") == "resnet18"
    at.text_input(key="diagram_find").input("layer3.1").run()
    assert not at.exception and at.session_state["diagram_node"] == "layer3.1"
    assert param(at, "node") == "layer3.1"
    at.text_input(key="diagram_find").input("layer3.9").run()
    assert at.session_state["diagram_node"] == "layer3.1"  # unchanged, and said why
    assert any("not a module of resnet18" in w.value for w in at.warning)
    at.button(key="inspect_clear").click().run()
    assert at.session_state["diagram_node"] is None and "node" not in at.query_params


def test_open_the_selected_unit_in_the_unit_view():
    at = app({"preset": "resnet18", "node": "layer2.0.downsample.0"})
    assert "1x1 projection" in panel(at)
    at.button(key="inspect_open_unit").click().run()
    assert not at.exception
    assert at.session_state["view"] == "Unit" and at.selectbox(key="unit_pick").value == "layer2.0"


def test_colour_by_a_fact_and_time_needs_a_profile():
    at = app({"preset": "resnet20"})
    for choice in ("params", "macs", "memory"):
        at.selectbox(key="diagram_color_by").set_value(choice).run()
        assert not at.exception and not at.info
    at.selectbox(key="diagram_color_by").set_value("time").run()
    assert not at.exception
    assert any("Profile the layers in the Latency tab first" in i.value for i in at.info)


def test_downloads_carry_the_overlay():
    from explorer.app.cache import diagram_bytes

    cfg = explorer.preset("resnet20")
    dot = diagram_bytes(cfg, "units", "TB", True, False, "dot", color_by="params").decode()
    assert '"legend"' in dot and "colour: parameters per node" in dot
    timed = diagram_bytes(cfg, "units", "TB", True, False, "dot", color_by="time",
                          times=(("layer1.0.conv1", 1.0), ("fc", 2.0))).decode()
    assert "colour: measured time per node" in timed
