"""Export, loaded the way users load it: the PyTorch file in a fresh interpreter that cannot import
explorer (it loads this package's state_dict with strict=True and must compute the same outputs);
the ONNX file through onnx's checker and ONNX Runtime. Random BN statistics, eval mode."""
import ast
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import explorer
from explorer import ArchConfig, ConfigError
from explorer.__main__ import main
from explorer.arch.plan import make_plan
from explorer.export import ExportError, onnx_size_problem, to_bytes
from explorer.export.onnx import INPUT_NAME, to_onnx_bytes
from explorer.export.pytorch import to_pytorch_code
from variants import FIG4_UNITS, PREACT_UNITS, randomize_bn

BASIC = explorer.preset("resnet20").replace(
    name="tiny_basic", depths=[2, 2], widths=[8, 16], stem_width=8, input_size=16, num_classes=5)
BOTTLENECK = BASIC.replace(name="tiny_bottleneck", block="bottleneck", widths=[4, 8])


def _variants() -> dict[str, ArchConfig]:
    """The grid: Fig. 4 units (and no BN), skip spans, shortcut options, stride, groups, stems."""
    grid = {}
    for base in (BASIC, BOTTLENECK):
        b = base.block
        for unit, (bn, relu) in FIG4_UNITS.items():
            grid[f"{b}-fig4{unit}"] = dict(bn_position=bn, relu_position=relu)
        for span in range(5):
            grid[f"{b}-span{span}"] = dict(skip_span=span)
            grid[f"{b}-span{span}-preact"] = dict(skip_span=span, bn_position="before_conv",
                                                  relu_position="before_conv", shortcut="C")
        for option in "ABC":
            grid[f"{b}-shortcut{option}"] = dict(shortcut=option)
            for unit, (bn, relu) in PREACT_UNITS.items():
                grid[f"{b}-shortcut{option}-{unit}"] = dict(shortcut=option, bn_position=bn, relu_position=relu)
        grid[f"{b}-zero-init-e"] = dict(zero_init_residual=True, bn_position="before_conv",
                                        relu_position="before_conv")
        grid[f"{b}-imagenet-stem"] = dict(stem="imagenet", input_size=32, in_channels=1)
    grid["bottleneck-stride-first"] = dict(stride_on="first")
    grid["bottleneck-span2-stride-first"] = dict(stride_on="first", skip_span=2, shortcut="A")
    grid["bottleneck-groups"] = dict(widths=[8, 16], groups=4, width_per_group=16)
    grid["bottleneck-wide"] = dict(width_per_group=128)
    out = {}
    for name, changes in grid.items():
        base = BASIC if name.startswith("basic") else BOTTLENECK
        try:
            cfg = base.replace(name=name, **changes)
            make_plan(cfg)  # shape problems show in the plan
        except ConfigError:  # e.g. option A where a unit reduces channels: refused, nothing to export
            continue
        out[name] = cfg
    return out


VARIANTS = _variants()
# One of every preset family at a small input; the rest are checked module by module on meta.
SMALL_PRESETS = {"resnet18": 32, "resnet50": 32, "resnext50_32x4d": 32, "resnet50_paper": 32,
                 "plain18": 32, "resnet20": 16, "plain20": 16, "resnet110_skip1": 16,
                 "preact_resnet110": 16, "preact_resnet164": 16, "preact_resnet50": 32}
NUMERIC = {**{f"preset-{n}": explorer.preset(n).replace(input_size=s) for n, s in SMALL_PRESETS.items()},
           **VARIANTS}
ONNX_PRESETS = ("resnet18", "resnet50", "resnext50_32x4d", "resnet50_paper", "resnet110_skip1",
                "preact_resnet110", "plain20")
ONNX_CASES = {**{f"preset-{n}": NUMERIC[f"preset-{n}"] for n in ONNX_PRESETS}, **VARIANTS}

RUNNER = textwrap.dedent('''
    import importlib.util, sys
    import torch
    torch.set_num_threads(1)
    results = {}
    for case, numeric in torch.load("cases.pt"):
        spec = importlib.util.spec_from_file_location(case, case + ".py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        try:
            if numeric:
                data = torch.load(case + ".pt", weights_only=True)
                model = mod.build_model()
                model.load_state_dict(data["state"], strict=True)
                with torch.no_grad():
                    results[case] = model.eval()(data["x"])
            else:
                with torch.device("meta"):
                    model = mod.build_model()
                results[case] = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        except Exception as exc:
            results[case] = f"{type(exc).__name__}: {exc}"
    results["__explorer_imported__"] = any(m.split(".")[0] == "explorer" for m in sys.modules)
    torch.save(results, "results.pt")
''')


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks run fastest on one thread, most of all on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def reference(cfg: ArchConfig, seed: int = 0):
    """(model, input, output) of the built network with random BN statistics, batch 2."""
    torch.manual_seed(seed)
    model = randomize_bn(explorer.build_model(cfg))
    x = torch.randn(2, cfg.in_channels, cfg.input_size, cfg.input_size)
    with torch.no_grad():
        return model, x, model(x)


def assert_close(out, ref, tol):
    scale = max(1.0, float(np.abs(ref).max()))
    diff = float(np.abs(out - ref).max())
    assert diff <= tol * scale, f"max |diff| {diff:.3g} at output scale {scale:.3g}"


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """Every case exported to a .py file and run in one isolated interpreter: case -> result."""
    tmp = tmp_path_factory.mktemp("standalone")
    cases, refs = [], {}
    for case, cfg in NUMERIC.items():
        model, x, out = reference(cfg)
        (tmp / f"{case}.py").write_text(to_pytorch_code(cfg))
        torch.save({"state": model.state_dict(), "x": x}, tmp / f"{case}.pt")
        cases.append((case, True))
        refs[case] = out
    for name, cfg in explorer.PRESETS.items():
        case = f"meta-{name}"
        (tmp / f"{case}.py").write_text(to_pytorch_code(cfg))
        with torch.device("meta"):
            refs[case] = {k: tuple(v.shape) for k, v in explorer.build_model(cfg).state_dict().items()}
        cases.append((case, False))
    torch.save(cases, tmp / "cases.pt")
    (tmp / "runner.py").write_text(RUNNER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-I", "runner.py"], cwd=tmp, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, torch.load(tmp / "results.pt"), refs


def test_the_fresh_interpreter_cannot_import_explorer(standalone):
    tmp, results, _ = standalone
    assert results["__explorer_imported__"] is False
    proc = subprocess.run([sys.executable, "-I", "-c", "import explorer"], cwd=tmp, capture_output=True)
    assert proc.returncode != 0


@pytest.mark.parametrize("case", sorted(NUMERIC))
def test_pytorch_code_loads_the_state_dict_strictly_and_computes_the_same(standalone, case):
    _, results, refs = standalone
    out = results[case]
    assert isinstance(out, torch.Tensor), out  # else the error the file raised
    assert_close(out.numpy(), refs[case].numpy(), 1e-5)


@pytest.mark.parametrize("name", sorted(explorer.PRESETS))
def test_pytorch_code_of_every_preset_has_the_same_weights_on_meta(standalone, name):
    _, results, refs = standalone
    assert results[f"meta-{name}"] == refs[f"meta-{name}"]


@pytest.mark.parametrize("name", ["resnet50", "preact_resnet1001", "resnet1202"])
def test_pytorch_code_imports_only_torch_and_reads_well(name):
    cfg = explorer.preset(name)
    code = to_pytorch_code(cfg)
    tree = ast.parse(code)
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert roots == {"torch"}
    assert any(isinstance(n, ast.FunctionDef) and n.name == "build_model" for n in tree.body)
    # the config heads the file as commented JSON that loads again
    header = [line[2:] for line in code.splitlines()[1:] if line.startswith("# ")]
    json_text = "\n".join(header[: header.index("}") + 1])
    assert ArchConfig.from_dict(json.loads(json_text)) == cfg
    assert len(code.splitlines()) < 400  # repeated units are written once per run, not 600 times
    assert "ResidualUnit(" in code and "nn.Conv2d(" in code


def test_pytorch_code_of_a_hostile_name_is_still_one_harmless_file(tmp_path):
    cfg = BASIC.replace(name='x"""\nimport os  # \\ \'')
    code = to_pytorch_code(cfg)
    tree = ast.parse(code)
    assert not any(isinstance(n, ast.Import) and n.names[0].name == "os" for n in ast.walk(tree))
    first = ast.get_docstring(tree).splitlines()[0]
    assert first.startswith("x___") and first.endswith(": standalone PyTorch code written by ResNet Explorer.")


def test_pytorch_code_zero_inits_the_last_branch_bn_like_the_builder():
    cfg = BASIC.replace(zero_init_residual=True)
    ns: dict = {}
    exec(compile(to_pytorch_code(cfg), "model.py", "exec"), ns)  # noqa: S102 (our own output)
    model, built = ns["build_model"](), explorer.build_model(cfg)
    for (name, a), (_, b) in zip(model.state_dict().items(), built.state_dict().items()):
        if name.endswith(".weight") and ".bn" in name:
            assert torch.equal(a == 0, b == 0), name
    assert model.training


def assert_tidy_for_netron(proto) -> None:
    """No Identity nodes (each Conv reads its own bias) and a full shape stored on every edge."""
    assert [n.name for n in proto.graph.node if n.op_type == "Identity"] == []
    shapes = {v.name: v.type.tensor_type.shape for v in proto.graph.value_info}
    finals = {o.name for o in proto.graph.output}
    inner = [name for n in proto.graph.node for name in n.output if name not in finals]
    assert inner and set(inner) <= set(shapes), set(inner) - set(shapes)
    for name in inner:
        dims = shapes[name].dim
        assert dims and all(d.dim_value > 0 or d.dim_param for d in dims), (name, dims)


def onnx_outputs(cfg: ArchConfig):
    model, x, ref = reference(cfg, seed=1)
    data = to_onnx_bytes(cfg, model)
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto)
    assert_tidy_for_netron(proto)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert ArchConfig.from_json(meta["resnet_explorer_config"]) == cfg
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT_NAME: x.numpy()})[0], ref.numpy(), model


@pytest.mark.parametrize("case", sorted(ONNX_CASES))
def test_onnx_passes_the_checker_and_onnx_runtime_matches_pytorch(case):
    out, ref, model = onnx_outputs(ONNX_CASES[case])
    assert out.shape == ref.shape  # batch 2 through a model traced at batch 1: the batch is dynamic
    assert_close(out, ref, 1e-4)
    assert not model.training  # the caller's model keeps its mode (it was in eval)


def test_onnx_resnet50_has_no_identity_nodes_and_a_shape_on_every_edge():
    proto = onnx.load_from_string(to_onnx_bytes(explorer.preset("resnet50")))
    assert_tidy_for_netron(proto)
    shapes = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in proto.graph.value_info}
    assert ["batch", 2048, 7, 7] in shapes.values() and ["batch", 2048] in shapes.values()
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    assert len(convs) == 53 and all(len(n.input) == 3 for n in convs)  # BN folded: every conv has a bias
    assert len({n.input[2] for n in convs}) == 53  # each its own, not shared through Identity nodes


def test_onnx_export_leaves_a_training_model_in_training_mode():
    model = explorer.build_model(BASIC)
    to_onnx_bytes(BASIC, model)
    assert model.training


def test_onnx_refuses_what_one_file_cannot_hold():
    assert onnx_size_problem("big", 1024) is None
    message = onnx_size_problem("big", 3 * 1024**3)
    assert "2 GiB" in message and "'big'" in message
    cfg = explorer.preset("resnet50").replace(widths=[384, 768, 1536, 3072])  # about 860 M parameters
    with pytest.raises(ExportError, match="at most 2 GiB"):
        to_bytes(cfg, "onnx")


def test_cli_exports_pytorch_and_onnx(tmp_path, capsys):
    py, ox = tmp_path / "model.py", tmp_path / "model.onnx"
    assert main(["export", "resnet20", "--set", "depths=[1,1,1]", "--format", "pytorch", "-o", str(py)]) == 0
    assert main(["export", "resnet20", "--set", "depths=[1,1,1]", "-o", str(ox)]) == 0  # format from suffix
    assert "wrote" in capsys.readouterr().err
    proc = subprocess.run([sys.executable, "-I", str(py)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "torch.Size([1, 10])" in proc.stdout, proc.stderr
    session = ort.InferenceSession(str(ox), providers=["CPUExecutionProvider"])
    out = session.run(None, {INPUT_NAME: np.zeros((3, 3, 32, 32), np.float32)})[0]
    assert out.shape == (3, 10)


def test_cli_export_errors_are_one_line(tmp_path, capsys):
    out = str(tmp_path / "x.onnx")
    assert main(["export", "resnet50", "--set", "widths=[384,768,1536,3072]", "-o", out]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot export") and "Traceback" not in err
    assert main(["export", "resnet50", "--set", "skip_span=1", "--set", "shortcut=A", "-o", out]) == 2
    assert "shortcut" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(SystemExit):
        main(["export", "resnet20", "--format", "tflite"])


def test_app_offers_pytorch_and_onnx_downloads():
    from streamlit.testing.v1 import AppTest

    from explorer.app.sidebar import export_bytes

    at = AppTest.from_file(str(__import__("pathlib").Path(__file__).parents[1] / "app.py"), default_timeout=180)
    at.query_params["preset"] = "resnet20"
    at.run()
    assert not at.exception
    labels = [b.label for b in at.get("download_button")]
    assert {"Download config JSON", "Download PyTorch code", "Download ONNX"} <= set(labels)
    cfg = explorer.preset("resnet20")
    assert export_bytes(cfg, "pytorch").decode() == to_pytorch_code(cfg)
    assert onnx.load_from_string(export_bytes(cfg, "onnx")).graph.input[0].name == INPUT_NAME
