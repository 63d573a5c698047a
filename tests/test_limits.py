"""Resource limits: refused before anything is built, with the estimate and the limit."""
import itertools
import os
import time

import pytest

import explorer
from explorer import ArchConfig, ConfigError
from explorer.facts.summary import measure_summary as compute_summary
from explorer.facts.limits import check_limits, estimate
from explorer.limits import ServerLimits, server_limits
from explorer.arch.plan import make_plan


def test_estimate_is_exact_for_every_preset():
    """The limits' arithmetic reads the same plan the builder builds: it equals the trace's counts."""
    for name, cfg in explorer.PRESETS.items():
        est = estimate(cfg, make_plan(cfg))
        s = compute_summary(cfg)
        assert (est.params, est.macs, est.weight_layers) == (s.params, s.macs, s.depth), name


def test_estimate_is_exact_for_the_variant_sample():
    from outputs_snapshot import variant_dicts

    checked = 0
    for d in variant_dicts():
        try:
            cfg = ArchConfig.from_dict(d)
        except ConfigError:
            continue
        est, s = estimate(cfg, make_plan(cfg)), compute_summary(cfg)
        assert (est.params, est.macs, est.weight_layers) == (s.params, s.macs, s.depth), d
        checked += 1
    assert checked > 30


def test_one_output_size_formula_for_plan_builder_and_torch():
    """conv_out is torch's own formula; the plan's stem and per-layer sizes are what the module makes."""
    import torch
    import torch.nn.functional as F
    from explorer.arch.plan import conv_out

    for size, kernel, stride, padding, dilation in itertools.product([1, 2, 7, 33], [1, 3, 7], [1, 2], [0, 1, 3], [1, 2]):
        if size + 2 * padding < dilation * (kernel - 1) + 1 or padding > kernel // 2:
            continue
        x = torch.zeros(1, 1, size, size)
        got = F.max_pool2d(x, kernel, stride, padding, dilation).shape[-1]
        assert conv_out(size, kernel, stride, padding, dilation) == got
    for name in ("resnet50", "resnet20", "resnext50_32x4d"):
        cfg = explorer.preset(name).replace(input_size=65)
        plan, model = make_plan(cfg), explorer.build_model(cfg)
        assert (model.conv1.kernel_size[0], model.conv1.stride[0]) == (plan.stem.kernel, plan.stem.stride)
        assert (model.maxpool is None) == (plan.stem.pool_kernel == 0)
        shapes = {}
        hooks = [m.register_forward_hook(lambda m, i, o, n=n: shapes.update({n: o.shape[-1]}))
                 for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
        with torch.no_grad():
            model.eval()(torch.zeros(1, cfg.in_channels, 65, 65))
        for h in hooks:
            h.remove()
        assert shapes["conv1"] == plan.stem.conv_size
        for stage_idx, units in enumerate(plan.stages):
            for unit_idx, unit in enumerate(units):
                for j, layer in enumerate(unit.layers, start=1):
                    assert shapes[f"layer{stage_idx + 1}.{unit_idx}.conv{j}"] == layer.out_size


@pytest.mark.parametrize("block,span,units,shortcut", list(itertools.product(
    ["basic", "bottleneck"], [None, 0, 1, 3], [("after_add", "after_add"), ("before_conv", "before_conv"),
                                               ("none", "before_add")], "BC")))
def test_estimate_is_exact_for_variants(block, span, units, shortcut):
    cfg = ArchConfig.from_dict(dict(block=block, skip_span=span, bn_position=units[0], relu_position=units[1],
                                    shortcut=shortcut, depths=[2, 1], widths=[8, 12], stem="imagenet",
                                    stem_width=8, input_size=37, num_classes=3))
    est, s = estimate(cfg, make_plan(cfg)), compute_summary(cfg)
    assert (est.params, est.macs, est.weight_layers) == (s.params, s.macs, s.depth)


def test_ten_thousand_layers_refused_fast_with_estimate_and_limit():
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        check_limits(explorer.preset("resnet152").replace(depths=[1000, 1000, 1000, 1000]))
    assert time.perf_counter() - t0 < 30  # a bound against hanging, not a speed target
    msg = str(err.value)
    assert err.value.key == "depths" and "12,002" in msg and "2,500" in msg and "MAX_WEIGHT_LAYERS" in msg


def test_huge_input_refused_by_macs():
    with pytest.raises(ConfigError) as err:
        check_limits(explorer.preset("wide_resnet101_2").replace(input_size=4096))
    assert err.value.key == "input_size" and "GMACs" in str(err.value)


def test_huge_widths_refused_by_params():
    with pytest.raises(ConfigError) as err:
        check_limits(explorer.preset("resnet50").replace(widths=[4096, 8192, 8192, 8192]))
    assert err.value.key == "widths" and "parameters" in str(err.value)


def test_limits_come_from_environment(monkeypatch):
    monkeypatch.setenv("RESNET_EXPLORER_MAX_PARAMS", "1e6")
    assert ServerLimits.from_env().max_params == 1_000_000
    with pytest.raises(ConfigError) as err:
        check_limits(explorer.preset("resnet18").replace(name="r18"))
    assert "1,000,000" in str(err.value)
    monkeypatch.setenv("RESNET_EXPLORER_MAX_PARAMS", "lots")
    with pytest.raises(ConfigError) as err:
        ServerLimits.from_env()
    assert err.value.key == "RESNET_EXPLORER_MAX_PARAMS"


def test_custom_limits_object():
    cfg = explorer.preset("resnet20")
    assert check_limits(cfg, ServerLimits(max_weight_layers=20)).weight_layers == 20
    with pytest.raises(ConfigError):
        check_limits(cfg, ServerLimits(max_weight_layers=19))


@pytest.mark.parametrize("value,expect", [
    ("1000000", "RESNET_EXPLORER_MAX_PARAMS"),       # a limit the preset exceeds
    ("abc", "RESNET_EXPLORER_MAX_PARAMS='abc' is invalid"),  # a malformed limit
])
def test_limits_are_applied_at_the_command_in_one_line(value, expect):
    """The environment never breaks `import explorer`; the command refuses with one line, exit 2."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "RESNET_EXPLORER_MAX_PARAMS": value}
    run = subprocess.run([sys.executable, "-m", "explorer", "summary", "resnet18"], capture_output=True,
                         text=True, env=env)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and expect in run.stderr and "Traceback" not in run.stderr
    imp = subprocess.run([sys.executable, "-c", "import explorer; print(explorer.PRESETS['resnet152'].name)"],
                         capture_output=True, text=True, env=env)
    assert imp.returncode == 0 and imp.stdout.strip() == "resnet152"


def test_the_value_type_holds_no_server_policy(monkeypatch):
    monkeypatch.setenv("RESNET_EXPLORER_MAX_PARAMS", "1000")
    cfg = explorer.preset("resnet50").replace(name="big")  # a value: valid whatever the server allows
    with pytest.raises(ConfigError):
        check_limits(cfg)


def test_server_limits_are_read_once_per_process(monkeypatch):
    """check_limits reads the environment's limits once; they stay fixed until read again."""
    first = server_limits()
    assert server_limits() is first and first == ServerLimits()
    monkeypatch.setitem(os.environ, "RESNET_EXPLORER_MAX_WEIGHT_LAYERS", "5")
    assert server_limits() is first
    check_limits(explorer.preset("resnet20"))  # the limits read first still apply
    server_limits.cache_clear()
    assert server_limits().max_weight_layers == 5
    with pytest.raises(ConfigError) as err:
        check_limits(explorer.preset("resnet20"))
    assert err.value.key == "depths" and "5 weight layers" in str(err.value)


def test_every_limit_is_defined_once():
    """The modules that check a bound read it from explorer.limits rather than keeping a copy."""
    import explorer.limits as limits
    from explorer.arch import config
    from explorer.app import inputs
    from explorer.cli import common
    from explorer.export import limits as export_limits
    from explorer.facts import costs

    assert config.MAX_SPAN is limits.MAX_SPAN and config.INT_BOUNDS["in_channels"][1] == limits.MAX_IN_CHANNELS
    assert config.INT_BOUNDS["num_classes"][1] == limits.MAX_CLASSES
    assert costs.MAX_BATCH == limits.MAX_BATCH and common.MAX_CONFIG_BYTES == limits.MAX_CONFIG_BYTES
    assert inputs.MAX_CONFIG_BYTES == limits.MAX_CONFIG_BYTES
    assert export_limits.ONNX_MAX_BYTES == limits.ONNX_MAX_BYTES
    for module in (config, costs, common, inputs, export_limits):
        source = open(module.__file__).read()
        assert not any(line.startswith("MAX_") and "=" in line for line in source.splitlines()), module
