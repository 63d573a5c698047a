"""The trace's reading of the ops timm's refinements add: channel attention (SE, ECA: a global
mean, a sigmoid gate, the product x * gate, ECA's 1-D conv) and the average pool of a ResNet-D
shortcut.

On the meta device each of these ops gets a stand-in: a fresh meta tensor of the op's output
shape (the one tensor the op makes), so that no Python meta kernel runs (their shape checks
import sympy and torch._dynamo, about a second of a cold start). explorer/trace.py calls
`stand_in` before running an op and `shortcut_pooled` tells a view whether a projection averages.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import flop_registry

from explorer.arch.plan import conv_out
from explorer.labels import pair, side
from explorer.trace_watch import blank

if TYPE_CHECKING:
    from explorer.records import Node, Trace, Unit

# Reshapes between recorded ops (channel attention's): no node; the output names the input's producer.
VIEWS = frozenset({"view", "reshape", "expand_as", "expand", "unsqueeze", "squeeze", "view_as"})
_MEANS = (torch.Tensor.mean, torch.mean)
_MULS = (torch.Tensor.mul, torch.Tensor.__mul__, torch.mul)


def stand_in(func: Any, x: torch.Tensor, args: tuple, kwargs: dict, watch: Any) -> torch.Tensor | None:
    """The output of one of these ops on a meta `x`, made without its meta kernel, its flops
    (flop_counter's) added to `watch.pending_flops`; None for any other op (or an unexpected
    signature: it then runs as is)."""
    found = _stand_in(func, x, args, kwargs)
    if found is None:
        return None
    watch.pending_flops += found[1]
    return found[0]


def _stand_in(func: Any, x: torch.Tensor, args: tuple, kwargs: dict) -> tuple[torch.Tensor, int] | None:
    other = args[1] if len(args) > 1 else None
    if func in _MEANS and args[1:] == ((2, 3),) and kwargs.keys() <= {"keepdim"}:  # the squeeze
        return blank(x, (*x.shape[:-2], 1, 1) if kwargs.get("keepdim") else x.shape[:-2]), 0
    if func is torch.sigmoid and not kwargs:
        return blank(x, x.shape), 0
    if func in _MULS and isinstance(other, torch.Tensor) and not kwargs:  # x * gate
        return blank(x, _broadcast(x.shape, other.shape)), 0
    if func is F.conv1d and not kwargs and all(isinstance(a, (int, tuple)) for a in args[3:6]):
        return _conv1d(*args)
    if func is F.avg_pool2d and not kwargs and len(args) >= 3:
        return blank(x, (*x.shape[:-2], *_pool_size(x, *args[1:5]))), 0
    return None


def _conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> tuple[torch.Tensor, int]:
    """ECA's conv1d on meta, with flop_counter's count."""
    s, p, d = (side(v) for v in (stride, padding, dilation))
    out = blank(x, (x.shape[0], weight.shape[0], conv_out(x.shape[-1], weight.shape[-1], s, p, d)))  # (B, C_out, L')
    flops = flop_registry[torch.ops.aten.convolution](x, weight, bias, (s,), (p,), (d,), False, (0,), groups,
                                                      out_val=out)
    return out, flops


def _broadcast(a: torch.Size, b: torch.Size) -> tuple[int, ...]:
    """The shape two same-rank tensors broadcast to (sizes 1 stretch)."""
    if len(a) != len(b) or any(m != n and 1 not in (m, n) for m, n in zip(a, b)):
        raise RuntimeError(f"shapes {tuple(a)} and {tuple(b)} do not broadcast")
    return tuple(max(m, n) for m, n in zip(a, b))


def _pool_size(x: torch.Tensor, kernel, stride=None, padding=0, ceil_mode=False) -> tuple[int, ...]:
    """Output (H, W) of an average pool, ceil mode included, as torch computes it."""
    stride = stride if stride not in (None, ()) else kernel
    sizes = zip(x.shape[-2:], pair(kernel), pair(stride), pair(padding))
    return tuple(conv_out(n, k, s, p, 1, bool(ceil_mode)) for n, k, s, p in sizes)


def pooled(ops: "list[Node]") -> bool:
    """Whether these ops of one unit include an average pool on its shortcut."""
    return any(n.kind == "pool" and n.role == "shortcut" for n in ops)


def shortcut_pooled(trace: "Trace", unit: "Unit | str") -> bool:
    """Whether a unit's shortcut average-pools before its projection (ResNet-D, avg_down)."""
    name = unit if isinstance(unit, str) else unit.name
    return pooled([n for n in trace.nodes if n.unit == name])
