"""The builder follows the semantics the README gives ("Config keys", "Choices the papers leave
open"): units, BN/ReLU placement, shortcuts, init."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import explorer
from explorer import ArchConfig, ConfigError, build_model
from explorer.facts.summary import measure_summary
from explorer.arch.builder import ZeroPadShortcut
from explorer.arch.plan import make_plan
from variants import FIG4_UNITS, PREACT_UNITS


def small(**kw):
    base = dict(name="t", stem="cifar", stem_width=8, widths=[8, 16], depths=[2, 2],
                input_size=16, num_classes=5)
    base.update(kw)
    return ArchConfig.from_dict(base)


def randomise_bn(model):
    """Give every BN non-trivial statistics so eval-mode formulas are really tested."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))
    return model.eval()


GRID = list(itertools.product(["basic", "bottleneck"], [0, 1, 2, 3], FIG4_UNITS, ["A", "B", "C"]))


@pytest.mark.parametrize("block,span,unit,shortcut", GRID)
def test_combination_grid_builds_and_runs_or_raises_config_error(block, span, unit, shortcut):
    bn, relu = FIG4_UNITS[unit]
    try:
        cfg = small(block=block, skip_span=span, bn_position=bn, relu_position=relu, shortcut=shortcut)
    except ConfigError as exc:
        # The only invalid combination in this grid: option A asked to reduce channels.
        assert exc.key == "shortcut" and "cannot reduce channels" in str(exc)
        assert block == "bottleneck" and span in (1, 2)
        return
    model = build_model(cfg)
    y = model(torch.randn(2, 3, 16, 16))
    assert y.shape == (2, 5)
    y.sum().backward()  # in-place ops must not break autograd
    s = measure_summary(cfg)
    assert s.output_shape == (1, 5)
    assert s.params == sum(p.numel() for p in model.parameters())
    expected_units = 0 if span == 0 else sum(
        -(-(d * (2 if block == "basic" else 3)) // span) for d in cfg.depths)
    assert s.residual_units == expected_units
    if bn == "none":
        assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        assert all(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))


def unit_formulas(u, x):
    """He et al. 2016 Fig. 4, written out by hand for a two-layer unit with an identity shortcut."""
    return {
        "a": lambda: F.relu(u.bn2(u.conv2(F.relu(u.bn1(u.conv1(x))))) + x),
        "b": lambda: F.relu(u.bn2(u.conv2(F.relu(u.bn1(u.conv1(x)))) + x)),
        "c": lambda: F.relu(u.bn2(u.conv2(F.relu(u.bn1(u.conv1(x)))))) + x,
        "d": lambda: u.bn2(u.conv2(F.relu(u.bn1(u.conv1(F.relu(x)))))) + x,
        "e": lambda: u.conv2(F.relu(u.bn2(u.conv1(F.relu(u.bn1(x)))))) + x,
    }


@pytest.mark.parametrize("unit", "abcde")
def test_five_units_compute_he_2016_fig4(unit):
    bn, relu = FIG4_UNITS[unit]
    model = randomise_bn(build_model(small(bn_position=bn, relu_position=relu)))
    u = model.layer1[1]  # identity shortcut, 8 -> 8 channels
    x = torch.randn(2, 8, 16, 16)
    with torch.no_grad():
        assert torch.allclose(u(x.clone()), unit_formulas(u, x)[unit](), atol=1e-5)


def test_pre_activation_projection_takes_preactivated_input():
    model = randomise_bn(build_model(small(bn_position="before_conv", relu_position="before_conv",
                                           shortcut="B")))
    u = model.layer2[0]  # 8 -> 16 channels, stride 2: projection
    assert len(u.downsample) == 1 and u.downsample[0].bias is None  # a bare 1x1 conv
    x = torch.randn(2, 8, 16, 16)
    with torch.no_grad():
        pre = F.relu(u.bn1(x))
        expected = u.conv2(F.relu(u.bn2(u.conv1(pre)))) + u.downsample[0](pre)
        assert torch.allclose(u(x.clone()), expected, atol=1e-5)


def test_pre_activation_zero_pad_takes_preactivated_input():
    """Option A where the shape changes reads the pre-activated input, as the projection does
    (fb.resnet.torch preresnet.lua: 'both_preact' for a stage's first block)."""
    model = randomise_bn(build_model(small(bn_position="before_conv", relu_position="before_conv",
                                           shortcut="A")))
    u = model.layer2[0]
    assert isinstance(u.downsample, ZeroPadShortcut)
    x = torch.randn(2, 8, 16, 16)
    with torch.no_grad():
        pre = F.relu(u.bn1(x))
        expected = u.conv2(F.relu(u.bn2(u.conv1(pre)))) + u.downsample(pre)
        assert torch.allclose(u(x.clone()), expected, atol=1e-5)


def _span_configs(units, shortcuts="ABC"):
    """Small configs over blocks, spans 1, 2, 3, 0, the given units and shortcut options,
    leaving out the combinations that are a ConfigError (option A reducing channels)."""
    for block, span, unit, shortcut in itertools.product(["basic", "bottleneck"], [1, 2, 3, 0],
                                                         units, shortcuts):
        bn, relu = units[unit]
        try:
            yield small(block=block, skip_span=span, bn_position=bn, relu_position=relu,
                        shortcut=shortcut, stem=("imagenet" if span == 3 else "cifar"),
                        input_size=(32 if span == 3 else 16))
        except ConfigError:
            continue


def _inputs_seen(model, x, names):
    """The input tensor each named module receives in one forward pass of `model`."""
    seen, hooks = {}, []
    modules = dict(model.named_modules())
    for name in names:
        hooks.append(modules[name].register_forward_pre_hook(
            lambda m, args, name=name: seen.setdefault(name, args[0].clone())))
    hooks.append(model.maxpool.register_forward_hook(lambda m, a, out: seen.setdefault("stem", out.clone()))
                 if model.maxpool is not None else
                 model.relu.register_forward_hook(lambda m, a, out: seen.setdefault("stem", out.clone())))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


@pytest.mark.parametrize("cfg", list(_span_configs(PREACT_UNITS)), ids=lambda c: (
    f"{c.block}-span{c.skip_span}-{c.bn_position}-{c.relu_position}-{c.shortcut}"))
def test_first_unit_of_a_preactivation_net_shares_the_stems_activation(cfg):
    """He et al. 2016: "the first activation right after conv1 and before splitting into two
    paths". The stem's BN/ReLU is the first unit's pre-activation: layer1.0 adds none of its
    own, and its first conv and its shortcut both read the activated stem output."""
    plan = make_plan(cfg)
    first = plan.stages[0][0]
    pre = (("bn",) if cfg.bn_position == "before_conv" else ()) + ("relu",)
    assert first.layers[0].pre == ()
    assert all(layer.pre == pre for layer in first.layers[1:])
    assert all(u.layers[0].pre == pre for units in plan.stages for u in units if u is not first)
    model = randomise_bn(build_model(cfg))
    u = model.layer1[0]
    assert u._pre == [] and u._branch[0] == "conv1"  # nothing of its own before its first conv
    names = ["layer1.0.conv1"] + (["layer1.0.downsample"] if u.downsample is not None else [])
    x = torch.randn(2, 3, cfg.input_size, cfg.input_size)
    seen = _inputs_seen(model, x, names + ["layer1.0"])
    for name in names + ["layer1.0"]:  # an identity shortcut reads the unit's input itself
        torch.testing.assert_close(seen[name], seen["stem"])
    if len(model.layer1) > 1 and cfg.skip_span != 0:
        # Every later unit pre-activates its own input.
        second = model.layer1[1]
        assert second._pre == [f"{op}1" for op in pre]


def test_first_unit_keeps_its_bn_where_the_network_is_not_preactivated():
    """BN before the conv with the ReLU after the addition is no pre-activation network: the
    stem's conv-BN-ReLU is not the unit's BN, so layer1.0 keeps its own."""
    model = build_model(small(bn_position="before_conv", relu_position="after_add"))
    assert model.layer1[0]._pre == ["bn1"]


@pytest.mark.parametrize("cfg", list(_span_configs({**FIG4_UNITS, **PREACT_UNITS}, "BC")),
                         ids=lambda c: (f"{c.block}-span{c.skip_span}-{c.bn_position}-"
                                        f"{c.relu_position}-{c.shortcut}"))
def test_projection_has_bn_only_where_the_convs_are_followed_by_bn(cfg):
    """torchvision (BN after the convs, Fig. 4 a-d): projection = conv + BN. A pre-activation
    unit (BN before its convs, Fig. 4e: the authors' code, timm resnetv2): a bare 1x1 conv.
    Without BN anywhere: a conv with a bias."""
    model = build_model(cfg)
    projections = [m.downsample for m in model.modules()
                   if getattr(m, "shortcut_kind", None) == "projection"]
    if cfg.skip_span == 0:
        assert projections == []
        return
    assert projections
    bn_after = cfg.bn_position in ("after_conv", "after_add")
    for proj in projections:
        assert isinstance(proj[0], nn.Conv2d) and proj[0].kernel_size == (1, 1)
        assert len(proj) == (2 if bn_after else 1)
        if bn_after:
            assert isinstance(proj[1], nn.BatchNorm2d)
        assert (proj[0].bias is not None) == (cfg.bn_position == "none")
    s = measure_summary(cfg)
    assert s.params == sum(p.numel() for p in model.parameters())


def test_pre_activation_nets_end_with_bn_relu_and_relu_only_variant_with_relu():
    e = build_model(small(bn_position="before_conv", relu_position="before_conv"))
    d = build_model(small(bn_position="after_conv", relu_position="before_conv"))
    a = build_model(small())
    assert isinstance(e.final_bn, nn.BatchNorm2d) and isinstance(e.final_relu, nn.ReLU)
    assert d.final_bn is None and isinstance(d.final_relu, nn.ReLU)
    assert a.final_bn is None and a.final_relu is None


def test_option_a_pads_with_zeros_and_subsamples():
    model = build_model(small(shortcut="A"))
    sc = model.layer2[0].downsample
    assert isinstance(sc, ZeroPadShortcut) and sum(p.numel() for p in sc.parameters()) == 0
    x = torch.randn(1, 8, 16, 16)
    y = sc(x)
    assert y.shape == (1, 16, 8, 8)
    assert torch.equal(y[:, :8], x[:, :, ::2, ::2]) and torch.count_nonzero(y[:, 8:]) == 0


def test_option_a_cannot_reduce_channels_and_suggests_b_or_c():
    with pytest.raises(ConfigError) as err:
        small(block="bottleneck", skip_span=1, shortcut="A")
    assert err.value.key == "shortcut" and err.value.value == "A"
    assert "B or C" in str(err.value)


def test_shortcut_options_b_and_c():
    b = measure_summary(small(shortcut="B"))
    c = measure_summary(small(shortcut="C"))
    assert b.shortcuts.to_dict() == {"identity": 3, "zero_pad": 0, "projection": 1}
    assert c.shortcuts.to_dict() == {"identity": 0, "zero_pad": 0, "projection": 4}
    assert c.params > b.params


def test_bottleneck_skip_one_needs_projections_around_layers_that_change_shape():
    s = measure_summary(small(block="bottleneck", skip_span=1, depths=[1, 1], shortcut="B"))
    kinds = [(u.name, u.shortcut) for u in s.units]
    # stage 1: 8 -> 8 (1x1 reduce, same width), 8 -> 8 (3x3), 8 -> 32 (1x1 expand: projection)
    assert kinds[:3] == [("layer1.0", "identity"), ("layer1.1", "identity"), ("layer1.2", "projection")]
    # stage 2: 32 -> 16 reduce (projection), 3x3 stride 2 (projection), 16 -> 64 expand (projection)
    assert [k for _, k in kinds[3:]] == ["projection"] * 3
    assert s.projection_params == sum(u.shortcut_params for u in s.units) > 0


def test_resnet50_skip_one_costs_far_more_projection_parameters():
    whole = measure_summary(explorer.preset("resnet50"))
    one = measure_summary(explorer.preset("resnet50").replace(skip_span=1, name="r50s1"))
    assert one.shortcuts.projection > whole.shortcuts.projection
    assert one.projection_params > 3 * whole.projection_params


def test_spans_that_do_not_divide_a_stage_leave_a_short_last_unit_and_warn():
    cfg = small(depths=[3, 3], skip_span=4)  # 6 layers a stage -> units of 4 + 2
    s = measure_summary(cfg)
    assert [u.layers for u in s.units] == [4, 2, 4, 2]
    assert any("layer1.1 spans 2 weight layers instead of 4" in w for w in s.warnings)
    span_over_stage = measure_summary(small(depths=[1, 1], skip_span=7))
    assert [u.layers for u in span_over_stage.units] == [2, 2]


def test_bottleneck_span_two_mixes_layers_of_different_blocks():
    s = measure_summary(small(block="bottleneck", skip_span=2, depths=[2, 1], shortcut="C"))
    assert [u.layers for u in s.units] == [2, 2, 2, 2, 1]


def test_zero_init_residual_zeroes_last_bn_inside_branch():
    model = build_model(small(zero_init_residual=True)).eval()
    for stage in (model.layer1, model.layer2):
        for u in stage:
            assert torch.count_nonzero(u.bn2.weight) == 0 and torch.count_nonzero(u.bn1.weight) > 0
    # An identity unit then starts as ReLU(x): the branch contributes nothing.
    x = torch.randn(2, 8, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model.layer1[0](x.clone()), F.relu(x))
    # BN after the addition: the last BN *inside* the branch is bn1.
    b = build_model(small(zero_init_residual=True, bn_position="after_add"))
    assert torch.count_nonzero(b.layer1[0].bn1.weight) == 0
    assert torch.count_nonzero(b.layer1[0].bn2.weight) > 0


def test_zero_init_warns_where_there_is_no_bn_in_the_branch():
    s = measure_summary(small(zero_init_residual=True, bn_position="after_add", skip_span=1))
    assert any("no BN inside the branch" in w for w in s.warnings)
    s = measure_summary(small(zero_init_residual=True, skip_span=0))
    assert any("no residual branch" in w for w in s.warnings)


def test_torchvision_initialisation():
    model = build_model(small(widths=[64, 64], stem_width=64))
    w = model.layer1[0].conv1.weight  # fan_out = 64 * 3 * 3
    assert w.std().item() == pytest.approx((2.0 / (64 * 9)) ** 0.5, rel=0.1)
    assert torch.all(model.layer1[0].bn1.weight == 1) and torch.all(model.layer1[0].bn1.bias == 0)


def test_builds_on_meta_without_allocating():
    with torch.device("meta"):
        model = build_model(explorer.preset("resnet152"))
    assert all(p.is_meta for p in model.parameters())
    assert all(b.is_meta for b in model.buffers())


def test_groups_and_width_per_group():
    model = build_model(small(block="bottleneck", groups=4, width_per_group=8, shortcut="B"))
    conv = model.layer1[0].conv2
    # inner width = int(8 * 8 / 64) * 4 = 4
    assert conv.groups == 4 and conv.in_channels == 4 and conv.out_channels == 4


def test_imagenet_stem():
    model = build_model(small(stem="imagenet", input_size=64))
    assert model.conv1.kernel_size == (7, 7) and model.conv1.stride == (2, 2)
    assert isinstance(model.maxpool, nn.MaxPool2d)
    assert measure_summary(small(stem="imagenet", input_size=64)).stages[0].out_shape == (8, 16, 16)


def test_does_not_mutate_config_and_rejects_non_config():
    cfg = small()
    before = cfg.to_dict()
    build_model(cfg)
    assert cfg.to_dict() == before
    with pytest.raises(TypeError):
        build_model({"block": "basic"})
