"""Facts on every node (Graphviz tooltips, kept in the SVG) and colour overlays with a legend."""
import html
import re
import shutil

import pytest

import explorer
from explorer import ConfigError, diagram
from explorer.__main__ import main
from explorer.trace import trace

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
_NODE = re.compile(r'<g id="node\d+" class="node ([^"]*)">\s*<title>([^<]*)</title>\s*'
                   r'(?:<g id="a_node\d+"><a xlink:title="([^"]*)">)?')
_EDGE = re.compile(r'<g id="edge\d+" class="edge ([^"]*)">\s*<title>[^<]*</title>\s*'
                   r'(?:<g id="a_edge\d+"><a xlink:title="([^"]*)">)?')


def svg_nodes(cfg, detail, **kw):
    svg = diagram.to_bytes(diagram.build_graph(cfg, detail, **kw), "svg").decode()
    return {html.unescape(m[2]): (m[1], html.unescape(m[3] or "")) for m in _NODE.finditer(svg)}, svg


@needs_dot
def test_every_weight_layer_of_resnet50_has_its_exact_parameter_count():
    cfg = explorer.preset("resnet50")
    nodes, _ = svg_nodes(cfg, "layers")
    assert "params 4,096 " in nodes["layer1.0.conv1"][1]
    weight_layers = [n for n in trace(cfg).nodes if n.kind in ("conv", "fc")]
    assert len(weight_layers) == 53 + 1  # 49 convs + stem + 4 projections, and the fc
    for n in weight_layers:
        cls, tip = nodes[n.id]
        lines = tip.split("\n")
        assert lines[0] == n.id and lines[1] == n.label
        assert f"params {n.params:,} " in tip and f"MACs {n.macs:,} " in tip, n.id
        assert "->" in lines[2] and "activations" in tip


@needs_dot
@pytest.mark.parametrize("detail", diagram.DETAILS)
def test_every_node_and_shortcut_arc_carries_facts(detail):
    cfg = explorer.preset("resnet18")
    nodes, svg = svg_nodes(cfg, detail)
    assert nodes and all(tip for _, tip in nodes.values())
    skips = [(cls, html.unescape(tip or "")) for cls, tip in _EDGE.findall(svg) if cls.startswith("skip")]
    assert skips or detail == "stages"  # a stage node holds its units' shortcuts
    assert all("shortcut" in tip and "params" in tip for _, tip in skips)
    projections = [tip for cls, tip in skips if "projection" in cls]
    if detail == "units":  # resnet18: three 1x1 projections with their BN, 8,448 / 33,280 / 132,096 params
        assert sorted(int(re.search(r"params ([\d,]+)", t)[1].replace(",", "")) for t in projections) == \
            [8448, 33280, 132096]
    shares = [float(m) for m in re.findall(r"params [\d,]+ \(([\d.]+)% of the network\)",
                                           "\n".join(t for _, t in nodes.values()))]
    if detail == "stages":  # stem, four stages and head hold every parameter once
        assert sum(shares) == pytest.approx(100, abs=0.05)


@needs_dot
@pytest.mark.parametrize("color_by", ["params", "macs", "memory"])
def test_overlay_grades_fills_and_draws_a_legend(color_by):
    cfg = explorer.preset("resnet34")
    source = diagram.build_graph(cfg, "units", color_by=color_by).source
    fills = set(re.findall(r'fillcolor="(#[0-9a-f]{6})"', source))
    scale = set(diagram.overlay.SCALE)
    assert len(fills & scale) >= 3  # a graded fill, not one colour
    legend = re.search(r'"legend" \[.*tooltip="([^"]*)"', source)
    assert legend and "min" in legend[1] and "max" in legend[1]
    if color_by == "memory":  # the stem's maps are the largest: the max is not a unit's
        return
    top = max(diagram.overlay.node_value([n for n in trace(cfg).nodes if n.unit == u.name and n.role == "branch"],
                                         color_by) for u in trace(cfg).units)
    assert diagram.overlay.fmt_value(color_by, top) in legend[1]  # the largest unit branch sets the max
    svg = diagram.to_bytes(diagram.build_graph(cfg, "units", color_by=color_by), "svg").decode()
    assert "legend" in svg and diagram.overlay.SCALE[-1] in svg


def test_colour_by_time_needs_times_and_bad_choices_are_named():
    cfg = explorer.preset("resnet20")
    with pytest.raises(ConfigError) as err:
        diagram.build_graph(cfg, color_by="time")
    assert err.value.key == "color_by"
    with pytest.raises(ConfigError):
        diagram.build_graph(cfg, color_by="flops")
    times = {n.id: 1.0 for n in trace(cfg).nodes if n.kind == "conv"}
    source = diagram.build_graph(cfg, "layers", color_by="time", times=times).source
    assert "measured time" in source and "time 1.00 ms" in source  # the shared engineering format


@needs_dot
def test_cli_colour_by_writes_a_coloured_svg(tmp_path, capsys):
    out = tmp_path / "r18.svg"
    assert main(["graph", "resnet18", "--detail", "layers", "--color-by", "macs", "-o", str(out)]) == 0
    svg = html.unescape(out.read_text())
    assert "multiply-adds" in svg and diagram.overlay.SCALE[-1] in svg and "xlink:title" in svg


@needs_dot
def test_cli_colour_by_time_profiles_the_model_first(tmp_path, capsys):
    out = tmp_path / "r20.svg"
    assert main(["graph", "resnet20", "--detail", "layers", "--color-by", "time", "--device", "cpu",
                 "-o", str(out)]) == 0
    svg = html.unescape(out.read_text())
    assert "measured time per node" in svg and "profiled on" in capsys.readouterr().err
    tips = dict((m[2], html.unescape(m[3] or "")) for m in _NODE.finditer(out.read_text()))
    assert "time " in tips["layer1.0.conv1"]  # each node's measured time is in its facts


def _fills(source: str) -> dict[str, str]:
    return dict(re.findall(r'^\s*"([^"]+)" \[[^\n]*?fillcolor="(#[0-9a-f]{6})"', source, re.M))


def test_colour_by_parameters_separates_a_projection_from_its_bn_and_from_nothing():
    """A log scale: a 131,072-parameter 1x1 projection, its 512-parameter BN, a 0-parameter ReLU and
    the 2.36 M-parameter 3x3 convs of layer4 each take a colour of their own, in that order."""
    cfg = explorer.preset("resnet50")
    source = diagram.build_graph(cfg, "layers", color_by="params").source
    fills = _fills(source)
    relu = next(n.id for n in trace(cfg).nodes if n.kind == "relu" and n.unit == "layer2.0")
    order = [fills[relu], fills["layer2.0.downsample.1"], fills["layer2.0.downsample.0"], fills["layer4.0.conv2"]]
    steps = [diagram.overlay.SCALE.index(f) for f in order]
    assert steps == sorted(steps) and len(set(steps)) == 4, steps
    assert steps[0] == 0  # nothing at all keeps the lightest colour
    legend = re.search(r'"legend" \[.*tooltip="([^"]*)".*label=(.*)\]', source)
    assert "log scale" in legend[1] and "log scale" in legend[2]  # the scale is named where it is drawn


def test_colour_scale_steps_are_equal_ratios_from_the_smallest_to_the_largest_value():
    scale = diagram.overlay.colour_scale([0, 10, 100, 1e6, 1e8])
    assert (scale.lo, scale.hi) == (10, 1e8)
    assert scale.step(0) == 0 and scale.step(10) == 1 and scale.step(1e8) == len(diagram.overlay.SCALE) - 1
    assert scale.ratio == pytest.approx(10 ** (7 / 8))
    steps = [scale.step(10 * scale.ratio ** k * 1.01) for k in range(8)]  # one step per ratio
    assert steps == list(range(1, 9))
    assert diagram.overlay.colour_scale([5, 5]).step(5) == len(diagram.overlay.SCALE) - 1  # one value: the darkest
    assert diagram.overlay.colour_scale([]).step(3) == 0
