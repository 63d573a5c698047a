"""The one trace: per-op facts add up to the network's, and every view reads the same pass."""
import pytest

import explorer
from explorer import diagram
from explorer.compare import compare_table
from explorer.facts.costs import measure_costs
from explorer.facts.summary import measure_summary
from explorer.trace import trace


def test_per_op_facts_of_resnet50():
    t = trace(explorer.preset("resnet50"))
    conv = t.by_id["layer1.0.conv1"]
    assert (conv.kind, conv.unit, conv.stage, conv.role) == ("conv", "layer1.0", "layer1", "branch")
    assert conv.params == 64 * 64  # 1x1, 64 -> 64, no bias
    assert conv.in_shapes == ((64, 56, 56),) and conv.shape == (64, 56, 56)
    assert conv.macs == 64 * 64 * 56 * 56
    assert conv.act_bytes == 64 * 56 * 56 * 4  # one fresh fp32 output
    proj = t.by_id["layer1.0.downsample.0"]
    assert proj.role == "shortcut" and proj.params == 64 * 256
    relu = t.by_id["layer1.0.relu3"]  # after the addition, in place
    assert relu.role == "post" and relu.act_bytes == 0 and relu.macs == 0
    add = t.by_id["layer1.0.add"]
    assert add.role == "add" and set(add.inputs) == {"layer1.0.bn3", "layer1.0.downsample.1"}


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet20", "preact_resnet164", "plain18"])
def test_nodes_add_up_to_the_network(name):
    cfg = explorer.preset(name)
    t, s, c = trace(cfg), measure_summary(cfg), measure_costs(cfg)
    leaf_params = sum(n.params for n in t.nodes)
    assert leaf_params == s.params == t.params
    assert sum(n.macs for n in t.nodes) == s.macs
    assert sum(n.act_bytes for n in t.nodes) == c.activation_bytes
    for stage in s.stages:
        assert sum(n.macs for n in t.nodes if n.stage == stage.name) == stage.macs
    units = {u.name: u for u in t.units}
    for u in s.units:
        shortcut = [n for n in t.nodes if n.unit == u.name and n.role == "shortcut"]
        assert sum(n.params for n in shortcut) == u.shortcut_params == units[u.name].shortcut_params


def test_every_view_reads_one_trace_per_config():
    cfg = explorer.preset("resnet34").replace(name="one_pass", skip_span=1)
    trace.cache_clear()
    measure_summary(cfg)
    measure_costs(cfg, batch=4, dtype="bf16")
    for detail in diagram.DETAILS:
        diagram.build_graph(cfg, detail)
    diagram.build_unit_figure(cfg)
    diagram.equation(cfg, "layer2.0")
    compare_table([cfg])
    assert trace.cache_info().misses == 1


def test_the_trace_records_only_the_vocabulary():
    """Kinds, roles and shortcut kinds are the vocabulary's Literal types, and every preset's
    trace stays inside them (a new op kind or role must be named there first)."""
    import typing

    from explorer.records import Node, Unit
    from explorer.vocab import NODE_KINDS, ROLES, SHORTCUT_KINDS, NodeKind, Role, ShortcutKind

    hints, unit_hints = typing.get_type_hints(Node), typing.get_type_hints(Unit)
    assert (hints["kind"], hints["role"], unit_hints["shortcut"]) == (NodeKind, Role, ShortcutKind)
    assert "zero_pad" in NODE_KINDS and "pre" in ROLES and SHORTCUT_KINDS[-1] == "none"
    kinds, roles, shortcuts = set(), set(), set()
    for name in explorer.PRESETS:
        t = trace(explorer.preset(name))
        kinds |= {n.kind for n in t.nodes}
        roles |= {n.role for n in t.nodes}
        shortcuts |= {u.shortcut for u in t.units}
    assert kinds <= set(NODE_KINDS) and roles <= set(ROLES) and shortcuts <= set(SHORTCUT_KINDS)
    assert {"conv", "zero_pad", "add"} <= kinds and {"pre", "post", "shortcut"} <= roles


def test_a_conv_records_its_groups():
    t = trace(explorer.preset("resnext50_32x4d"))
    assert t.by_id["layer1.0.conv2"].groups == 32 and t.by_id["layer1.0.conv1"].groups == 1
    assert t.by_id["layer1.0.conv2"].label.endswith("groups 32")  # the label says the same
    assert t.by_id["layer1.0.bn1"].groups == 1


def test_conv_out_gives_torchs_pool_sides_in_floor_and_ceil_mode():
    import torch
    import torch.nn.functional as F

    from explorer.arch.plan import conv_out

    checked = 0
    for n in range(1, 24):
        for k, s, p in [(2, 2, 0), (2, 1, 0), (3, 2, 1), (3, 2, 0), (3, 3, 1), (1, 2, 0)]:
            for ceil in (False, True):
                side = F.avg_pool2d(torch.zeros(1, 1, n, n), k, s, p, ceil_mode=ceil).shape[-1] if n + 2 * p >= k else None
                if side is not None:
                    assert conv_out(n, k, s, p, 1, ceil) == side, (n, k, s, p, ceil)
                    checked += 1
    assert checked > 200
