"""The fast trace path gives the same facts as running every op: the meta build without value
initialisation (explorer.arch.meta), replayed repeated units and call wrappers
(explorer.trace_calls), and the one-pass parameter counts."""
import threading

import pytest
import torch

import explorer
from explorer.arch.builder import ResidualUnit, build_model
from explorer.arch.meta import MetaBuild, build_meta, paused_gc
from explorer.trace import count_params, trace, trace_module
from explorer.trace_calls import module_counts, unit_signature

NAMES = ["resnet18", "resnet50", "resnet110", "preact_resnet164", "plain20", "resnet50d", "seresnet50",
         "ecaresnet50d"]


def _cfgs():
    names = [n for n in NAMES if n in explorer.PRESETS]
    cfgs = [explorer.preset(n) for n in names]
    cfgs.append(explorer.preset("resnet110").replace(shortcut="A"))
    cfgs.append(explorer.preset("resnet50").replace(depths=[2, 3, 9, 2], skip_span=1))
    return cfgs


def _signature(model):
    return ([(name, type(m), m.extra_repr()) for name, m in model.named_modules()],
            [(name, p.shape, p.dtype, p.requires_grad, type(p)) for name, p in model.named_parameters()],
            [(name, b.shape, b.dtype) for name, b in model.named_buffers()], model.training)


@pytest.mark.parametrize("cfg", _cfgs(), ids=lambda c: c.name)
def test_meta_build_is_the_plain_meta_build(cfg):
    with torch.device("meta"):
        plain = build_model(cfg)
    fast = build_meta(cfg)
    assert _signature(fast) == _signature(plain)
    assert all(p.is_meta for p in fast.parameters()) and all(b.is_meta for b in fast.buffers())


@pytest.mark.parametrize("cfg", _cfgs(), ids=lambda c: c.name)
def test_replayed_units_give_the_facts_of_running_every_unit(cfg):
    trace.cache_clear()
    fast = trace(cfg)
    with torch.device("meta"):
        model = build_model(cfg)
    for m in model.modules():  # a hooked unit always runs: this trace replays nothing
        if isinstance(m, ResidualUnit):
            m.register_forward_pre_hook(lambda mod, args: None)
    slow = trace_module(model)
    assert slow == fast
    assert slow.nodes == fast.nodes and slow.peak_bytes == fast.peak_bytes


def test_repeated_units_share_a_signature_and_differing_ones_do_not():
    model = build_meta(explorer.preset("resnet50"))
    assert unit_signature(model.layer3[1]) == unit_signature(model.layer3[4])
    assert unit_signature(model.layer3[0]) != unit_signature(model.layer3[1])
    assert unit_signature(model.layer3[1]) != unit_signature(model.layer4[1])
    model.layer3[2].conv2.register_forward_hook(lambda *a: None)
    assert unit_signature(model.layer3[2]) is None


def test_a_traced_model_keeps_no_wrappers():
    with torch.device("meta"):
        model = build_model(explorer.preset("resnet20"))
    trace_module(model)
    assert not any("forward" in m.__dict__ for m in model.modules())
    assert model.training  # restored: the caller's model


def test_module_counts_equal_count_params_of_each_module():
    model = build_meta(explorer.preset("resnet50"))
    model.fc.bias.requires_grad_(False)
    counts = module_counts(model, count_params)
    assert counts.mods == list(model.named_modules())
    assert counts.params == {n: count_params(m) for n, m in model.named_modules()}
    assert counts.trainable == count_params(model, trainable_only=True) == counts.params[""] - 1000
    assert counts.buffers == sum(b.numel() for b in model.buffers() if b.is_floating_point())
    shared = torch.nn.Sequential(model.fc, model.fc)  # one module twice: counted once
    counts = module_counts(shared, count_params)
    assert counts.params == {"": count_params(shared), "0": count_params(model.fc)}
    assert counts.trainable == count_params(model.fc, trainable_only=True)
    twice = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
    twice[1].weight = twice[0].weight  # one parameter in two modules: counted once in the whole
    assert module_counts(twice, count_params).params == {"": 15, "0": 12, "1": 12}


def test_meta_build_leaves_other_threads_on_their_device():
    seen = {}
    inside, go = threading.Event(), threading.Event()

    def other():
        inside.wait(10)
        seen["x"] = torch.empty(2).device
        go.set()

    worker = threading.Thread(target=other)
    worker.start()
    cfg = explorer.preset("resnet18")
    with MetaBuild():  # held open while the other thread makes a tensor
        inside.set()
        go.wait(10)
        held = torch.empty(2)
    worker.join(10)
    assert seen["x"].type == "cpu" and held.is_meta
    assert all(p.is_meta for p in build_meta(cfg).parameters())


def test_paused_gc_restores_the_collector():
    import gc

    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def _full_signature(model):
    plain = (bool, int, float, str, tuple, list, type(None))
    mods = [(n, type(m), m.extra_repr(), sorted((k, repr(v)) for k, v in m.__dict__.items() if isinstance(v, plain)),
             sorted(m._non_persistent_buffers_set)) for n, m in model.named_modules()]  # noqa: SLF001
    return (mods, [(n, p.shape, p.dtype, p.requires_grad, type(p)) for n, p in model.named_parameters()],
            [(n, b.shape, b.dtype) for n, b in model.named_buffers()], list(model.state_dict()))


@pytest.mark.parametrize("name", ["resnet20", "resnet50", "seresnet50"])
def test_copied_units_of_a_meta_build_equal_built_ones(name):
    if name not in explorer.PRESETS:
        pytest.skip(f"no preset {name}")
    cfg = explorer.preset(name)
    built = build_model(cfg)  # on the CPU: every unit constructed
    meta = build_meta(cfg)    # repeated units copied
    assert _full_signature(meta) == _full_signature(built)
    tensors = [*meta.parameters(), *meta.buffers()]
    assert len({id(t) for t in tensors}) == len(tensors)  # nothing shared between the copies


def test_clone_meta_refuses_real_tensors_and_hooked_parts():
    from explorer.arch.clone import clone_meta

    cfg = explorer.preset("resnet20")
    assert clone_meta(build_model(cfg).layer1[1]) is None
    unit = build_meta(cfg).layer1[1]
    copy = clone_meta(unit)
    assert copy is not unit and copy.conv1 is not unit.conv1 and copy.conv1.weight is not unit.conv1.weight
    unit.conv1.register_forward_hook(lambda *a: None)
    assert clone_meta(unit) is None


def test_trace_nodes_are_the_dataclass_nodes_of_their_fields():
    import dataclasses

    from explorer.records import Node

    names = [f.name for f in dataclasses.fields(Node)]
    for node in trace(explorer.preset("seresnet50" if "seresnet50" in explorer.PRESETS else "resnet50")).nodes:
        made = Node(**{name: getattr(node, name) for name in names})
        assert list(vars(node)) == names and made == node and hash(made) == hash(node)
    with pytest.raises(KeyError):
        Node.from_record({"id": "x", "kind": "conv"})  # a record without every field makes no node


@pytest.mark.parametrize("name", ["resnet20", "resnet50", "preact_resnet164"])
def test_quick_leaf_outputs_equal_running_the_leaves(name):
    """BN, ReLU and conv of torch's own classes get their outputs without running their forward;
    the same modules as subclasses of those classes run theirs. Every fact is the same."""
    from torch import nn

    if name not in explorer.PRESETS:
        pytest.skip(f"no preset {name}")
    subclasses = {cls: type(f"Own{cls.__name__}", (cls,), {}) for cls in (nn.Conv2d, nn.BatchNorm2d, nn.ReLU)}
    model = build_meta(explorer.preset(name))
    quick = trace_module(model)
    for m in model.modules():
        if type(m) in subclasses:
            m.__class__ = subclasses[type(m)]
    ran = trace_module(model)

    def facts(t):
        return ([(n.id, n.kind, n.shape, n.in_shapes, n.inputs, n.flops, n.act_bytes, n.params) for n in t.nodes],
                t.macs, t.activation_bytes, t.peak_bytes)
    assert facts(ran) == facts(quick)
