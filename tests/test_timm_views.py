"""Every view follows the timm variants: deep stems, average-pool (ResNet-D) shortcuts, SE and ECA.

Small networks (widths 8-32, 32x32 inputs) except where a full ResNet-50 is traced on the meta
device for the diff's totals.
"""
from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import explorer
from explorer import ArchConfig, diagram, preset
from explorer.compare import compare_table, differing_keys
from explorer.diff import KINDS, Change, diff_configs, highlights, total
from explorer.diagram.unit import gate_equation
from explorer.export.onnx import INPUT_NAME, to_onnx_bytes
from explorer.export.pytorch import to_pytorch_code
from explorer.facts.summary import measure_summary
from explorer.labels import attention_kind, attention_text, shortcut_reason, stem_text
from explorer.lessons import LESSONS, TWEAK_RESULTS
from explorer.trace import trace
from variants import randomize_bn

SMALL = ArchConfig(name="small_d", block="bottleneck", depths=(1, 2), widths=(8, 16), stem_width=16,
                   input_size=32, num_classes=5)
SE_D = SMALL.replace(name="se_d", stem_type="deep", avg_down=True, attention="se")
ECA_T = SMALL.replace(name="eca_t", stem_type="deep_tiered", avg_down=True, attention="eca")
BASIC_SE = ArchConfig(name="basic_se", depths=(1, 1), widths=(16, 32), stem="cifar", stem_width=16,
                      input_size=32, num_classes=10, attention="se", avg_down=True)
PLAIN_SE = SMALL.replace(name="plain_se", skip_span=0, attention="se")
PREACT_D = SMALL.replace(name="preact_d", bn_position="before_conv", relu_position="before_conv",
                         avg_down=True, shortcut="C")
NO_BN_DEEP = SMALL.replace(name="nobn_deep", stem_type="deep", bn_position="none", attention="eca")
CASES = [SE_D, ECA_T, BASIC_SE, PLAIN_SE, PREACT_D, NO_BN_DEEP]


def _unit_nodes(t, unit):
    return [n for n in t.nodes if n.unit == unit]


# -- the trace's facts ---------------------------------------------------------------------------
def test_trace_records_the_gate_and_the_pool_with_shapes_params_and_macs():
    t = trace(SE_D)
    ops = {n.id: n for n in _unit_nodes(t, "layer2.0")}
    c, rd = 64, 8  # the unit's output channels; SE width max(8, int(64/16 + 4) // 8 * 8)
    squeeze, fc1, fc2 = ops["layer2.0.se.squeeze"], ops["layer2.0.se.fc1"], ops["layer2.0.se.fc2"]
    assert (squeeze.kind, squeeze.shape, squeeze.params, squeeze.macs) == ("squeeze", (c, 1, 1), 0, 0)
    assert (fc1.kind, fc1.shape, fc1.params, fc1.macs) == ("conv", (rd, 1, 1), c * rd + rd, c * rd)
    assert (fc2.kind, fc2.shape, fc2.params, fc2.macs) == ("conv", (c, 1, 1), rd * c + c, rd * c)
    gate, mul = ops["layer2.0.se.gate"], ops["layer2.0.se.mul"]
    assert (gate.kind, gate.macs, mul.kind, mul.macs, mul.shape) == ("sigmoid", 0, "mul", 0, (c, 4, 4))
    assert set(mul.inputs) == {"layer2.0.bn3", "layer2.0.se.gate"}
    assert {n.role for n in ops.values() if ".se." in n.id} == {"attention"}
    pool, proj = ops["layer2.0.downsample.0"], ops["layer2.0.downsample.1"]
    assert (pool.kind, pool.role, pool.shape, pool.macs) == ("pool", "shortcut", (32, 4, 4), 0)
    assert (proj.stride, proj.inputs, proj.macs) == (1, ("layer2.0.downsample.0",), 32 * 64 * 16)
    unit = t.unit("layer2.0")
    assert unit.layers == 3 and unit.shortcut == "projection"
    assert sum(n.params for n in t.nodes) == t.params  # every parameter is on some node


# -- diagrams at every detail ---------------------------------------------------------------------
def _svg(g) -> ET.Element:
    return ET.fromstring(diagram.to_bytes(g, "svg"))


def test_units_detail_names_the_gate_on_the_unit_box_and_the_pool_on_the_skip_arc():
    src = diagram.build_graph(SE_D, "units").source
    assert re.search(r'"layer2\.0" \[label="layer2\.0\\n[^"]*\\n\+ SE 64-8-64"', src)
    assert "avg-pool + 1x1 projection" in src and "1x1 projection\\n576 params" in src  # layer1.0: stride 1
    assert "layer2.0.se" not in src  # the gate is drawn inside the unit's box, not as nodes
    eca = diagram.build_graph(ECA_T, "units").source
    assert "+ ECA k=3" in eca
    assert "stem\\n3x3,6,/2 BN ReLU\\n3x3,8 BN ReLU\\n3x3,16 BN ReLU maxpool 3x3" in eca
    _svg(diagram.build_graph(SE_D, "units"))


def test_layers_detail_draws_every_gate_op_in_its_own_box_and_the_product_as_a_circle():
    g = diagram.build_graph(SE_D, "layers")
    src = g.source
    assert 'subgraph "cluster_layer2.0.se"' in src and 'label="layer2.0.se  (SE 64-8-64)"' in src
    for op in ("squeeze", "fc1", "act", "fc2", "gate"):
        assert f'"layer2.0.se.{op}" [' in src
    mul = re.search(r'"layer2\.0\.se\.mul" \[[^\n]*', src).group(0)
    assert 'shape="circle"' in mul and 'class="mul attention"' in mul
    assert '"layer2.0.bn3" -> "layer2.0.se.mul"' in src and '"layer2.0.se.gate" -> "layer2.0.se.mul"' in src
    assert '"layer2.0.se.mul" -> "layer2.0.add"' in src
    pool = re.search(r'"layer2\.0\.downsample\.0" \[[^\n]*', src).group(0)
    assert "avg pool 2x2" in pool and 'class="pool shortcut"' in pool
    svg = _svg(g)
    titles = {e.text for e in svg.iter("{http://www.w3.org/2000/svg}title")}
    assert {"layer2.0.se.squeeze", "layer2.0.se.mul", "layer2.0.downsample.0"} <= titles


def test_stages_detail_says_the_attention_and_draws_the_deep_stem_one_conv_a_line():
    src = diagram.build_graph(SE_D, "stages").source
    assert "+ SE on each branch" in src
    assert "stem\\n3x3,8,/2 BN ReLU\\n3x3,8 BN ReLU\\n3x3,16 BN ReLU maxpool 3x3" in src
    plain = diagram.build_graph(SMALL, "stages").source
    assert "on each branch" not in plain and "stem\\n7x7,16,/2 BN ReLU maxpool 3x3" in plain


def test_colour_by_params_counts_the_gate_in_its_unit():
    t = trace(SE_D)
    src = diagram.build_graph(SE_D, "units", color_by="params").source
    unit = re.search(r'"layer2\.0" \[[^\n]*', src).group(0)
    own = sum(n.params for n in t.nodes if n.unit == "layer2.0" and n.role in ("branch", "attention"))
    assert f"params {own:,}" in unit


# -- the unit figure and its equation --------------------------------------------------------------
@pytest.mark.parametrize("cfg, unit, expected", [
    (SE_D, "layer2.0", "y = ReLU(s(F(x)) * F(x) + W_s avgpool(x))"),
    (SE_D, "layer1.0", "y = ReLU(s(F(x)) * F(x) + W_s x)"),       # stride 1: no pool to average
    (SE_D, "layer2.1", "y = ReLU(s(F(x)) * F(x) + x)"),
    (ECA_T, "layer2.0", "y = ReLU(s(F(x)) * F(x) + W_s avgpool(x))"),
    (PLAIN_SE, "layer2.0", "y = s(F(x)) * F(x)"),
    (PREACT_D, "layer2.0", "y = F(x, {W_i}) + W_s avgpool(ReLU(BN(x)))"),
    (SMALL.replace(avg_down=True), "layer2.0", "y = ReLU(F(x, {W_i}) + W_s avgpool(x))"),
])
def test_equation_scales_F_by_its_gate_and_averages_before_the_projection(cfg, unit, expected):
    assert diagram.equation(cfg, unit) == expected


def test_gate_equation_gives_the_gate_and_its_sizes():
    assert gate_equation(SE_D, "layer2.0") == ("s(F) = sigmoid(W_2 ReLU(W_1 avgpool(F))), 64 -> 8 -> 64 "
                                               "(squeeze-excitation)")
    assert gate_equation(ECA_T, "layer2.0") == "s(F) = sigmoid(conv1d_k(avgpool(F))), k = 3 (ECA)"
    assert gate_equation(SMALL, "layer2.0") == ""


def test_unit_figure_draws_the_gate_between_F_and_the_addition():
    g = diagram.build_unit_figure(SE_D, "layer2.0")
    src = g.source
    assert "subgraph cluster_s" in src and "s(F): squeeze-excitation" in src
    assert "W_1: conv 1x1, 8\\n520 params" in src and "W_2: conv 1x1, 64\\n576 params" in src
    assert "s(F) = sigmoid(W_2 ReLU(W_1 avgpool(F)))" in src  # the caption's second line
    assert re.search(r'"layer2\.0\.bn3" -> "layer2\.0\.se\.mul" \[[^\]]*label="F\(x\)"', src)
    assert '"layer2.0.se.mul" -> "layer2.0.add"' in src
    assert "avg pool 2x2, /2" in src
    _svg(g)


# -- shape checks ----------------------------------------------------------------------------------
def test_shape_checks_say_why_the_average_pool():
    units = {u.name: u for u in measure_summary(SE_D).units}
    assert "average-pooled first" in units["layer2.0"].reason and "1 in 4" in units["layer2.0"].reason
    assert "average" not in units["layer1.0"].reason  # a stride-1 projection has nothing to average
    plain = {u.name: u for u in measure_summary(SMALL).units}
    assert "average" not in plain["layer2.0"].reason
    assert shortcut_reason("projection", (32, 8, 8), (64, 4, 4), "B", pooled=True).startswith(
        "channels 32 -> 64 and size 8 -> 4: x cannot be added as is; a strided 1x1 conv would read only 1 in 4")


# -- the diff --------------------------------------------------------------------------------------
def test_diff_names_the_deep_stem_the_pooled_projection_and_the_gate():
    changes = diff_configs(SMALL, SE_D)
    by = {(c.unit, c.kind): c for c in changes}
    stem = by[("stem", "stem")]
    assert stem.change == "7x7 conv (16) -> three 3x3 convs (8-8-16, deep)"
    assert by[("layer2.0", "shortcut")].change == "1x1 projection + BN -> avg-pool + 1x1 projection + BN"
    assert by[("layer2.0", "shortcut")].params == 0
    assert ("layer1.0", "shortcut") not in by  # stride 1: the same conv and BN
    gate = by[("layer2.0", "attention")]
    assert gate.change == "no attention -> squeeze-excitation, 64 -> 8 -> 64"
    assert gate.params == (64 * 8 + 8) + (8 * 64 + 64) and gate.macs == 2 * 64 * 8
    assert sum(c.params for c in changes) == total(SMALL, SE_D)["params"]
    assert sum(c.macs for c in changes) == total(SMALL, SE_D)["macs"]
    assert [c.change for c in diff_configs(SE_D, ECA_T) if c.unit == "layer2.1" and c.kind == "attention"] == [
        "squeeze-excitation, 64 -> 8 -> 64 -> efficient channel attention (ECA), 1-D conv kernel 3"]
    assert diff_configs(SE_D, SE_D.replace(name="other")) == []
    marked = highlights(changes, SE_D, "b")
    assert "attention" in marked["layer2.0"].split() and "shortcut" in marked["layer2.0"].split()
    assert "attention" in marked["layer1.0"].split() and "stem" in marked["stem"].split()


def test_diff_of_full_resnet50_to_its_se_and_d_variants_adds_up():
    r50 = preset("resnet50")
    se = r50.replace(name="se", attention="se")
    changes = diff_configs(r50, se)
    assert {c.kind for c in changes} == {"attention"} and len(changes) == 16
    assert sum(c.params for c in changes) == total(r50, se)["params"] == 28_088_024 - 25_557_032
    d = r50.replace(name="d", stem_type="deep", avg_down=True)
    changes = diff_configs(r50, d)
    assert [c.unit for c in changes if c.kind == "shortcut"] == ["layer2.0", "layer3.0", "layer4.0"]
    assert sum(c.params for c in changes) == total(r50, d)["params"] == 25_576_264 - 25_557_032
    assert "attention" in KINDS
    c = next(c for c in diff_configs(r50, se))
    assert Change.from_dict(c.to_dict()) == c


# -- Compare ---------------------------------------------------------------------------------------
def test_compare_shows_the_new_keys_that_differ_and_the_counts_of_the_built_networks():
    rows = compare_table([SMALL, SE_D, ECA_T])
    assert differing_keys([SMALL, SE_D, ECA_T]) == ["stem_type", "avg_down", "attention"]
    assert [r["attention"] for r in rows] == ["none", "se", "eca"]
    assert [r["avg_down"] for r in rows] == [False, True, True]
    assert [r["stem_type"] for r in rows] == ["single", "deep", "deep_tiered"]
    assert [r["params"] for r in rows] == [trace(c).params for c in (SMALL, SE_D, ECA_T)]
    assert rows[1]["params"] > rows[2]["params"] and rows[1]["projection_params"] == rows[0]["projection_params"]


# -- exported PyTorch ------------------------------------------------------------------------------
def _randomized(cfg: ArchConfig, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = randomize_bn(explorer.build_model(cfg))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv1d)) and m.bias is not None:
                m.bias.normal_(0, 0.2)  # the SE biases start at zero: move them so they count
    return model


@pytest.mark.parametrize("cfg", CASES, ids=lambda c: c.name)
def test_exported_code_builds_the_same_network_with_torch_alone(cfg):
    code = to_pytorch_code(cfg)
    imports = {a.name.split(".")[0] for node in ast.walk(ast.parse(code))
               if isinstance(node, (ast.Import, ast.ImportFrom)) for a in getattr(node, "names", [])}
    modules = {node.module.split(".")[0] for node in ast.walk(ast.parse(code)) if isinstance(node, ast.ImportFrom)}
    assert modules <= {"torch"} and imports <= {"torch", "F", "nn"}
    ns: dict = {}
    exec(compile(code, f"{cfg.name}.py", "exec"), ns)
    model = _randomized(cfg)
    mine = ns["build_model"]()
    mine.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(mine.eval()(x), model(x), rtol=1e-5, atol=1e-5)


def test_exported_code_writes_the_gate_the_pool_and_the_deep_stem():
    code = to_pytorch_code(SE_D)
    assert "class SEModule(nn.Module):" in code and "class EcaModule" not in code
    assert "se=SEModule(64, 8)," in code
    assert "nn.AvgPool2d(2, stride=2, ceil_mode=True, count_include_pad=False)," in code
    assert "# deep stem (He et al. 2019, ResNet-C): 3x3 convs of 8, 8, 16 channels" in code
    assert "average-pool + projection shortcut (ResNet-D), squeeze-excitation" in code
    eca = to_pytorch_code(ECA_T)
    assert "class EcaModule(nn.Module):" in eca and "se=EcaModule(3)," in eca
    plain = to_pytorch_code(SMALL)
    assert "SEModule" not in plain and "se=None" not in plain and "nn.AvgPool2d(" not in plain


# -- ONNX ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", [SE_D, ECA_T], ids=lambda c: c.name)
def test_onnx_of_a_gated_avg_down_network_matches_pytorch(cfg):
    model = _randomized(cfg, seed=3)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x).numpy()
    data = to_onnx_bytes(cfg, model)
    onnx.checker.check_model(onnx.load_from_string(data))
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    out = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"]).run(None, {INPUT_NAME: x.numpy()})[0]
    assert out.shape == ref.shape
    assert float(np.abs(out - ref).max()) <= 1e-4 * max(1.0, float(np.abs(ref).max()))


# -- latency ---------------------------------------------------------------------------------------
def test_latency_and_profile_run_on_cpu_and_name_the_gate_ops():
    from explorer.timing import measure_latency, profile_latency

    r = measure_latency(SE_D, device="cpu", threads=1, batch=1, budget_s=0.05, warmup=1, min_samples=3,
                        max_samples=5)
    assert r.device == "cpu" and r.samples >= 3 and r.median_ms > 0
    p = profile_latency(SE_D, device="cpu", threads=1, budget_s=0.05, min_passes=1, max_passes=2)
    kinds = {row.module: row.kind for row in p.rows}
    assert kinds.get("layer2.0.se.fc1") == "conv" and kinds.get("layer2.0.downsample.0") == "pool"
    assert {row.module for row in p.rows} >= {"layer2.0.se.squeeze", "layer2.0.se.mul", "layer2.0.se.gate"}


# -- the Lab ---------------------------------------------------------------------------------------
def test_lab_trains_a_tiny_gated_avg_down_network():
    import explorer.lab as lab

    cfg = preset("resnet20").replace(name="tiny_se_d", depths=[1, 1, 1], widths=[8, 8, 16], stem_width=8,
                                     shortcut="B", avg_down=True, attention="se", stem_type="deep")
    model = explorer.build_model(lab.lab_config(cfg))
    assert any(isinstance(m, torch.nn.AvgPool2d) for m in model.modules())
    assert sum(1 for n, _ in model.named_modules() if n.endswith(".se")) == 3
    r = lab.train(cfg, lab.TrainSettings(epochs=1, max_train=200, batch_size=50))
    assert len(r.history) == 1 and np.isfinite(r.history[-1].train_loss)
    assert [g.unit for g in r.grad_norms] == ["layer1.0", "layer2.0", "layer3.0"]


# -- words and Learn -------------------------------------------------------------------------------
def test_attention_and_stem_words():
    t = trace(SE_D)
    ops = _unit_nodes(t, "layer2.0")
    assert (attention_kind(ops), attention_text(ops), attention_text(ops, short=True)) == (
        "se", "squeeze-excitation, 64 -> 8 -> 64", "SE 64-8-64")
    assert attention_kind(_unit_nodes(trace(ECA_T), "layer2.0")) == "eca"
    assert attention_text(_unit_nodes(trace(SMALL), "layer2.0")) == ""
    stem = [n for n in trace(ECA_T).nodes if n.role == "stem" and n.kind == "conv"]
    assert stem_text(stem) == "three 3x3 convs (6-8-16, deep, tiered)"


def test_learn_asks_why_resnet_d_averages_with_the_published_figures_and_shows_it():
    from explorer.app.inputs import lesson_config

    lesson = next(x for x in LESSONS if x.key == "resnet_d")
    for figure in ("76.21", "76.66", "76.87", "77.16", "24.80", "23.29", "3.86", "3.87"):
        assert figure in lesson.answer
    assert "quarter" in lesson.answer or "three quarters" in lesson.answer
    rows = {(r.source.split(",")[0], r.model): (r.top1, r.top5) for r in TWEAK_RESULTS}
    assert rows[("He et al. 2019", "ResNet-50-D")] == (77.16, 93.52)
    assert rows[("Hu et al. 2018", "SE-ResNet-50")] == (23.29, 6.62)
    assert rows[("Hu et al. 2018", "SE-ResNeXt-50")] == (21.10, 5.49)
    cfg = lesson_config(lesson)
    assert cfg.avg_down and cfg.stem_type == "deep"
    assert diagram.equation(cfg, "layer2.0") == "y = ReLU(F(x, {W_i}) + W_s avgpool(x))"
    assert lesson.look_at == "Unit"


def test_learn_show_me_opens_the_unit_tab_on_an_average_pool_projection():
    from test_app import fresh, show

    at = show(fresh(), "Unit")
    assert at.selectbox(key="unit_pick").value == "layer1.0"  # resnet50: its first projection
    at = show(at, "Learn")
    tables = [t.value for t in at.table]
    assert any("ResNet-50-D" in df.index and "SE-ResNet-50" in df.index for df in tables)
    at.button(key="learn_resnet_d").click().run()
    assert not at.exception
    assert at.session_state["view"] == "Unit"
    assert at.selectbox(key="unit_pick").value == "layer2.0"  # where ResNet-D averages before W_s
    text = " ".join(m.value for m in at.markdown)
    assert "y = ReLU(F(x, {W_i}) + W_s avgpool(x))" in text and "**avg_down** (ResNet-D)" in text
    assert any("average-pooled first" in c.value for c in at.caption)


TIMM_PRESETS = ["resnet18d", "resnet34d", "resnet26d", "resnet50c", "resnet50d", "resnet50s", "resnet50t",
                "resnet101d", "resnet152d", "seresnet50", "seresnext50_32x4d", "ecaresnet50d"]


@pytest.mark.parametrize("name", TIMM_PRESETS)
def test_exported_code_of_every_timm_preset_has_our_modules_and_shapes(name):
    cfg = preset(name)
    ns: dict = {}
    exec(compile(to_pytorch_code(cfg), f"{name}.py", "exec"), ns)
    with torch.device("meta"):
        theirs = ns["build_model"]().state_dict()
        ours = explorer.build_model(cfg).state_dict()
    assert {k: tuple(v.shape) for k, v in theirs.items()} == {k: tuple(v.shape) for k, v in ours.items()}
    assert sum(v.numel() for k, v in theirs.items() if "running" not in k and "num_batches" not in k) \
        == trace(cfg).params
