"""What the trace of a network records: its nodes (ops), its units and its totals.

These are the one description every view reads (see explorer/trace.py for how they are made).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from explorer.arch.config import ArchConfig
from explorer.vocab import RESIDUAL_SHORTCUTS, WEIGHT_KINDS, NodeKind, Role, ShortcutKind

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Node:
    """One op of the traced forward pass (batch 1; shapes without the batch dimension)."""

    id: str                     # module path ("layer1.0.conv1"), or scope + op ("layer1.0.add")
    kind: NodeKind              # input conv bn relu add maxpool avgpool flatten fc zero_pad output,
                                # pool (a local average pool), squeeze sigmoid mul (channel attention)
    unit: str                   # enclosing residual unit ("layer1.0"), "" outside units
    stage: str                  # enclosing stage ("layer1"), "" outside stages
    role: Role                  # stem | pre | branch | shortcut | add | post | head | io | attention
    in_shapes: tuple[Shape, ...]  # shapes of the tensors it reads, (C, H, W) or (C,)
    shape: Shape                # output shape
    inputs: tuple[str, ...]     # ids of the nodes whose outputs it reads
    label: str                  # "conv 3x3, 64, /2"
    short: str                  # compact form for one-line unit summaries: "3x3,64,/2"
    params: int                 # parameters of the module (0 for tensor ops)
    flops: int                  # flop_counter's count (2 per multiply-add)
    act_bytes: int              # bytes of the fresh tensors it made (0 for views, in-place ops)
    kernel: int = 1             # spatial ops (conv, pool): kernel side, stride and dilation
    stride: int = 1
    dilation: int = 1
    groups: int = 1             # a conv's groups (ResNeXt cardinality); 1 for other ops

    @property
    def macs(self) -> int:
        return self.flops // 2

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Node:
        """The node whose fields a trace record holds (all of them; other keys are left out),
        made without the generated __init__, which sets each field of a frozen dataclass
        through object.__setattr__: most of the time of turning a deep net's records into nodes."""
        node = object.__new__(cls)
        node.__dict__.update({name: record[name] for name in _NODE_FIELDS})
        return node


_NODE_FIELDS = tuple(Node.__dataclass_fields__)


@dataclass(frozen=True)
class Unit:
    """A residual unit (or, with skip_span 0, a plain block) as the trace saw it."""

    name: str                   # module path, "layer2.0"
    stage: str                  # "layer2"
    residual: bool              # False for a plain block (skip_span 0)
    layers: int                 # weight layers of the branch (those the shortcut spans)
    in_shape: Shape             # (C, H, W) entering the unit: the "x" that is added back
    out_shape: Shape            # (C, H, W) of F(x) and of the sum
    shortcut: ShortcutKind      # identity | zero_pad | projection | none
    shortcut_params: int        # parameters of the shortcut (projection conv + BN)
    shortcut_macs: int          # multiply-adds of the shortcut
    branch_params: int          # parameters of F (and of ops after the addition)
    reason: str                 # why the shortcut is what it is
    add: str                    # id of the add node ("" for a plain block)
    shortcut_input: str         # id of the node feeding the add's shortcut side

    def to_dict(self) -> dict[str, Any]:
        """The shape check as `summary --json` lists it."""
        return {"name": self.name, "stage": self.stage, "layers": self.layers,
                "in_shape": list(self.in_shape), "out_shape": list(self.out_shape),
                "shortcut": self.shortcut, "shortcut_params": self.shortcut_params,
                "shortcut_macs": self.shortcut_macs, "branch_params": self.branch_params,
                "reason": self.reason}


@dataclass(frozen=True)
class Trace:
    """Nodes in execution order, units, stages and whole-network totals of one network."""

    name: str                   # the config's name (user text: escape before drawing)
    config: ArchConfig
    nodes: tuple[Node, ...]
    units: tuple[Unit, ...]
    stages: tuple[str, ...]
    input_shape: Shape          # with the batch dimension: (1, C, H, W)
    output_shape: Shape         # (1, num_classes)
    module_params: dict[str, int] = field(repr=False)  # module path ("" = whole) -> parameters
    trainable_params: int
    buffer_count: int           # floating-point buffer elements (BN running statistics)
    activation_bytes: int       # fp32 bytes of every fresh tensor of the pass
    peak_bytes: int             # most fp32 bytes alive at once, input included
    fresh_ops: int              # ops that made a fresh tensor

    @cached_property
    def by_id(self) -> dict[str, Node]:
        return {n.id: n for n in self.nodes}

    @property
    def params(self) -> int:
        return self.module_params[""]

    @cached_property  # read once per drawn node by the tooltips
    def flops(self) -> int:
        return sum(n.flops for n in self.nodes)

    @property
    def macs(self) -> int:
        return self.flops // 2

    @property
    def depth(self) -> int:
        """Depth as the papers count it: convs and fc on the main path (projections and channel
        attention's convs excluded; a deep stem's three convs count)."""
        return sum(1 for n in self.nodes if n.kind in WEIGHT_KINDS and n.role not in ("shortcut", "attention"))

    @property
    def shortcuts(self) -> dict[str, int]:
        """Residual units by shortcut kind."""
        counts = dict.fromkeys(RESIDUAL_SHORTCUTS, 0)
        for u in self.units:
            if u.residual:
                counts[u.shortcut] += 1
        return counts

    def unit(self, name: str) -> Unit | None:
        return next((u for u in self.units if u.name == name), None)
