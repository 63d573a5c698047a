"""Published figures (torchvision's model documentation, the papers' tables, the authors' code: each
table below names its source) against the models the builder makes.

Full-size presets are built on the meta device, so no weights are allocated.
"""
import pytest
import torch

import explorer
import preact_reference
from explorer.facts.summary import measure_summary

# name: (params, GMACs at 224x224), torchvision's model documentation
TORCHVISION = {
    "resnet18": (11_689_512, 1.814),
    "resnet34": (21_797_672, 3.664),
    "resnet50": (25_557_032, 4.089),
    "resnet101": (44_549_160, 7.801),
    "resnet152": (60_192_808, 11.514),
    "resnext50_32x4d": (25_028_904, 4.230),
    "resnext101_32x8d": (88_791_336, 16.414),
    "wide_resnet50_2": (68_883_240, 11.398),
    "wide_resnet101_2": (126_886_696, 22.753),
}
# state_dict entries (incl. BN buffers) / parameter tensors
STATE_DICT_SIZES = {
    "resnet18": (122, 62),
    "resnet34": (218, 110),
    "resnet50": (320, 161),
    "resnet101": (626, 314),
    "resnet152": (932, 467),
}
# He et al. 2015, Table 1: multiply-adds (1e9), stride on the first conv of a stage.
PAPER_GMACS = {
    "resnet18_paper": 1.8,
    "resnet34_paper": 3.6,
    "resnet50_paper": 3.8,
    "resnet101_paper": 7.6,
    "resnet152_paper": 11.3,
}
# He et al. 2015, CIFAR-10 (option A): exact params, MACs at 32x32 in millions
CIFAR = {
    "resnet20": (269_722, 40.6),
    "resnet32": (464_154, 68.9),
    "resnet44": (658_586, 97.2),
    "resnet56": (853_018, 125.5),
    "resnet110": (1_727_962, 252.9),
    "resnet1202": (19_421_274, 2829.0),
}


def meta_model(name):
    with torch.device("meta"):
        return explorer.build_model(explorer.preset(name))


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_params_and_macs(name):
    params, gmacs = TORCHVISION[name]
    s = measure_summary(explorer.preset(name))
    assert s.params == params
    assert s.trainable_params == params
    assert round(s.macs / 1e9, 3) == gmacs
    assert s.output_shape == (1, 1000)


@pytest.mark.parametrize("name", STATE_DICT_SIZES)
def test_torchvision_state_dict_sizes(name):
    entries, tensors = STATE_DICT_SIZES[name]
    model = meta_model(name)
    assert len(model.state_dict()) == entries
    assert len(list(model.parameters())) == tensors


def torchvision_keys(block, depths, stem=True):
    """torchvision's resnet state_dict keys, written out from its documented layout."""
    convs = 2 if block == "basic" else 3
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = ["conv1.weight"] + [f"bn1.{k}" for k in bn]
    for i, depth in enumerate(depths):
        for j in range(depth):
            p = f"layer{i + 1}.{j}"
            for c in range(1, convs + 1):
                keys += [f"{p}.conv{c}.weight"] + [f"{p}.bn{c}.{k}" for k in bn]
            if j == 0 and (i > 0 or block == "bottleneck"):
                keys += [f"{p}.downsample.0.weight"] + [f"{p}.downsample.1.{k}" for k in bn]
    return keys + ["fc.weight", "fc.bias"]


@pytest.mark.parametrize("name,block,depths", [
    ("resnet18", "basic", [2, 2, 2, 2]),
    ("resnet34", "basic", [3, 4, 6, 3]),
    ("resnet50", "bottleneck", [3, 4, 6, 3]),
    ("resnext101_32x8d", "bottleneck", [3, 4, 23, 3]),
    ("wide_resnet50_2", "bottleneck", [3, 4, 6, 3]),
])
def test_torchvision_state_dict_names(name, block, depths):
    model = meta_model(name)
    assert sorted(model.state_dict()) == sorted(torchvision_keys(block, depths))


def test_resnext_and_wide_shapes_match_torchvision():
    sd = meta_model("resnext50_32x4d").state_dict()
    assert tuple(sd["layer1.0.conv2.weight"].shape) == (128, 4, 3, 3)  # 32 groups x 4 wide
    assert tuple(sd["layer4.2.conv3.weight"].shape) == (2048, 1024, 1, 1)
    sd = meta_model("wide_resnet50_2").state_dict()
    assert tuple(sd["layer1.0.conv2.weight"].shape) == (128, 128, 3, 3)
    assert tuple(sd["layer1.0.downsample.0.weight"].shape) == (256, 64, 1, 1)


def test_a_torchvision_layout_checkpoint_loads_strict_and_computes_the_same():
    """A checkpoint of an independently written torchvision-layout ResNet-50 (random weights and
    BN statistics) loads strictly into our build, and both compute the same function."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from reference_resnet50 import ReferenceResNet50

    torch.manual_seed(0)
    ref = ReferenceResNet50().eval()
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial statistics: buffers must land right
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    ours = explorer.build_model(explorer.preset("resnet50")).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)  # (B, C, H, W)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", PAPER_GMACS)
def test_paper_table1_flops(name):
    """Table 1 rounds to one decimal; its ResNet-50 figure (3.8) is below the exact 3.86."""
    s = measure_summary(explorer.preset(name))
    assert s.macs / 1e9 == pytest.approx(PAPER_GMACS[name], rel=0.02)


def test_paper_stride_sits_on_first_conv():
    paper, v15 = meta_model("resnet50_paper"), meta_model("resnet50")
    assert paper.layer2[0].conv1.stride == (2, 2) and paper.layer2[0].conv2.stride == (1, 1)
    assert v15.layer2[0].conv1.stride == (1, 1) and v15.layer2[0].conv2.stride == (2, 2)
    # v1.5 costs more: the 3x3 runs at the higher resolution of the stage before.
    assert measure_summary(explorer.preset("resnet50")).macs > measure_summary(
        explorer.preset("resnet50_paper")).macs


@pytest.mark.parametrize("name", CIFAR)
def test_cifar_params_and_macs(name):
    params, mmacs = CIFAR[name]
    s = measure_summary(explorer.preset(name))
    assert s.params == params
    assert s.macs / 1e6 == pytest.approx(mmacs, abs=0.05 if mmacs < 1000 else 0.5)
    assert s.output_shape == (1, 10)
    assert s.shortcuts.projection == 0  # option A: parameter-free shortcuts
    assert s.depth == int(name.removeprefix("resnet"))


def test_wide_resnet_28_10_params():
    # Paper: 36.5M; exactly 36,479,194 in the authors' structure (pre-activation, the stem's
    # BN-ReLU shared by the first unit, bare 1x1 projections), as osmr/imgclsmob's table lists it.
    assert measure_summary(explorer.preset("wrn28_10")).params == 36_479_194


def test_plain_nets_have_no_shortcuts_and_match_depth():
    for name, depth in [("plain18", 18), ("plain34", 34), ("plain20", 20), ("plain56", 56)]:
        s = measure_summary(explorer.preset(name))
        assert s.residual_units == 0 and s.units == ()
        assert s.depth == depth


# Pre-activation networks as their authors built them: exact parameter counts of the code named per line.
PREACT = {
    "preact_resnet110": 1_727_962,     # fb.resnet.torch preresnet.lua, CIFAR-10, option A
    "preact_resnet164": 1_703_258,     # KaimingHe/resnet-1k-layers resnet-pre-act.lua
    "preact_resnet1001": 10_327_706,   # same code, 111 units a stage (paper: 10.2M)
    "preact_resnet50": 25_549_352,     # timm resnetv2_50
    "preact_resnet101": 44_541_480,    # timm resnetv2_101
    "preact_resnet152": 60_185_128,    # timm resnetv2_152
}


@pytest.mark.parametrize("name", PREACT)
def test_preact_params_match_the_authors_code(name):
    s = measure_summary(explorer.preset(name))
    assert s.params == PREACT[name] == explorer.PRESET_INFO[name].params
    assert s.output_shape == (1, explorer.preset(name).num_classes)


def test_preact_presets():
    s110 = measure_summary(explorer.preset("preact_resnet110"))
    s164 = measure_summary(explorer.preset("preact_resnet164"))
    s1001 = measure_summary(explorer.preset("preact_resnet1001"))
    assert (s110.depth, s164.depth, s1001.depth) == (110, 164, 1001)
    m = meta_model("preact_resnet110")
    assert m.final_bn is not None and m.final_relu is not None
    # The stem's BN-ReLU is the first unit's pre-activation; projections are bare 1x1 convs.
    m = meta_model("preact_resnet164")
    assert not hasattr(m.layer1[0], "bn1") and isinstance(m.layer1[1].bn1, torch.nn.BatchNorm2d)
    assert len(m.layer2[0].downsample) == 1 and m.layer2[0].downsample[0].bias is None
    # resnet-pre-act.lua puts the stage's stride on the first 1x1; timm's resnetv2 on the 3x3.
    assert m.layer2[0].conv1.stride == (2, 2) and m.layer2[0].conv2.stride == (1, 1)
    m = meta_model("preact_resnet50")
    assert m.layer2[0].conv1.stride == (1, 1) and m.layer2[0].conv2.stride == (2, 2)


def _copy_by_position(src, dst):
    """Copy src's state_dict into dst entry by entry in registration order (both networks
    register each layer's modules in execution order); shapes must agree everywhere."""
    src_sd, dst_sd = src.state_dict(), dst.state_dict()
    assert len(src_sd) == len(dst_sd)
    with torch.no_grad():
        for (ks, vs), (kd, vd) in zip(src_sd.items(), dst_sd.items()):
            assert vs.shape == vd.shape, (ks, kd)
            vd.copy_(vs)


@pytest.mark.parametrize("name,make_reference", [
    ("preact_resnet110", lambda: preact_reference.FbPreResNetCifar(110)),
    ("preact_resnet164", lambda: preact_reference.PreActResNet1k(164)),
])
def test_preact_presets_compute_the_authors_network(name, make_reference):
    """A transcription of the authors' Torch code (random weights and BN statistics) and our
    preset compute the same function once the weights are copied across by position."""
    torch.manual_seed(0)
    ref = make_reference()
    assert sum(p.numel() for p in ref.parameters()) == PREACT[name]
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    ref.eval()
    ours = explorer.build_model(explorer.preset(name)).eval()
    _copy_by_position(ref, ours)
    x = torch.randn(2, 3, 32, 32)  # (B, C, H, W)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-4)


def test_resnet_1001_transcription_has_the_published_size():
    with torch.device("meta"):
        ref = preact_reference.PreActResNet1k(1001)
    assert sum(p.numel() for p in ref.parameters()) == PREACT["preact_resnet1001"]


def test_every_preset_carries_its_source_and_builds_on_meta():
    for name, cfg in explorer.PRESETS.items():
        assert cfg.name == name
        assert explorer.PRESET_INFO[name].source
        s = measure_summary(cfg)
        assert s.output_shape == (1, cfg.num_classes)
        assert s.published.preset == name
