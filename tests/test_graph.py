"""Diagrams: the graph is the built module (counts tie it to the module and its shape checks),
every variant draws, exports open in other tools, user text cannot break the DOT."""
from __future__ import annotations

import itertools
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET

import pytest
import torch
from torch import nn

from explorer import PRESETS, ConfigError, build_model, preset
from explorer.__main__ import main
from explorer.facts.summary import measure_summary
from explorer.arch.builder import ResidualUnit
from explorer.diagram import (
    DETAILS, PNG_DPI, PNG_MAX_PX, GraphvizMissing, build_graph, build_unit_figure, drawn_ids, equation,
    ops_drawn_in, png_scale, png_size, segment_ids, to_bytes, unit_names,
)
from explorer.trace import trace, trace_module
from variants import FIG4_UNITS

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz `dot` is not installed")

_ID = r'"(?:[^"\\]|\\.)*"|[^\s\[\]"]+'
_STMT = re.compile(rf"^\s*(?P<src>{_ID})(?:\s*->\s*(?P<dst>{_ID}))?\s*\[(?P<attrs>.*)\]\s*$")
_ATTR = re.compile(r'([\w]+)=("(?:[^"\\]|\\.)*"|[^\s"]+)')


def _unquote(text: str) -> str:
    if text.startswith('"') and text.endswith('"'):
        return re.sub(r'\\(["\\])', r"\1", text[1:-1])
    return text


def parse_dot(source: str) -> tuple[dict[str, dict], list[tuple[str, str, dict]]]:
    """Node and edge statements of a DOT source written one statement a line."""
    nodes: dict[str, dict] = {}
    edges: list[tuple[str, str, dict]] = []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.split(" ")[0] in ("graph", "node", "edge", "subgraph", "digraph"):
            continue
        m = _STMT.match(line)
        if not m:
            continue
        attrs = {k: _unquote(v) for k, v in _ATTR.findall(m["attrs"])}
        if m["dst"] is None:
            nodes[_unquote(m["src"])] = attrs
        else:
            edges.append((_unquote(m["src"]), _unquote(m["dst"]), attrs))
    return nodes, edges


def _classes(attrs: dict) -> set[str]:
    return set(attrs.get("class", "").split())


def _meta_model(cfg):
    with torch.device("meta"):
        return build_model(cfg)


def _module_counts(model) -> dict:
    units = [m for m in model.modules() if isinstance(m, ResidualUnit)]
    return {
        "convs": [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Conv1d))],  # ECA: a 1-D conv
        "units": len(units),
        "residual": sum(1 for u in units if u.residual),
        "projections": sum(1 for u in units if u.residual and u.shortcut_kind == "projection"),
        "zero_pad": sum(1 for u in units if u.residual and u.shortcut_kind == "zero_pad"),
        "identity": sum(1 for u in units if u.residual and u.shortcut_kind == "identity"),
    }


def _check_wiring(nodes, edges) -> None:
    for src, dst, _ in edges:
        assert src in nodes and dst in nodes, (src, dst)


def _check_units_level(nodes, edges, counts) -> None:
    adds = [n for n, a in nodes.items() if "add" in _classes(a)]
    assert len(adds) == counts["residual"]
    units = [n for n, a in nodes.items() if "unit" in _classes(a)]
    assert len(units) == counts["units"]
    for kind in ("projection", "zero_pad", "identity"):
        skips = [e for e in edges if _classes(e[2]) == {"skip", kind}]
        assert len(skips) == counts[kind if kind != "projection" else "projections"], kind
        assert all(dst in adds for _, dst, _ in skips)


def _check_folded(nodes, edges, folded) -> None:
    """Folding hides each BN/ReLU that is a conv's only consumer, and loses none of them."""
    out: dict[str, list[str]] = {}
    for src, dst, _ in edges:
        out.setdefault(src, []).append(dst)
    for n, a in nodes.items():
        if "conv" in _classes(a) and len(out.get(n, [])) == 1:
            nxt = out[n][0]
            if _classes(nodes[nxt]) & {"bn", "relu"} and nxt.rsplit(".", 1)[0] == n.rsplit(".", 1)[0]:
                assert nxt not in folded
    for word in ("BN", "ReLU"):
        before = sum(re.findall(rf"\b{word}\b", a.get("label", "")).__len__() for a in nodes.values())
        after = sum(re.findall(rf"\b{word}\b", a.get("label", "")).__len__() for a in folded.values())
        assert before == after, word
    assert len(folded) < len(nodes)


def _check_layers_level(nodes, edges, counts) -> None:
    conv_nodes = [n for n, a in nodes.items() if "conv" in _classes(a)]
    assert len(conv_nodes) == len(counts["convs"])
    assert set(conv_nodes) == set(counts["convs"])  # node ids are the module paths
    assert len([n for n, a in nodes.items() if "add" in _classes(a)]) == counts["residual"]
    proj = [e for e in edges if _classes(e[2]) == {"skip", "projection"}]
    assert len(proj) == counts["projections"]
    assert len([n for n, a in nodes.items() if "projection" in _classes(a)]) == counts["projections"]


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_graph_is_the_module(name):
    cfg = PRESETS[name]
    summary = measure_summary(cfg)
    counts = _module_counts(_meta_model(cfg))
    assert counts["residual"] == summary.residual_units
    assert counts["projections"] == summary.shortcuts.projection

    nodes, edges = parse_dot(build_graph(cfg, "stages").source)
    _check_wiring(nodes, edges)
    stage_nodes = {n: a for n, a in nodes.items() if "stage" in _classes(a)}
    assert list(stage_nodes) == [s.name for s in summary.stages]
    n_proj = 0
    for st in summary.stages:
        label = stage_nodes[st.name]["label"]
        assert "out " + "x".join(map(str, st.out_shape)) in label
        assert re.search(rf"\b{st.units} (unit|plain block)", label), label
        m = re.search(r"(\d+) projection", label)
        n_proj += int(m.group(1)) if m else 0
    assert n_proj == summary.shortcuts.projection

    nodes, edges = parse_dot(build_graph(cfg, "units", roll=False).source)
    _check_wiring(nodes, edges)
    _check_units_level(nodes, edges, counts)
    # The projection edge says what the shape-check table says it costs.
    proj_labels = [e[2]["label"] for e in edges if _classes(e[2]) == {"skip", "projection"}]
    for u, label in zip([u for u in summary.units if u.shortcut == "projection"], proj_labels):
        assert f"{u.shortcut_params:,} params" in label

    nodes, edges = parse_dot(build_graph(cfg, "layers", roll=False).source)
    _check_wiring(nodes, edges)
    _check_layers_level(nodes, edges, counts)
    folded, f_edges = parse_dot(build_graph(cfg, "layers", fold=True, roll=False).source)
    _check_wiring(folded, f_edges)
    _check_layers_level(folded, f_edges, counts)
    _check_folded(nodes, edges, folded)


def test_edges_carry_traced_shapes():
    cfg = preset("resnet50")
    summary = measure_summary(cfg)
    nodes, edges = parse_dot(build_graph(cfg, "units").source)
    out_of = {src: a.get("label", "") for src, dst, a in edges if "main" in _classes(a)}
    for u in summary.units:
        # The ReLU after the addition hands the unit's output on, shape and all.
        assert out_of[u.name + ".post"] == "x".join(map(str, u.out_shape))
    nodes, edges = parse_dot(build_graph(cfg, "units", shapes=False).source)
    assert all("label" not in a for _, _, a in edges if "main" in _classes(a))


def test_layers_conv_labels_show_kernel_stride_channels():
    nodes, _ = parse_dot(build_graph(preset("resnet50"), "layers").source)
    assert nodes["conv1"]["label"] == "conv 7x7, 64, /2"
    assert nodes["layer2.0.conv2"]["label"] == "conv 3x3, 128, /2"  # stride on the 3x3 (v1.5)
    assert nodes["layer2.0.downsample.0"]["label"].startswith("projection conv 1x1, 512, /2")
    paper, _ = parse_dot(build_graph(preset("resnet50_paper"), "layers").source)
    assert paper["layer2.0.conv1"]["label"] == "conv 1x1, 128, /2"  # the paper's stride on the 1x1
    folded, _ = parse_dot(build_graph(preset("resnet50"), "layers", fold=True).source)
    assert folded["layer1.0.conv1"]["label"] == "conv 1x1, 64 +BN +ReLU"
    preact, _ = parse_dot(build_graph(preset("preact_resnet110"), "layers", fold=True).source)
    assert preact["layer1.1.conv1"]["label"] == "BN+ReLU+ conv 3x3, 16"


_TINY = dict(name="tiny", stem="cifar", stem_width=8, depths=[2, 2], widths=[8, 16], input_size=32,
             num_classes=10)


def _grid():
    for block, span, unit, sc in itertools.product(("basic", "bottleneck"), (0, 1, 2, 3), FIG4_UNITS, "ABC"):
        bn, relu = FIG4_UNITS[unit]
        try:
            cfg = preset("resnet20").replace(**_TINY, block=block, skip_span=span, bn_position=bn,
                                             relu_position=relu, shortcut=sc)
        except ConfigError:
            continue
        yield pytest.param(cfg, id=f"{block}-span{span}-{unit}-{sc}")


@pytest.mark.parametrize("cfg", list(_grid()))
def test_variant_grid_draws_at_every_level(cfg):
    counts = _module_counts(_meta_model(cfg))
    for detail in DETAILS:
        nodes, edges = parse_dot(build_graph(cfg, detail).source)
        _check_wiring(nodes, edges)
        assert {"input", "output"} <= set(nodes)
        assert set(drawn_ids(trace(cfg), detail).values()) - {""} == set(nodes), detail  # the ids it draws
        if detail == "units":
            _check_units_level(nodes, edges, counts)
        if detail == "layers":
            _check_layers_level(nodes, edges, counts)
    fig = build_unit_figure(cfg)
    nodes, edges = parse_dot(fig.source)
    _check_wiring(nodes, edges)
    eq = equation(cfg)
    if counts["residual"]:
        assert ("W_s" in eq) == bool(counts["projections"] and counts["projections"] > 0)
        assert sum(1 for a in nodes.values() if "add" in _classes(a)) == 1
    else:
        assert eq == "y = F(x, {W_i})"


@pytest.mark.parametrize("name", ["resnet50", "preact_resnet110", "resnet20", "plain34"])
def test_drawn_ids_are_the_ids_the_diagram_draws(name):
    tr = trace(preset(name))
    for detail, fold in [*((d, False) for d in DETAILS), ("layers", True)]:
        nodes, _ = parse_dot(build_graph(tr, detail, fold=fold).source)
        ids = drawn_ids(tr, detail, fold)
        assert set(ids.values()) - {""} == set(nodes), (detail, fold)
        for node in nodes:
            assert ops_drawn_in(tr, node, detail, fold), node
    units = segment_ids(tr)
    for u in tr.units:  # at unit detail: the branch node first, then the addition
        assert units[u.name][0] == u.name and (units[u.name][1] == u.add if u.add else len(units[u.name]) == 1)
    assert units["stem"] == ["stem"] and units["head"] == ["head"]


@needs_dot
def test_variant_grid_sources_are_valid_dot():
    """Every grid variant's DOT, at every level, is read by Graphviz itself (one dot process)."""
    sources = []
    for param in _grid():
        cfg = param.values[0]
        sources += [build_graph(cfg, d).source for d in DETAILS] + [build_unit_figure(cfg).source]
    res = subprocess.run(["dot", "-Tcanon", "-o", "/dev/null"], input="\n".join(sources),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[:2000]
    assert "syntax error" not in res.stderr


@needs_dot
def test_a_long_name_does_not_widen_the_unit_figure():
    def width(name):
        svg = to_bytes(build_unit_figure(preset("resnet50").replace(name=name)), "svg").decode()
        return float(re.search(r'<svg width="([\d.]+)pt"', svg).group(1))

    short = width("resnet50")
    long = width("resnet50 (stride_on first, shortcut C, depths [3, 4, 6, 3]) with a long note " * 2)
    assert long <= short * 1.05  # the title wraps within the drawing's width


def test_unit_figure_follows_the_unit():
    base = preset("resnet20")
    # (a) original: conv BN ReLU conv BN (+) ReLU, identity arc, y = ReLU(F + x).
    assert equation(base, "layer1.0") == "y = ReLU(F(x, {W_i}) + x)"
    nodes, edges = parse_dot(build_unit_figure(base, "layer1.0").source)
    assert ("x", "layer1.0.add") in [(s, d) for s, d, _ in edges]
    assert ("layer1.0.add", "layer1.0.relu2") in [(s, d) for s, d, _ in edges]
    assert sum(1 for a in nodes.values() if a["label"].startswith("weight layer")) == 2
    # (b) BN after addition.
    b = base.replace(bn_position="after_add")
    assert equation(b, "layer1.0") == "y = ReLU(BN(F(x, {W_i}) + x))"
    _, edges = parse_dot(build_unit_figure(b, "layer1.0").source)
    assert ("layer1.0.add", "layer1.0.bn2") in [(s, d) for s, d, _ in edges]
    # (e) full pre-activation: x -> BN -> ReLU -> conv; nothing after the addition.
    e = preset("preact_resnet110")
    assert equation(e, "layer1.1") == "y = F(x, {W_i}) + x"
    _, edges = parse_dot(build_unit_figure(e, "layer1.1").source)
    pairs = [(s, d) for s, d, _ in edges]
    assert ("x", "layer1.1.bn1") in pairs and ("layer1.1.add", "y") in pairs
    # The network's first unit shares the stem's BN-ReLU (He et al. 2016): x -> conv directly.
    _, edges = parse_dot(build_unit_figure(e, "layer1.0").source)
    assert ("x", "layer1.0.conv1") in [(s, d) for s, d, _ in edges]
    # Spans: 1 and 3 weight layers in the unit.
    for span in (1, 3):
        nodes, _ = parse_dot(build_unit_figure(base.replace(skip_span=span), "layer1.0").source)
        assert sum(1 for a in nodes.values() if a["label"].startswith("weight layer")) == span
    # Projection (default unit: the first with one) with its parameter count from the shape checks.
    cfg = preset("resnet18")
    proj = next(u for u in measure_summary(cfg).units if u.shortcut == "projection")
    assert equation(cfg) == "y = ReLU(F(x, {W_i}) + W_s x)"
    nodes, edges = parse_dot(build_unit_figure(cfg).source)
    ws = nodes[proj.name + ".downsample.0"]
    assert ws["label"].startswith("W_s: conv 1x1")
    assert [a for _, d, a in edges if _classes(a) == {"skip", "projection"}]
    # Pre-activation projection takes the pre-activated input.
    assert equation(preset("preact_resnet164"), "layer2.0") == "y = F(x, {W_i}) + W_s ReLU(BN(x))"
    assert equation(base.replace(shortcut="A"), "layer2.0") == "y = ReLU(F(x, {W_i}) + pad(x))"
    # A zero-pad shortcut in a pre-activation unit pads the activated input (fb.resnet.torch).
    assert equation(preset("preact_resnet110"), "layer2.0") == "y = F(x, {W_i}) + pad(ReLU(BN(x)))"


def test_bad_choices_raise_config_error():
    cfg = preset("resnet20")
    with pytest.raises(ConfigError, match="detail"):
        build_graph(cfg, "everything")
    with pytest.raises(ConfigError, match="direction"):
        build_graph(cfg, "units", direction="BT")
    with pytest.raises(ConfigError, match="unit"):
        build_unit_figure(cfg, "layer9.0")
    with pytest.raises(ConfigError, match="format"):
        to_bytes(build_graph(cfg), "jpeg")
    assert unit_names(cfg)[:2] == ["layer1.0", "layer1.1"]


HOSTILE = 'x" ]; evil -> pwn [label="<b>&amp;\nline2\r\n:port\\'


@pytest.mark.parametrize("detail", DETAILS)
def test_hostile_name_is_escaped(detail):
    cfg = preset("resnet20").replace(name=HOSTILE)
    plain_nodes, plain_edges = parse_dot(build_graph(preset("resnet20"), detail).source)
    source = build_graph(cfg, detail).source
    nodes, edges = parse_dot(source)
    assert set(nodes) == set(plain_nodes) and len(edges) == len(plain_edges)
    assert "evil" not in nodes and "pwn" not in nodes
    assert "<b>" not in source.replace('"<b>', "")  # never an HTML-like label
    if HAS_DOT:
        svg = ET.fromstring(to_bytes(build_graph(cfg, detail), "svg"))
        texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
        expected = " ".join(HOSTILE.split())
        assert any(t and t.startswith(expected) for t in texts), texts[:3]
        fig = ET.fromstring(to_bytes(build_unit_figure(cfg), "svg"))  # its title wraps: lines joined
        assert expected in " ".join(t.text or "" for t in fig.iter("{http://www.w3.org/2000/svg}text"))


@needs_dot
def test_exports_open_in_other_tools():
    g = build_graph(preset("resnet18"), "units")
    svg = to_bytes(g, "svg")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    classes = [el.get("class", "") for el in root.iter()]
    assert sum("add" in c.split() for c in classes) == 8
    assert to_bytes(g, "pdf").startswith(b"%PDF")
    png = to_bytes(g, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", png[16:24])
    assert 200 < w < 2000 and 500 < h < 10000
    assert to_bytes(g, "dot").decode() == g.source
    fig = to_bytes(build_unit_figure(preset("resnet50"), direction="LR"), "png")
    fw, fh = struct.unpack(">II", fig[16:24])
    assert fw > fh  # left to right


@needs_dot
@pytest.mark.parametrize("name, detail, shrunk", [("resnet20", "units", False), ("resnet152", "layers", True)])
def test_png_scale_predicts_the_bitmap_graphviz_draws(name, detail, shrunk):
    g = build_graph(preset(name), detail)
    svg = to_bytes(g, "svg").decode()
    w_pt, h_pt = (float(v) for v in re.search(r'width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups())
    scale = png_scale(svg)
    w, h = png_size(to_bytes(g, "png"))
    assert (scale < 1.0) == shrunk
    assert abs(w - w_pt * PNG_DPI / 72 * scale) <= 2 and abs(h - h_pt * PNG_DPI / 72 * scale) <= 2
    if shrunk:
        assert max(w, h) == PNG_MAX_PX
        assert scale > 0.9  # ResNet-152 is laid out compactly enough to stay nearly full size


def test_png_scale_without_a_size_and_png_size_rejects_other_bytes():
    assert png_scale("<svg></svg>") == 1.0
    with pytest.raises(ValueError):
        png_size(b"%PDF-1.7")


def test_missing_dot_is_a_clear_error(monkeypatch):
    g = build_graph(preset("resnet20"), "stages")
    monkeypatch.setenv("PATH", "")
    assert to_bytes(g, "dot").startswith(b"digraph")
    with pytest.raises(GraphvizMissing, match="install"):
        to_bytes(g, "svg")


def test_cli_graph(tmp_path, capsys):
    assert main(["graph", "resnet20", "--detail", "stages", "--format", "dot"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digraph") and "layer3" in out
    dot_file = tmp_path / "g.dot"
    assert main(["graph", "resnet20", "--set", "skip_span=1", "--detail", "layers", "--fold",
                 "--direction", "LR", "--no-shapes", "-o", str(dot_file)]) == 0
    nodes, edges = parse_dot(dot_file.read_text())
    assert "rankdir=LR" in dot_file.read_text()
    assert len([n for n, a in nodes.items() if "add" in _classes(a)]) == 3 * 3 * 2  # 3 stages x 3 blocks x 2 one-layer units
    assert main(["graph", "resnet20", "--unit-figure", "--unit", "layer2.0", "--format", "dot"]) == 0
    assert "pad(x)" in capsys.readouterr().out
    assert main(["graph", "resnet20", "--unit-figure", "--unit", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unit=") and err.count("\n") == 1
    assert main(["graph", "resnet20", "-o", str(tmp_path / "missing" / "g.dot")]) == 1
    assert "cannot write" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["graph", "resnet20", "--detail", "everything"])
    if HAS_DOT:
        svg_file = tmp_path / "g.svg"
        assert main(["graph", "resnet18", "-o", str(svg_file)]) == 0  # format from the extension
        ET.parse(svg_file)
        capsys.readouterr()
        assert main(["graph", "resnet20", "-o", str(tmp_path / "small.png")]) == 0
        assert "warning" not in capsys.readouterr().err
        assert main(["graph", "resnet152", "--detail", "layers", "-o", str(tmp_path / "tall.png")]) == 0
        err = capsys.readouterr().err
        assert "warning: the drawing is taller or wider than 32,767 pixels" in err and "SVG and PDF" in err


def test_shapes_match_a_real_forward_pass():
    """The oracle is torch itself: a small CPU model's unit outputs match the drawn shapes."""
    cfg = preset("resnet20").replace(**_TINY, block="bottleneck", skip_span=1, shortcut="B")
    model = build_model(cfg).eval()
    seen, hooks = {}, []
    for name, mod in model.named_modules():
        if isinstance(mod, ResidualUnit):
            hooks.append(mod.register_forward_hook(
                lambda m, a, out, name=name: seen.__setitem__(name, tuple(out.shape[1:]))))
    with torch.no_grad():
        model(torch.randn(1, cfg.in_channels, cfg.input_size, cfg.input_size))
    for h in hooks:
        h.remove()
    trace = trace_module(model)  # traced from the CPU model itself
    assert {u.name: u.out_shape for u in trace.units} == seen
    assert build_graph(trace, "layers").source == build_graph(cfg, "layers").source
    _, edges = parse_dot(build_graph(cfg, "units").source)
    labels = {src: a.get("label") for src, _, a in edges if "main" in _classes(a)}
    for name, shape in seen.items():
        last = name + ".post" if name + ".post" in labels else name + ".add"
        assert labels[last] == "x".join(map(str, shape))


def test_svg_content_fits_its_viewbox():
    """The SVG's declared size and its viewBox agree, so viewers show the whole graph unclipped."""
    for fig in (build_graph(preset("resnet50"), "units"), build_unit_figure(preset("resnet50"))):
        svg = to_bytes(fig, "svg").decode()
        head = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"\s+viewBox="[\d.]+ [\d.]+ ([\d.]+) ([\d.]+)"', svg)
        assert head, svg[:300]
        width, height, vb_w, vb_h = map(float, head.groups())
        assert abs(width - vb_w) <= 1 and abs(height - vb_h) <= 1


def test_trace_ignores_forward_passes_in_other_threads():
    """Recording is local to the traced model and thread: a forward elsewhere adds no ops to it."""
    import threading

    cfg = preset("resnet20").replace(widths=[8, 16, 32], stem_width=8)
    with torch.device("meta"):
        held = build_model(cfg)
    inside, go = threading.Event(), threading.Event()

    def hold(module, args):
        inside.set()
        go.wait(10)

    held.layer1[0].register_forward_pre_hook(hold)
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("trace", trace_module(held)))
    worker.start()
    assert inside.wait(10)
    other = build_model(cfg).eval()
    with torch.no_grad():
        assert other(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    go.set()
    worker.join(10)
    with torch.device("meta"):
        alone = trace_module(build_model(cfg))
    facts = lambda t: [(o.id, o.inputs, o.shape, o.flops, o.act_bytes) for o in t.nodes]  # noqa: E731
    assert facts(result["trace"]) == facts(alone)
