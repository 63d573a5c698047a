"""Names shared by every view: the kinds of traced ops, their roles, the shortcut kinds and the
words each view writes for a shortcut.

Each name is defined here once. The trace records these kinds and roles (explorer/records.py);
the diagrams, tables, diffs, exported code and the CLI test membership against the tuples below
and print the words of `SHORTCUT_TEXT`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

NodeKind = Literal["input", "conv", "bn", "relu", "add", "maxpool", "avgpool", "flatten", "fc",
                   "zero_pad", "output", "pool", "squeeze", "sigmoid", "mul"]
# stem: before the first unit; pre: ops a unit's branch and its shortcut both read (a
# pre-activation unit's BN/ReLU); branch: F; shortcut: the shortcut's own ops; add: the
# addition; post: ops after the addition; head: after the last unit; io: the input and output;
# attention: a unit's channel attention on F(x) (SE / ECA: squeeze, convs, gate, multiply).
Role = Literal["stem", "pre", "branch", "shortcut", "add", "post", "head", "io", "attention"]
# "none" is a plain block's: no shortcut at all (skip_span 0).
ShortcutKind = Literal["identity", "zero_pad", "projection", "none"]

NODE_KINDS: tuple[NodeKind, ...] = get_args(NodeKind)
ROLES: tuple[Role, ...] = get_args(Role)
SHORTCUT_KINDS: tuple[ShortcutKind, ...] = get_args(ShortcutKind)
RESIDUAL_SHORTCUTS: tuple[ShortcutKind, ...] = tuple(k for k in SHORTCUT_KINDS if k != "none")

WEIGHT_KINDS: tuple[NodeKind, ...] = ("conv", "fc")   # the papers' weight layers
POOL_KINDS: tuple[NodeKind, ...] = ("maxpool", "avgpool")
IO_KINDS: tuple[NodeKind, ...] = ("input", "output")
NORM_KINDS: tuple[NodeKind, ...] = ("bn", "relu")     # the ops placed around the weight layers
GROUP_ROLES: tuple[Role, ...] = ("stem", "head")      # drawn as one node at stage and unit detail


@dataclass(frozen=True)
class ShortcutText:
    """How one shortcut kind is written, in each place a view names it."""

    word: str       # in counts and cluster titles: "3 zero-pad", "layer2.0  (zero-pad)"
    label: str      # on the skip arc and in diffs: "1x1 projection" (+ its parameters or conv)
    name: str       # in tooltips and the inspector: "option A: subsample + zero-pad"
    phrase: str     # in the exported code's unit captions: "zero-padding shortcut (option A)"


SHORTCUT_TEXT: dict[ShortcutKind, ShortcutText] = {
    "identity": ShortcutText("identity", "identity", "identity (x added unchanged)", "identity shortcut"),
    "zero_pad": ShortcutText("zero-pad", "zero-pad", "option A: subsample + zero-pad",
                             "zero-padding shortcut (option A)"),
    "projection": ShortcutText("projection", "1x1 projection", "1x1 projection W_s", "projection shortcut"),
    "none": ShortcutText("none", "no shortcut (plain)", "none (plain block)", "no shortcut (plain)"),
}


# Channel attention on a unit's branch (config key `attention`), as each view names it:
# (full name for diffs and tooltips, short tag for unit boxes and equations' notes).
ATTENTION_TEXT: dict[str, tuple[str, str]] = {
    "none": ("none", ""),
    "se": ("squeeze-excitation", "SE"),
    "eca": ("efficient channel attention (ECA)", "ECA"),
}
# How the shortcut of an average-pool projection (ResNet-D) is written where SHORTCUT_TEXT's
# projection words are: on the skip arc and in diffs, and in the exported code's captions.
POOLED_PROJECTION = ShortcutText("projection", "avg-pool + 1x1 projection", "2x2 average pool, then 1x1 projection W_s",
                                 "average-pool + projection shortcut (ResNet-D)")


def shortcut_counts(counts: dict[str, int]) -> str:
    """"1 projection, 5 identity": the residual shortcut kinds present, projections first."""
    order = ("projection", "zero_pad", "identity")
    return ", ".join(f"{counts[k]} {SHORTCUT_TEXT[k].word}" for k in order if counts.get(k))


# Number formats a latency measurement or a memory estimate can use, and the bytes one element
# takes in each (timing/devices.py maps the same names to torch dtypes).
Dtype = Literal["fp32", "bf16", "fp16"]
DTYPE_BYTES: dict[str, int] = {"fp32": 4, "bf16": 2, "fp16": 2}
