"""timm's ResNet refinements: deep stems, average-pool projections (ResNet-D), SE and ECA.

Golden parameter counts are timm 1.0's; timm_reference.py is an independent transcription of
timm's ResNet whose state_dicts load into ours (and ours into it) with strict=True, no renaming,
and give the same outputs."""
import pytest
import torch

import explorer
import timm_reference
from explorer import ArchConfig, ConfigError
from explorer.arch.config import parse_value
from explorer.arch.plan import eca_kernel, make_plan, se_width
from explorer.arch.presets import matching_preset
from explorer.facts.limits import estimate
from explorer.facts.summary import measure_summary
from explorer.trace import shortcut_pooled, trace

# timm 1.0: sum(p.numel() for p in timm.create_model(name).parameters())
TIMM_PARAMS = {
    "resnet18d": 11_708_744,
    "resnet34d": 21_816_904,
    "resnet26d": 16_014_408,
    "resnet50c": 25_576_264,
    "resnet50d": 25_576_264,
    "resnet50s": 25_680_808,
    "resnet50t": 25_573_728,
    "resnet101d": 44_568_392,
    "resnet152d": 60_212_040,
    "seresnet50": 28_088_024,
    "seresnext50_32x4d": 27_559_896,
    "ecaresnet50d": 25_576_350,
}


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list(TIMM_PARAMS))
def test_timm_parameter_counts(name):
    cfg = explorer.preset(name)
    assert measure_summary(cfg).params == TIMM_PARAMS[name]
    assert estimate(cfg, make_plan(cfg)).params == TIMM_PARAMS[name]
    assert explorer.PRESET_INFO[name].params == TIMM_PARAMS[name]
    assert "timm 1.0" in explorer.PRESET_INFO[name].source
    with torch.device("meta"):
        assert _params(timm_reference.create_model(name)) == TIMM_PARAMS[name]


@pytest.mark.parametrize("name", list(TIMM_PARAMS))
def test_state_dict_names_and_shapes_are_timms(name):
    with torch.device("meta"):
        ours = explorer.build_model(explorer.preset(name)).state_dict()
        ref = timm_reference.create_model(name).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in ref.items()}


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Random weights and BN statistics, scaled so a deep stack keeps finite, varied outputs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif name.endswith(("running_mean", "bias")):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
            elif t.dim() == 1:  # BN gamma
                t.copy_(torch.rand(t.shape, generator=gen) * 0.5 + 0.5)
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=gen) * (1.0 / fan_in) ** 0.5)


LOADED = ["resnet18d", "resnet26d", "resnet50s", "resnet50t", "seresnext50_32x4d", "ecaresnet50d"]


@pytest.mark.parametrize("name", LOADED)
def test_a_timm_state_dict_loads_strict_and_computes_the_same(name):
    torch.manual_seed(0)
    ref = timm_reference.create_model(name, num_classes=10)
    _randomise(ref, seed=1)
    ours = explorer.build_model(explorer.preset(name).replace(num_classes=10, input_size=64))
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    ref.eval(), ours.eval()
    with torch.no_grad():
        want, got = ref(x), ours(x)
    assert want.std() > 1e-3  # the outputs vary: the comparison means something
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["resnet34d", "seresnet50", "resnet50c"])
def test_our_state_dict_loads_into_timms_and_computes_the_same(name):
    torch.manual_seed(3)
    ours = explorer.build_model(explorer.preset(name).replace(num_classes=7, input_size=64))
    _randomise(ours, seed=4)
    ref = timm_reference.create_model(name, num_classes=7)
    ref.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    ref.eval(), ours.eval()
    with torch.no_grad():
        want, got = ref(x), ours(x)
    assert want.std() > 1e-3
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_a_deep_stem_widths_and_its_tiered_form():
    plan = make_plan(explorer.preset("resnet50d"))
    assert plan.stem.convs == ((3, 32), (32, 32), (32, 64)) and plan.stem.kernel == 3
    assert make_plan(explorer.preset("resnet50t")).stem.convs == ((3, 24), (24, 32), (32, 64))
    assert make_plan(explorer.preset("resnet50s")).stem.convs == ((3, 64), (64, 64), (64, 128))
    model = explorer.build_model(explorer.preset("resnet50d"))
    assert [type(m).__name__ for m in model.conv1] == ["Conv2d", "BatchNorm2d", "ReLU"] * 2 + ["Conv2d"]
    assert model.conv1[0].stride == (2, 2) and model.conv1[3].stride == (1, 1)


def test_a_deep_stem_without_bn_keeps_its_indices_and_has_biases():
    cfg = explorer.preset("resnet50d").replace(bn_position="none", depths=[1, 1], widths=[8, 8])
    model = explorer.build_model(cfg)
    assert isinstance(model.conv1[1], torch.nn.Identity) and isinstance(model.conv1[4], torch.nn.Identity)
    assert model.conv1[6].bias is not None
    est, s = estimate(cfg, make_plan(cfg)), measure_summary(cfg)
    assert (est.params, est.macs, est.weight_layers) == (s.params, s.macs, s.depth)


def test_cifar_deep_stem_keeps_stride_1():
    cfg = explorer.preset("resnet20").replace(stem_type="deep", stem_width=16)
    model = explorer.build_model(cfg)
    assert model.conv1[0].stride == (1, 1) and model.maxpool is None
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_avg_down_projection_layout():
    model = explorer.build_model(explorer.preset("resnet50d"))
    first, strided = model.layer1[0].downsample, model.layer2[0].downsample
    assert isinstance(first[0], torch.nn.Identity) and first[1].stride == (1, 1)
    pool = strided[0]
    assert isinstance(pool, torch.nn.AvgPool2d)
    assert (pool.kernel_size, pool.stride, pool.ceil_mode, pool.count_include_pad) == (2, 2, True, False)
    assert strided[1].stride == (1, 1) and isinstance(strided[2], torch.nn.BatchNorm2d)
    # without avg_down the projection is today's conv + BN at indices 0, 1
    plain = explorer.build_model(explorer.preset("resnet50c")).layer2[0].downsample
    assert plain[0].stride == (2, 2) and isinstance(plain[1], torch.nn.BatchNorm2d)


@pytest.mark.parametrize("size", [33, 35, 64, 65])
def test_avg_down_odd_sizes_add_up(size):
    """The ceil-mode pool leaves the side the strided 3x3 leaves, at odd sides too."""
    cfg = explorer.preset("resnet18d").replace(input_size=size, num_classes=3)
    model = explorer.build_model(cfg).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, size, size)).shape == (1, 3)
    t = trace(cfg)
    assert all(u.in_shape and u.out_shape for u in t.units)


def test_se_and_eca_widths_follow_timm():
    assert [se_width(c) for c in (64, 128, 256, 512, 1024, 2048)] == [8, 8, 16, 32, 64, 128]
    assert se_width(200) == 16  # 12.5 + 4 -> 16
    assert [eca_kernel(c) for c in (64, 256, 512, 1024, 2048)] == [3, 5, 5, 5, 7]
    assert eca_kernel(8) == 3
    model = explorer.build_model(explorer.preset("seresnet50"))
    se = model.layer1[0].se
    assert (se.fc1.in_channels, se.fc1.out_channels, se.fc2.out_channels) == (256, 16, 256)
    assert se.fc1.bias is not None and isinstance(se.bn, torch.nn.Identity)
    eca = explorer.build_model(explorer.preset("ecaresnet50d")).layer4[0].se.conv
    assert isinstance(eca, torch.nn.Conv1d) and eca.kernel_size == (7,) and eca.padding == (3,) and eca.bias is None


def test_trace_records_the_new_ops():
    t = trace(explorer.preset("seresnet50"))
    ops = [n for n in t.nodes if n.unit == "layer2.0" and n.role == "attention"]
    assert [n.kind for n in ops] == ["squeeze", "conv", "relu", "conv", "sigmoid", "mul"]
    squeeze, fc1, _, fc2, gate, mul = ops
    assert squeeze.shape == (512, 1, 1) and fc1.shape == (32, 1, 1) and gate.shape == (512, 1, 1)
    assert mul.shape == (512, 28, 28) and mul.inputs == ("layer2.0.bn3", gate.id)
    assert fc1.macs == 512 * 32 and fc2.macs == 32 * 512 and squeeze.macs == gate.macs == mul.macs == 0
    assert fc1.params == 512 * 32 + 32
    unit = t.unit("layer2.0")
    assert unit.layers == 3 and t.by_id[unit.add].inputs[0] == mul.id
    assert t.depth == 50  # the SE convs are no weight layers of the network's depth


def test_trace_records_eca_and_the_pooled_shortcut():
    t = trace(explorer.preset("ecaresnet50d"))
    ops = [n for n in t.nodes if n.unit == "layer4.0" and n.role == "attention"]
    assert [n.kind for n in ops] == ["squeeze", "conv", "sigmoid", "mul"]
    conv = ops[1]
    assert conv.params == 7 and conv.kernel == 7 and conv.macs == 7 * 2048 and conv.inputs == (ops[0].id,)
    assert ops[2].inputs == (conv.id,) and ops[3].inputs[1] == ops[2].id  # views pass the producer
    pool = t.by_id["layer2.0.downsample.0"]
    assert (pool.kind, pool.role, pool.shape, pool.kernel, pool.stride) == ("pool", "shortcut", (256, 28, 28), 2, 2)
    assert pool.label == "avg pool 2x2, /2"
    assert t.by_id["layer2.0.downsample.1"].inputs == (pool.id,)
    unit = t.unit("layer2.0")
    assert unit.shortcut == "projection" and shortcut_pooled(t, unit) and shortcut_pooled(t, "layer2.0")
    assert not shortcut_pooled(t, "layer1.0")  # a stride-1 projection: no pool
    assert "average-pooled" in unit.reason
    assert [n.kind for n in t.nodes if n.role == "stem"][:7] == ["conv", "bn", "relu"] * 2 + ["conv"]
    assert t.depth == 52 and unit.layers == 3
    assert not shortcut_pooled(trace(explorer.preset("resnet50")), "layer2.0")


@pytest.mark.parametrize("changes,key", [
    (dict(stem_type="deep", stem_width=6), "stem_width"),
    (dict(stem_type="deep_tiered", stem_width=65), "stem_width"),
    (dict(stem_type="wide"), "stem_type"),
    (dict(avg_down=True, shortcut="A"), "avg_down"),
    (dict(avg_down=True, skip_span=0), "avg_down"),
    (dict(avg_down="yes"), "avg_down"),
    (dict(attention="cbam"), "attention"),
    (dict(attention=1), "attention"),
])
def test_invalid_timm_keys_raise_config_error(changes, key):
    with pytest.raises(ConfigError) as err:
        explorer.preset("resnet18").replace(**changes)
    assert err.value.key == key and str(changes[key] if key in changes else "") in str(err.value)


def test_defaults_build_todays_networks_and_keys_round_trip():
    cfg = explorer.preset("resnet50")
    assert (cfg.stem_type, cfg.avg_down, cfg.attention) == ("single", False, "none")
    assert "stem_type" not in cfg.arch_key()  # stored results keep their keys
    d = explorer.preset("ecaresnet50d")
    assert ArchConfig.from_dict(d.to_dict()) == d and ArchConfig.from_json(d.to_json()) == d
    assert ArchConfig.from_query(d.to_query()) == d
    assert parse_value("avg_down", "true") is True and parse_value("stem_type", "deep") == "deep"
    assert cfg.replace(stem_type="deep", avg_down=True).replace(name="resnet50d") == explorer.preset("resnet50d")
    assert matching_preset(cfg.replace(stem_type="deep", avg_down=True)) == "resnet50d"


def test_attention_on_a_plain_network_and_preactivation_units():
    for changes in (dict(skip_span=0, attention="se"), dict(bn_position="before_conv", relu_position="before_conv",
                                                          attention="eca", avg_down=True)):
        cfg = explorer.preset("resnet18").replace(input_size=64, num_classes=5, **changes)
        model = explorer.build_model(cfg).eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)
        est, s = estimate(cfg, make_plan(cfg)), measure_summary(cfg)
        assert (est.params, est.macs, est.weight_layers) == (s.params, s.macs, s.depth)
        assert all(u.layers == 2 for u in trace(cfg).units)


def test_training_step_runs_with_every_new_module():
    cfg = explorer.preset("ecaresnet50d").replace(depths=[1, 1], widths=[8, 16], stem_width=16, input_size=32,
                                                  num_classes=3, attention="se")
    model = explorer.build_model(cfg)
    loss = model(torch.randn(2, 3, 32, 32)).sum()
    loss.backward()  # in-place ops after the gate leave autograd intact
    assert all(p.grad is not None for p in model.parameters())


def test_sidebar_has_the_new_keys_with_help_and_the_presets_set_them():
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=180).run()
    assert not at.exception
    assert at.selectbox(key="cfg_stem_type").value == "single"
    assert at.selectbox(key="cfg_attention").value == "none"
    assert at.checkbox(key="cfg_avg_down").value is False
    for key in ("cfg_stem_type", "cfg_attention", "cfg_bn_position", "cfg_relu_position"):
        assert at.selectbox(key=key).help
    assert "ResNet-D" in at.checkbox(key="cfg_avg_down").help
    at.selectbox(key="preset").select("ecaresnet50d").run()
    assert not at.exception
    assert at.selectbox(key="cfg_stem_type").value == "deep" and at.checkbox(key="cfg_avg_down").value is True
    assert at.selectbox(key="cfg_attention").value == "eca"
    at.selectbox(key="cfg_attention").select("none").run()  # now resnet50d's network: the box says so
    assert at.selectbox(key="preset").value == "resnet50d" and at.text_input(key="cfg_name").value == "resnet50d"
    at.checkbox(key="cfg_avg_down").uncheck().run()
    at.selectbox(key="cfg_shortcut").select("A").run()  # avg_down off: option A is valid
    assert not at.exception
    at.checkbox(key="cfg_avg_down").check().run()  # with option A: the error shows beside the widget
    assert any("avg_down" in e.value for e in at.error)


def test_attention_convs_leave_the_receptive_field_alone():
    from explorer.facts.costs import trace_receptive_fields

    eca, plain = (trace_receptive_fields(trace(explorer.preset(n))) for n in ("ecaresnet50d", "resnet50d"))
    assert eca == plain and eca[0].receptive_field == 15  # deep stem: 3x3/2 -> 3x3 -> 3x3, then the max-pool


def test_summary_headline_names_the_timm_keys_only_where_set():
    import io

    from explorer.cli.summary import print_summary

    out = io.StringIO()
    print_summary(measure_summary(explorer.preset("ecaresnet50d")), out)
    assert out.getvalue().splitlines()[0].endswith("shortcut B, stem deep, avg_down, attention eca")
    out = io.StringIO()
    print_summary(measure_summary(explorer.preset("resnet50")), out)
    assert out.getvalue().splitlines()[0].endswith("shortcut B")


def test_init_is_torchvisions_for_the_new_convs():
    model = explorer.build_model(explorer.preset("seresnet50").replace(depths=[1, 1, 1, 1]))
    se = model.layer1[0].se
    assert torch.count_nonzero(se.fc1.bias) == 0 and se.fc1.weight.std() > 0
    assert model.conv1.weight.std() > 0
    stem = explorer.build_model(explorer.preset("resnet50d").replace(depths=[1, 1, 1, 1])).conv1
    assert torch.all(stem[1].weight == 1) and torch.all(stem[1].bias == 0)
