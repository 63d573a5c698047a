"""Rolled drawings: runs of identical consecutive units drawn once with their count, at unit and
layer detail; on by default for the deepest networks, off for every other preset; hover, click,
Find, colour overlays, the diff's highlights, the CLI and the Diagram tab keep working."""
import re
from collections import defaultdict

import pytest

from explorer import PRESETS, preset
from explorer.app.inspector import node_facts, ops_of, resolve_path, roll_from_query, roll_query, rolled_into
from explorer.diagram import build_graph, drawn_ids, node_id, to_bytes
from explorer.diagram.roll import ROLL_ABOVE, Run, find_runs, rolls, run_id, unit_signature
from explorer.diff import diff_configs, highlights
from explorer.trace import trace
from test_graph import _check_wiring, _classes, parse_dot


@pytest.fixture(scope="module")
def r1202():
    return trace(preset("resnet1202"))


def _acyclic(nodes, edges) -> bool:
    out = defaultdict(list)
    for src, dst, _ in edges:
        out[src].append(dst)
    state: dict[str, int] = {}

    def visit(n):
        stack = [(n, iter(out[n]))]
        state[n] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return False
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(out[nxt])))
        return True

    return all(visit(n) for n in nodes if n not in state)


def test_runs_of_the_deepest_networks(r1202):
    runs = find_runs(r1202)
    assert [(r.id, r.count) for r in runs] == [("layer1.0-199", 200), ("layer2.1-199", 199), ("layer3.1-199", 199)]
    assert runs[1].label == "layer2.1 - layer2.199 x 199" and runs[1].units[56] == "layer2.57"
    preact = find_runs(trace(preset("preact_resnet1001")))
    # the first unit of a pre-activation network reads the stem's BN-ReLU: it differs from the rest
    assert [(r.id, r.count) for r in preact] == [("layer1.1-110", 110), ("layer2.1-110", 110), ("layer3.1-110", 110)]


def test_units_that_differ_do_not_roll_together(r1202):
    units = {u.name: u for u in r1202.units}
    ops = defaultdict(list)
    for op in r1202.nodes:
        ops[op.unit].append(op)
    sig = {n: unit_signature(units[n], ops[n]) for n in ("layer2.0", "layer2.1", "layer2.57", "layer3.1")}
    assert sig["layer2.1"] == sig["layer2.57"]
    assert sig["layer2.0"] != sig["layer2.1"]  # the stride and the zero-padded shortcut
    assert sig["layer3.1"] != sig["layer2.1"]  # other widths and another stage
    assert run_id("layer2.1", "layer2.199") == "layer2.1-199" and run_id("a.1", "b.2") == "a.1-b.2"


def test_run_round_trips():
    run = Run("layer2.1-3", "layer2", ("layer2.1", "layer2.2", "layer2.3"))
    assert Run.from_dict(run.to_dict()) == run and run.count == 3


def test_only_the_deepest_presets_roll_by_default():
    rolled = {name for name, cfg in PRESETS.items() if rolls(trace(cfg), None)}
    assert rolled == {"resnet1202", "preact_resnet1001"}
    assert len(trace(preset("resnet110_skip1")).units) <= ROLL_ABOVE < 333


@pytest.mark.parametrize("name", ["resnet152", "resnet110", "resnet164", "preact_resnet164", "resnet110_skip1"])
def test_smaller_presets_draw_as_before(name):
    for detail in ("units", "layers"):
        assert build_graph(preset(name), detail).source == build_graph(preset(name), detail, roll=False).source
        assert "rolled" not in build_graph(preset(name), detail).source


def test_rolled_units_drawing(r1202):
    nodes, edges = parse_dot(build_graph(r1202, "units").source)
    _check_wiring(nodes, edges)
    assert _acyclic(nodes, edges)
    run = nodes["layer2.1-199"]
    assert run["label"].startswith("layer2.1 - layer2.199 x 199") and {"unit", "rolled"} <= _classes(run)
    assert run["peripheries"] == "2"
    assert "layer2.57" not in nodes and "layer2.2" not in nodes and "layer2.0" in nodes
    assert len([n for n, a in nodes.items() if "add" in _classes(a)]) == 5  # 600 units, drawn in 5
    assert ("layer2.0.post", "layer2.1-199") in {(s, d) for s, d, _ in edges}
    assert ("layer2.1-199.post", "layer3.0") in {(s, d) for s, d, _ in edges}
    skips = [(s, d) for s, d, a in edges if "skip" in _classes(a)]
    assert ("layer2.0.post", "layer2.1-199.add") in skips and ("layer2.1-199.post", "layer2.1-199.add") not in skips
    assert set(drawn_ids(r1202, "units", roll=None).values()) - {""} <= set(nodes)
    assert "roll_legend" in nodes


def test_rolled_layers_drawing(r1202):
    g = build_graph(r1202, "layers")
    nodes, edges = parse_dot(g.source)
    _check_wiring(nodes, edges)
    assert _acyclic(nodes, edges)
    assert "layer2.1-199.conv1" in nodes and "layer2.57.conv1" not in nodes and "layer2.0.conv1" in nodes
    assert re.search(r'subgraph "cluster_layer2\.1-199" \{\n\s*graph \[label="layer2\.1 - layer2\.199 x 199', g.source)
    assert set(drawn_ids(r1202, "layers", roll=True).values()) == set(nodes) - {"roll_legend"}
    folded, _ = parse_dot(build_graph(r1202, "layers", fold=True).source)
    assert folded["layer2.1-199.conv1"]["label"] == "conv 3x3, 32 +BN +ReLU"


def test_unrolled_on_request(r1202):
    nodes, _ = parse_dot(build_graph(r1202, "units", roll=False).source)
    assert len([n for n, a in nodes.items() if "add" in _classes(a)]) == 600 and "layer2.57" in nodes
    small, edges = parse_dot(build_graph(preset("resnet50"), "units", roll=True).source)
    assert small["layer3.1-5"]["label"].startswith("layer3.1 - layer3.5 x 5\\n1x1,256")
    assert _acyclic(small, edges) and "layer3.3" not in small


def test_rolled_tooltip_says_what_the_node_stands_for(r1202):
    nodes, edges = parse_dot(build_graph(r1202, "units").source)
    tip = nodes["layer2.1-199"]["tooltip"].split("\\n")
    per_unit = sum(o.params for o in ops_of(r1202, "layer2.57") if o.role == "branch")
    assert tip[1] == "layer2.1 - layer2.199 x 199: 199 identical units drawn once"
    assert any(line.startswith(f"each unit: params {per_unit:,}") for line in tip)
    assert any(line.startswith(f"all 199: params {199 * per_unit:,}") for line in tip)
    assert any(line.startswith("all 199: MACs") for line in tip)
    skip = next(a for s, d, a in edges if d == "layer2.1-199.add" and "skip" in _classes(a))
    assert skip["tooltip"].startswith("layer2.1 - layer2.199 x 199, each:")


def test_colour_by_colours_a_run_by_one_unit(r1202):
    rolled, _ = parse_dot(build_graph(r1202, "units", color_by="params").source)
    whole, _ = parse_dot(build_graph(r1202, "units", color_by="params", roll=False).source)
    assert rolled["layer2.1-199"]["fillcolor"] == whole["layer2.57"]["fillcolor"]
    assert rolled["layer3.1-199"]["fillcolor"] == whole["layer3.1"]["fillcolor"]
    assert rolled["layer2.1-199"]["fillcolor"] != rolled["layer1.0-199"]["fillcolor"]
    assert "per unit" in rolled["roll_legend"]["label"] and "legend" in rolled


def test_find_and_click_inside_a_run(r1202):
    assert node_id(r1202, "layer2.57.conv1", "layers", roll=None) == "layer2.1-199.conv1"
    assert node_id(r1202, "layer2.57", "units", roll=None) == "layer2.1-199"
    assert node_id(r1202, "layer2.57", "layers", roll=None) == "layer2.1-199"  # its cluster
    assert node_id(r1202, "layer2.57.conv1", "layers", roll=False) == "layer2.57.conv1"
    assert node_id(r1202, "layer2.1-199.conv1", "layers", roll=False) == "layer2.1.conv1"  # a run, unrolled
    assert node_id(r1202, "layer2.0.conv1", "layers", roll=None) == "layer2.0.conv1"
    assert rolled_into(r1202, "layer2.57.conv1", "layer2.1-199.conv1") == "layer2.1 - layer2.199 x 199"
    assert rolled_into(r1202, "layer2.1-199", "layer2.1-199") is None  # the run itself is selected
    assert rolled_into(r1202, "layer2.0", "layer2.0") is None


def test_inspector_shows_the_run(r1202):
    assert resolve_path(r1202, "layer2.1-199.conv1") == ("layer2.1-199.conv1", "")
    assert len(ops_of(r1202, "layer2.1-199.conv1")) == 199
    facts = node_facts(r1202, "layer2.1-199")
    rows = {r["fact"]: r["value"] for r in facts["rows"]}
    per_unit = sum(o.params for o in ops_of(r1202, "layer2.57"))
    assert rows["units"].startswith("layer2.1 - layer2.199 x 199")
    assert rows["parameters per unit"] == f"{per_unit:,}" and rows["parameters (all 199)"] == f"{199 * per_unit:,}"
    assert facts["run"]["count"] == 199 and facts["unit"]["name"] == "layer2.1"
    assert node_facts(r1202, "layer2.57")["run"] is None


def test_roll_in_the_page_address():
    assert roll_query(None) == {} and roll_query(True) == {"roll": "on"} and roll_query(False) == {"roll": "off"}
    for value in (None, True, False):
        assert roll_from_query(roll_query(value)) is value
    assert roll_from_query({"roll": "sideways"}) is None


def test_diff_highlights_land_on_rolled_nodes():
    a = preset("resnet1202")
    b = a.replace(relu_position="before_add")
    marks = highlights(diff_configs(a, b), a, "a")
    assert "layer2.57" in marks  # the diff names every unit
    nodes, _ = parse_dot(build_graph(a, "units", highlight=marks).source)
    assert "changed" in _classes(nodes["layer2.1-199"]) and "rolled" in _classes(nodes["layer2.1-199"])
    assert "changed" in _classes(nodes["layer2.0"])
    assert "diff_legend" in nodes


def test_downloads_draw_the_rolled_drawing(r1202):
    svg = to_bytes(build_graph(r1202, "units"), "svg").decode()
    assert "layer2.1 &#45; layer2.199 x 199" in svg or "layer2.1 - layer2.199 x 199" in svg
    assert "<title>layer2.57</title>" not in svg


def test_cli_roll_flags(tmp_path):
    from explorer.__main__ import main

    for flag, want in (("--roll", True), ("--no-roll", False), (None, False)):
        out = tmp_path / "g.dot"
        args = ["graph", "resnet50", "--detail", "units", "-o", str(out)] + ([flag] if flag else [])
        assert main(args) == 0
        assert ('"layer3.1-5"' in out.read_text()) is want, flag


def test_diagram_tab_toggle_find_and_unroll():
    from test_app import address_of, fresh

    at = fresh({"preset": "resnet1202"})
    assert not at.exception and at.toggle(key="diagram_roll_toggle").value is True
    assert "roll" not in address_of(at)  # the default rule is no choice
    at.text_input(key="diagram_find").set_value("layer2.57.conv1").run()
    assert at.session_state["diagram_node"] == "layer2.57.conv1"
    at.button(key="diagram_unroll").click().run()
    assert not at.exception and at.toggle(key="diagram_roll_toggle").value is False
    assert address_of(at)["roll"] == "off"
    small = fresh({"preset": "resnet18", "roll": "on"})
    assert small.toggle(key="diagram_roll_toggle").value is True
    small.toggle(key="diagram_roll_toggle").set_value(False).run()
    assert address_of(small)["roll"] == "off" and not small.exception


_SMALL = dict(name="small", stem="cifar", stem_width=8, depths=[4, 3], widths=[8, 16], input_size=32,
              num_classes=10)


@pytest.mark.parametrize("changes", [
    dict(shortcut="C"), dict(block="bottleneck", shortcut="B"), dict(skip_span=1, shortcut="B"),
    dict(skip_span=0), dict(bn_position="before_conv", relu_position="before_conv", shortcut="B"),
    dict(block="bottleneck", shortcut="C"), dict(skip_span=3, shortcut="B"),
], ids=str)
def test_variants_roll_wired_and_acyclic(changes):
    cfg = preset("resnet20").replace(**_SMALL, **changes)
    tr = trace(cfg)
    assert find_runs(tr), changes  # four and three units a stage: something repeats
    for detail in ("units", "layers"):
        for fold in ((False, True) if detail == "layers" else (False,)):
            nodes, edges = parse_dot(build_graph(cfg, detail, fold=fold, roll=True).source)
            _check_wiring(nodes, edges)
            assert _acyclic(nodes, edges), (detail, fold)
            assert set(drawn_ids(tr, detail, fold, roll=True).values()) - {""} == set(nodes) - {"roll_legend"}
            reached = {d for _, d, _ in edges} | {s for s, _, _ in edges}
            assert set(nodes) - reached <= {"roll_legend"}, detail  # every drawn node is wired in


def test_colour_by_time_takes_a_units_mean():
    cfg = preset("resnet50")
    tr = trace(cfg)
    # measured: each conv of layer3.1 takes 1 ms, of layer3.2 ... layer3.5 3 ms
    times = {o.id: (1.0 if o.unit == "layer3.1" else 3.0) for o in tr.nodes if o.kind == "conv"}
    nodes, _ = parse_dot(build_graph(cfg, "units", color_by="time", times=times, roll=True).source)
    tip = nodes["layer3.1-5"]["tooltip"].split("\\n")
    assert "all 5: time 39.0 ms" in tip  # 3 convs x (1 + 4 x 3) ms
    assert "each unit (mean): time 7.80 ms" in tip and not any(t.startswith("each unit: time") for t in tip)
