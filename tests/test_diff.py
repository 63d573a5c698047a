"""Diff two variants: changes read off the two traces, unit by unit, with parameter and MAC deltas;
the CLI's --diff, the highlighted diagrams and the Compare view's diff widgets."""
import itertools
import json
import re
import shutil
import xml.etree.ElementTree as ET

import pytest
from streamlit.testing.v1 import AppTest

import explorer
from explorer import ArchConfig, diff
from explorer.__main__ import main
from explorer.diagram import build_graph, to_bytes
from explorer.trace import trace
from test_app import APP, show, table_with
from variants import FIG4_UNITS

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")


def kinds(changes):
    return [c.kind for c in changes]


def small(**kw) -> ArchConfig:
    base = dict(name="small", stem="cifar", stem_width=8, widths=[8, 16], depths=[2, 2], input_size=16,
                num_classes=10, shortcut="B")
    return ArchConfig.from_dict({**base, **kw})


def sums(changes):
    return sum(c.params for c in changes), sum(c.macs for c in changes)


def test_identical_configs_with_different_names_have_no_diff():
    for name in ("resnet50", "resnet20", "preact_resnet110", "plain20"):
        cfg = explorer.preset(name)
        assert diff.diff_configs(cfg, cfg.replace(name="renamed")) == []
        assert diff.total(cfg, cfg.replace(name="renamed")) == {"params": 0, "macs": 0}
    # stride_on "first" and "3x3" are the same conv in a basic block: the same network
    r18 = explorer.preset("resnet18")
    assert diff.diff_configs(r18, r18.replace(stride_on="first")) == []


def test_skip_span_moves_unit_boundaries_per_stage():
    r34 = explorer.preset("resnet34")
    changes = diff.diff_configs(r34, r34.replace(skip_span=1))
    assert kinds(changes) == ["unit_boundaries"] * 4
    assert [c.unit for c in changes] == ["layer1", "layer2", "layer3", "layer4"]
    assert changes[0].change.startswith("units of 2 layers -> units of 1 layer (3 -> 6 units)")
    assert "(6 -> 12 units)" in changes[2].change
    # each stage's delta is that stage's difference in the two traces
    ta, tb = trace(r34), trace(r34.replace(skip_span=1))
    for c in changes:
        pa = sum(n.params for n in ta.nodes if n.stage == c.unit)
        pb = sum(n.params for n in tb.nodes if n.stage == c.unit)
        assert c.params == pb - pa
    # a bottleneck cut into single layers needs projections around the 1x1s: it costs
    r50 = explorer.preset("resnet50")
    b = r50.replace(skip_span=1)
    changes = diff.diff_configs(r50, b)
    assert kinds(changes) == ["unit_boundaries"] * 4
    assert "shortcuts 1 projection, 2 identity -> 5 projection, 4 identity" in changes[0].change
    assert sums(changes) == (trace(b).params - trace(r50).params, trace(b).macs - trace(r50).macs)


def test_shortcut_c_projects_every_identity_unit_with_the_traced_cost():
    r50 = explorer.preset("resnet50")
    c = r50.replace(shortcut="C")
    changes = diff.diff_configs(r50, c)
    ta, tc = trace(r50), trace(c)
    identity = [u.name for u in ta.units if u.shortcut == "identity"]
    assert [ch.unit for ch in changes] == identity
    assert set(kinds(changes)) == {"shortcut"}
    for ch in changes:
        assert ch.change == "identity -> 1x1 projection + BN"
        # the projection's conv and BN, counted from the trace's nodes
        proj = [n for n in tc.nodes if n.unit == ch.unit and n.role == "shortcut"]
        assert [n.kind for n in proj] == ["conv", "bn"]
        assert ch.params == sum(n.params for n in proj) == tc.unit(ch.unit).shortcut_params
        assert ch.macs == sum(n.macs for n in proj)
    first = changes[0]
    assert first.unit == "layer1.1" and first.params == 256 * 256 + 2 * 256
    assert "layer2.3: identity -> 1x1 projection + BN, +263,168 params" in changes[4].text()
    assert sums(changes) == (tc.params - ta.params, tc.macs - ta.macs)


def test_unit_a_to_e_moves_bn_and_relu_before_the_convs():
    a_bn, a_relu = FIG4_UNITS["a"]
    e_bn, e_relu = FIG4_UNITS["e"]
    r18 = explorer.preset("resnet18").replace(bn_position=a_bn, relu_position=a_relu)
    e = r18.replace(bn_position=e_bn, relu_position=e_relu)
    changes = diff.diff_configs(r18, e)
    by_unit = {}
    for c in changes:
        by_unit.setdefault(c.unit, []).append(c)
    # an identity unit: its last BN and the ReLU after the addition move before the first conv
    assert [(c.kind, c.change) for c in by_unit["layer1.1"]] == [
        ("bn_moved", "BN between conv2 and the addition -> before conv1"),
        ("relu_moved", "ReLU after the addition -> before conv1"),
    ]
    # the first unit reads the stem's BN-ReLU as its pre-activation: the ops go, nothing comes
    assert kinds(by_unit["layer1.0"]) == ["bn_removed", "relu_removed"]
    assert by_unit["layer1.0"][0].params == -2 * 64
    # a projection unit: the projection loses its BN, the moved BN normalises 64 -> 128 channels less
    assert [(c.kind, c.params) for c in by_unit["layer2.0"]] == [
        ("shortcut", -2 * 128), ("bn_moved", 2 * 64 - 2 * 128), ("relu_moved", 0)]
    # the head gains the final BN-ReLU before pooling
    assert [(c.kind, c.change, c.params) for c in by_unit["head"]] == [
        ("bn_added", "BN before avgpool added", 2 * 512), ("relu_added", "ReLU before avgpool added", 0)]
    ta, te = trace(r18), trace(e)
    assert sums(changes) == (te.params - ta.params, te.macs - ta.macs)


def test_relu_before_addition_and_bn_after_addition():
    r18 = explorer.preset("resnet18")
    c = diff.diff_configs(r18, r18.replace(relu_position="before_add"))
    assert set(kinds(c)) == {"relu_moved"} and len(c) == 8
    assert c[0].change == "ReLU after the addition -> between conv2 and the addition"
    b = diff.diff_configs(r18, r18.replace(bn_position="after_add"))
    assert set(kinds(b)) == {"bn_moved"} and b[0].change == "BN between conv2 and the addition -> after the addition"


def test_stride_moved_from_the_3x3_to_the_first_conv():
    r50 = explorer.preset("resnet50")
    first = r50.replace(stride_on="first")
    changes = diff.diff_configs(r50, first)
    assert [(c.unit, c.kind) for c in changes] == [(f"layer{i}.0", "stride_moved") for i in (2, 3, 4)]
    assert changes[0].change == "stride 2 on conv2 (3x3) -> on conv1 (1x1)"
    ta, tf = trace(r50), trace(first)
    for c in changes:
        assert c.params == 0
        assert c.macs == (sum(n.macs for n in tf.nodes if n.unit == c.unit)
                          - sum(n.macs for n in ta.nodes if n.unit == c.unit)) < 0


def test_units_added_plain_network_stem_head_and_layers():
    r18, r34 = explorer.preset("resnet18"), explorer.preset("resnet34")
    added = diff.diff_configs(r18, r34)
    assert set(kinds(added)) == {"unit_added"} and {c.side for c in added} == {"b"}
    assert [c.unit for c in added][:3] == ["layer1.2", "layer2.2", "layer2.3"]
    removed = diff.diff_configs(r34, r18)
    assert set(kinds(removed)) == {"unit_removed"} and sums(removed) == tuple(-x for x in sums(added))
    plain = diff.diff_configs(explorer.preset("resnet20"), explorer.preset("plain20"))
    assert set(kinds(plain)) == {"shortcut"}
    assert plain[0].change == "identity -> no shortcut (plain)"
    assert any(c.change == "zero-pad -> no shortcut (plain)" for c in plain)
    cifar = diff.diff_configs(small(), small(stem="imagenet", input_size=64, num_classes=7, widths=[8, 32]))
    assert cifar[0].unit == "stem" and cifar[0].kind == "stem"
    assert any(c.unit == "layer2.0" and c.kind == "layer_changed" and "3x3, 16, /2 -> 3x3, 32, /2" in c.change
               for c in cifar)
    assert cifar[-1].unit == "head" and "outputs 10 -> 7" in cifar[-1].change


@pytest.mark.parametrize("x,y", list(itertools.combinations(FIG4_UNITS, 2)))
def test_entries_add_up_to_the_network_difference(x, y):
    a = small(bn_position=FIG4_UNITS[x][0], relu_position=FIG4_UNITS[x][1])
    b = small(bn_position=FIG4_UNITS[y][0], relu_position=FIG4_UNITS[y][1], shortcut="C", depths=[2, 3])
    changes = diff.diff_configs(a, b)
    assert changes and set(kinds(changes)) <= set(diff.KINDS)
    assert sums(changes) == tuple(diff.total(a, b).values())
    assert diff.diff_configs(b, b.replace(name="again")) == []


def test_highlight_outlines_the_changed_nodes_and_adds_a_legend():
    r18 = explorer.preset("resnet18")
    b = r18.replace(shortcut="C", depths=[2, 3, 2, 2])
    changes = diff.diff_configs(r18, b)
    hb = diff.highlights(changes, b, "b")
    ha = diff.highlights(changes, trace(r18), "a")
    assert hb["layer1.0"] == "shortcut" and hb["layer1.0.add"] == "shortcut"
    assert hb["layer2.2"] == "unit_added" and "layer2.2" not in ha
    assert "layer2.0" not in hb and "stem" not in hb
    source = build_graph(b, "units", highlight=hb).source
    lines = {m.group(1): line for line in source.splitlines() if (m := re.match(r'\s*"([^"]+)" \[', line))}
    assert 'class="unit changed diff-shortcut"' in lines["layer1.1"]
    assert 'class="unit changed added diff-unit_added"' in lines["layer2.2"]
    assert "changed" not in lines["layer2.0"] and "changed" not in lines["stem"]
    assert 'penwidth="3.5"' in lines["layer1.1"] and 'penwidth="3.5"' not in lines["layer2.0"]
    assert "diff_legend" in lines and "only in this variant" in lines["diff_legend"]
    # without a highlight the drawing is as before
    assert build_graph(b, "units").source == build_graph(b, "units", highlight={}).source
    assert "changed" not in build_graph(b, "units").source


@needs_dot
def test_highlighted_svg_carries_the_class():
    r18 = explorer.preset("resnet18")
    b = r18.replace(relu_position="before_add")
    svg = to_bytes(build_graph(b, "units", highlight=diff.highlights(diff.diff_configs(r18, b), b, "b")),
                   "svg").decode()
    classes = [el.get("class") for el in ET.fromstring(svg).iter() if "changed" in (el.get("class") or "")]
    assert classes.count("node unit changed diff-relu_moved") == 8  # Graphviz writes "-" as &#45;


def test_cli_diff_json(capsys):
    assert main(["compare", "resnet50", "resnet50", "--diff", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["diff"] == []
    assert main(["compare", "resnet18", "resnet34", "--diff", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["rows"]) == 2 and len(doc["diff"]) == 8
    entry = doc["diff"][0]
    assert {"unit", "kind", "change", "params", "macs"} <= set(entry)
    assert entry["unit"] == "layer1.2" and entry["kind"] == "unit_added" and entry["params"] == 73_984
    assert doc["diff_total"]["params"] == sum(e["params"] for e in doc["diff"]) == 21_797_672 - 11_689_512


def test_cli_diff_text_and_bad_input(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(explorer.preset("resnet50").replace(name="resnet50_c", shortcut="C").to_json())
    assert main(["compare", "resnet50", str(path), "--diff"]) == 0
    out = capsys.readouterr().out
    assert "resnet50 -> resnet50_c: 12 changes" in out
    assert "  layer1.1: identity -> 1x1 projection + BN, +66,048 params" in out and "[shortcut]" in out
    assert re.search(r"total: \+14,571,520 params, \+[\d,]+ MACs", out)
    assert main(["compare", "resnet50", "resnet50", "--diff"]) == 0
    assert "no structural differences" in capsys.readouterr().out
    assert main(["compare", "resnet18", "--diff"]) == 2
    assert "--diff" in capsys.readouterr().err


def test_app_compare_diff_widgets():
    at = show(AppTest.from_file(APP, default_timeout=180).run(), "Compare")
    at.button(key="compare_add").click().run()
    assert not at.exception
    at.selectbox(key="cfg_shortcut").select("C").run()
    at.text_input(key="cfg_name").input("resnet50_c").run()
    at.button(key="compare_add").click().run()
    assert not at.exception
    assert at.selectbox(key="diff_a").value == "resnet50"
    assert at.selectbox(key="diff_b").value == "resnet50_c"
    table = table_with(at, "kind")
    assert list(table["kind"].unique()) == ["shortcut"] and table["unit"].iloc[0] == "layer1.1"
    assert any("total: +14,571,520 params" in c.value for c in at.caption)
    at.selectbox(key="diff_b").select("resnet50").run()
    assert not at.exception
    assert any("No structural differences" in s.value for s in at.success)


def test_groups_are_read_from_the_trace_not_from_a_label():
    import dataclasses

    a = trace(explorer.preset("resnext50_32x4d"))
    node = a.by_id["layer1.0.conv2"]
    assert node.groups == 32
    plain = dataclasses.replace(node, groups=1)  # same label: only the recorded fact differs
    b = dataclasses.replace(a, nodes=tuple(plain if n is node else n for n in a.nodes))
    changed = [c for c in diff.diff_traces(a, b) if c.unit == "layer1.0"]
    assert kinds(changed) == ["layer_changed"] and "conv2" in changed[0].change
    assert diff.diff_traces(a, a) == []


def test_a_change_reads_back_from_its_json():
    changes = diff.diff_configs(explorer.preset("resnet18"), explorer.preset("resnet34").replace(shortcut="C"))
    assert changes and {c.side for c in changes} <= {"a", "b", "both"}
    assert {c.kind for c in changes} <= set(diff.KINDS)
    for c in changes:
        d = json.loads(json.dumps(c.to_dict()))
        assert diff.Change.from_dict(d) == c and d["text"] == c.text()
