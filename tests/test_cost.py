"""Cost figures: receptive fields from the architecture tables, memory from traced shapes."""
import pytest
import torch
from torch import nn

import explorer
from explorer import ArchConfig, ConfigError
from explorer.facts.costs import measure_costs
from explorer.facts.results import Costs, ReceptiveField, ShortcutCounts, Summary
from explorer.facts.summary import measure_summary
from explorer.trace import trace_memory


def tiny(**kw) -> ArchConfig:
    base = dict(name="tiny", stem="cifar", stem_width=8, widths=[8], depths=[1], input_size=8, num_classes=10)
    base.update(kw)
    return ArchConfig.from_dict(base)


def fields(name):
    return [(r.name, r.receptive_field, r.jump) for r in measure_costs(explorer.preset(name)).receptive_field]


# Worked by hand from the layer tables, r += (k - 1) * j, j *= stride:
# ResNet-18 (torchvision, stride on the first 3x3 of a stage): 7x7/2 conv -> r 7, j 2; 3x3/2 pool -> 11, 4;
# layer1: four 3x3 at j 4 -> 43; layer2: 3x3/2 -> 51 (j 8), three 3x3 -> 99; layer3 -> 115 (j 16) -> 211;
# layer4 -> 243 (j 32) -> 435.
def test_resnet18_stage_receptive_fields():
    assert fields("resnet18") == [("stem", 11, 4), ("layer1", 43, 4), ("layer2", 99, 8), ("layer3", 211, 16),
                                  ("layer4", 435, 32)]


# ResNet-50 of the 2015 paper (stride on the first 1x1): only the 3x3s grow the field.
# layer1: 3 x 2 x 4 -> 35; layer2: 1x1/2 (j 8), 4 x 16 -> 99; layer3: j 16, 6 x 32 -> 291;
# layer4: j 32, 3 x 64 -> 483 (the figure Araujo et al., Distill 2019, list for ResNet-50 v1).
def test_resnet50_paper_receptive_fields():
    assert [rf for _, rf, _ in fields("resnet50_paper")] == [11, 35, 99, 291, 483]


# CIFAR ResNet-20 (He et al. 2015 Sec. 4.2): 3x3 stem -> 3; 6 convs at j 1 -> 15;
# 3x3/2 -> 17 (j 2), 5 more -> 37; 3x3/2 -> 41 (j 4), 5 more -> 81.
def test_resnet20_receptive_fields():
    assert fields("resnet20") == [("stem", 3, 1), ("layer1", 15, 1), ("layer2", 37, 2), ("layer3", 81, 4)]


def test_depth_and_shortcut_counts():
    r18 = measure_costs(explorer.preset("resnet18"))
    assert (r18.depth, r18.residual_units, r18.projections) == (18, 8, 3)
    r50 = measure_costs(explorer.preset("resnet50"))
    assert (r50.depth, r50.residual_units, r50.projections) == (50, 16, 4)
    r20 = measure_costs(explorer.preset("resnet20"))
    assert r20.shortcuts == ShortcutCounts(identity=7, zero_pad=2, projection=0)
    plain = measure_costs(explorer.preset("plain18"))
    assert (plain.depth, plain.residual_units) == (18, 0)
    skip1 = measure_costs(explorer.preset("resnet50").replace(skip_span=1))
    assert skip1.residual_units == 50 - 2 and skip1.projections > 4


def test_activation_memory_of_a_tiny_net_within_hand_bounds():
    c = measure_costs(tiny())
    # 3 convs and 3 BNs each write 8x8x8 floats, the fc 10; ReLUs, the add and the pool may add
    # at most 3 + 1 maps of 512 and 8 values (in place ones add nothing).
    lower = (6 * 512 + 10) * 4
    upper = lower + (4 * 512 + 8) * 4
    assert lower <= c.activation_bytes <= upper
    assert c.input_bytes == 3 * 8 * 8 * 4
    assert c.input_bytes + 512 * 4 <= c.peak_bytes <= c.activation_bytes + c.input_bytes


def test_meta_estimate_matches_a_real_forward():
    cfg = tiny(depths=[2], widths=[16], input_size=16)
    model = explorer.build_model(cfg).eval()
    real = trace_memory(model, (1, 3, 16, 16), device="cpu")
    c = measure_costs(cfg)
    assert c.activation_bytes == real["activation_bytes"]
    assert c.peak_bytes == real["peak_bytes"]


@pytest.mark.parametrize("name", ["resnet20", "resnet18"])
def test_activation_memory_grows_with_batch_and_dtype(name):
    cfg = explorer.preset(name)
    by_batch = [measure_costs(cfg, b) for b in (1, 2, 8, 32)]
    acts = [c.activation_bytes for c in by_batch]
    assert acts == sorted(acts) and len(set(acts)) == 4
    assert acts[2] == 8 * acts[0]
    assert by_batch[3].peak_bytes > by_batch[0].peak_bytes
    half = measure_costs(cfg, 8, dtype="bf16")
    assert half.activation_bytes * 2 == acts[2]
    assert half.weight_bytes * 2 == by_batch[0].weight_bytes


def test_costs_are_frozen_records_shared_safely():
    a = measure_costs(explorer.preset("resnet20"))
    with pytest.raises(AttributeError):
        a.peak_bytes = -1
    assert a.receptive_field[0] == ReceptiveField("stem", 3, 1)
    doc = a.to_dict()
    doc["receptive_field"][0]["receptive_field"] = -1
    doc["shortcuts"]["identity"] = -1
    b = measure_costs(explorer.preset("resnet20"))
    assert b.receptive_field[0].receptive_field == 3 and b.shortcuts.identity == 7


def _valid_sample():
    from outputs_snapshot import variant_dicts

    for d in variant_dicts(20):
        try:
            yield ArchConfig.from_dict(d)
        except ConfigError:
            pass


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet20", "plain20", "preact_resnet164",
                                  "resnext50_32x4d", "wide_resnet50_2", "resnet110_skip1"])
def test_results_read_back_from_their_json(name):
    """The JSON documents are the records' whole content: from_dict(to_dict(x)) == x."""
    import json

    for cfg in [explorer.preset(name), *(_valid_sample() if name == "resnet18" else ())]:
        s, c = measure_summary(cfg), measure_costs(cfg, 4, "bf16")
        assert Summary.from_dict(json.loads(json.dumps(s.to_dict()))) == s
        assert Costs.from_dict(json.loads(json.dumps(c.to_dict()))) == c
        assert c.residual_units == s.residual_units == s.shortcuts.total == len(s.units)
        assert (s.published is not None) == (cfg.name == name)


def test_summary_document_keys_and_types():
    """`summary --json` keeps its documented keys, each as plain JSON (lists, not tuples)."""
    doc = measure_summary(explorer.preset("resnet50")).to_dict()
    assert list(doc)[:3] == ["config", "name", "params"] and doc["name"] == "resnet50"
    assert doc["output_shape"] == [1, 1000] and doc["units"][0]["in_shape"] == [64, 56, 56]
    assert doc["shortcuts"] == {"identity": 12, "zero_pad": 0, "projection": 4}
    assert doc["published"]["preset"] == "resnet50" and doc["published"]["params"] == 25_557_032


@pytest.mark.parametrize("kw, key", [(dict(batch=0), "batch"), (dict(batch="8"), "batch"),
                                     (dict(dtype="fp64"), "dtype")])
def test_bad_settings(kw, key):
    with pytest.raises(ConfigError) as info:
        measure_costs(tiny(), **kw)
    assert info.value.key == key


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_measured_cuda_peak():
    from explorer.timing import measure_cuda_peak

    c = measure_costs(explorer.preset("resnet18"), 8)
    peak, device = measure_cuda_peak(explorer.preset("resnet18"), 8, "fp32")
    assert peak > 0 and "GiB" in device
    # The estimate and the allocator's peak should be of one order (cudnn workspaces differ).
    assert 0.2 < peak / c.peak_bytes < 10
