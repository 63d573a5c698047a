"""One pass over the built module: every fact a view shows about a network comes from here.

`trace(cfg)` builds the config on the `meta` device (no weights, no arithmetic) and runs one
forward pass at batch 1, recording each op it sees: every conv, BN, ReLU, pool, fc and zero-pad
shortcut module, plus the tensor ops between modules (the residual addition, flatten). Each op
becomes a `Node` with its module path, unit, role, input/output shapes, parameters, MACs
(torch.utils.flop_counter's formulas, halved: conv + fc multiply-adds) and the bytes of the
fresh tensors it made. Units, stages, totals, peak memory and the receptive field are read off
the nodes. The summary, the cost figures, the diagrams, the unit figure, Compare and the Lab
all read this one trace; it is cached per config.

Nothing global is patched: the call wrappers sit on the traced model's own modules (instance
attributes, removed afterwards), and the torch-function and dispatch modes are entered on the
calling thread only (PyTorch keeps mode stacks per thread), so a trace never sees other
threads' forward passes (tests/test_concurrency.py). The meta build skips initialising values
that meta tensors do not hold (explorer.arch.meta), and a unit identical to one already traced
is replayed rather than run (explorer.trace_calls): the facts are the same either way.
"""
from __future__ import annotations

import copy
from collections import defaultdict
from functools import lru_cache
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import conv_flop_count, mm_flop

from explorer.arch.builder import ResidualUnit, ResNet, ZeroPadShortcut
from explorer.arch.meta import build_meta, paused_gc
from explorer.arch.config import ArchConfig
from explorer.arch.plan import conv_out
from explorer.labels import describe, pair, shortcut_reason, side
from explorer.records import Node, Trace, Unit
from explorer.trace_ops import VIEWS, pooled, shortcut_pooled, stand_in
from explorer.trace_calls import ModuleCalls, Repeats, module_counts
from explorer.trace_watch import Watch, blank, trace_memory
from explorer.vocab import IO_KINDS, NodeKind, Role, ShortcutKind

# --- recording ---------------------------------------------------------------------------

_KINDS: tuple[tuple[type, NodeKind], ...] = ((nn.Conv2d, "conv"), (nn.BatchNorm2d, "bn"), (nn.ReLU, "relu"), (nn.MaxPool2d, "maxpool"),
          (nn.AdaptiveAvgPool2d, "avgpool"), (nn.Linear, "fc"), (ZeroPadShortcut, "zero_pad"),
          (nn.Conv1d, "conv"), (nn.AvgPool2d, "pool"), (nn.Sigmoid, "sigmoid"))
_LEAVES = tuple(cls for cls, _ in _KINDS)  # modules recorded whole: their internals are no nodes
_TENSOR_OPS: dict[str, NodeKind] = {"__add__": "add", "__iadd__": "add", "add": "add", "add_": "add", "flatten": "flatten",
                                    "mean": "squeeze", "__mul__": "mul", "mul": "mul"}
_PRODUCER = "_explorer_node"  # attribute naming the node that made a tensor (no id() reuse)
_ADDS_IN_PLACE = (torch.Tensor.__iadd__, torch.Tensor.add_)
_ADDS = (*_ADDS_IN_PLACE, torch.Tensor.__add__, torch.add, torch.Tensor.add)


class _Recorder(TorchFunctionMode):
    """Turns module calls (wrappers on the model's modules, explorer.trace_calls) and the tensor
    ops between them (this torch-function mode) into raw node records, in execution order."""

    def __init__(self, watch: Watch) -> None:
        super().__init__()
        self.watch = watch
        self.scope: list[str] = [""]   # module paths being executed, innermost last
        self.depth = 0                 # > 0 inside a leaf module: its internals are not nodes
        self.taken: set[str] = set()
        self.raw: list[dict[str, Any]] = []
        self.repeats = Repeats(self, _PRODUCER, _unique)

    def record(self, base: str, kind: NodeKind, scope: str, mod: nn.Module | None, out: torch.Tensor,
               inputs: tuple) -> None:
        node_id = _unique(base.replace(":", "_"), self.taken)
        tensors = [t for t in inputs if isinstance(t, torch.Tensor)]
        act_bytes, flops = self.watch.take()
        k, s, d = kernel_stride_dilation(mod)
        groups = mod.groups if isinstance(mod, nn.Conv2d) else 1
        self.raw.append(dict(
            id=node_id, kind=kind, scope=scope, mod=mod, shape=tuple(out.shape[1:]),
            in_shapes=tuple(tuple(t.shape[1:]) for t in tensors),
            inputs=tuple(getattr(t, _PRODUCER) for t in tensors if hasattr(t, _PRODUCER)),
            flops=flops, act_bytes=act_bytes if kind != "input" else 0, kernel=k, stride=s, dilation=d, groups=groups,
        ))
        setattr(out, _PRODUCER, node_id)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") == "__get__":  # a tensor attribute read (shape, dtype): no op
            return func(*args, **kwargs)
        x = args[0] if args else None
        out = self._counted_stand_in(func, x, args, kwargs) if isinstance(x, torch.Tensor) and x.is_meta else None
        if out is None:
            out = func(*args, **kwargs)
        fname = getattr(func, "__name__", "")
        kind = _TENSOR_OPS.get(fname)
        if fname in VIEWS and self.depth == 0 and hasattr(x, _PRODUCER) and isinstance(out, torch.Tensor):
            setattr(out, _PRODUCER, getattr(x, _PRODUCER))
        if kind is not None and self.depth == 0 and isinstance(out, torch.Tensor):
            scope = self.scope[-1]
            self.record(f"{scope}.{kind}" if scope else kind, kind, scope, None, out, args)
        return out

    def _stand_in(self, func, x: torch.Tensor, args: tuple, kwargs: dict) -> torch.Tensor | None:
        """A fresh meta tensor of the op's output shape, made without its meta kernel.

        The meta kernels of these ops are Python: their shape checks import sympy and
        torch._dynamo on first use (about 1.5 s of a cold start), and BN's is slow on every call.
        Each stand-in makes the one fresh output tensor the op makes (same bytes), and the
        flops of conv and fc come from flop_counter's own formulas. Anything else runs as is.
        """
        other = args[1] if len(args) > 1 else None
        if func in _ADDS and isinstance(other, torch.Tensor) and other.shape == x.shape and not kwargs:
            return x if func in _ADDS_IN_PLACE else blank(x, x.shape)  # the residual addition
        if func is F.batch_norm:
            return blank(x, x.shape)
        if func is F.relu and len(args) == 1 and set(kwargs) <= {"inplace"}:
            return x if kwargs.get("inplace") else blank(x, x.shape)  # its meta kernel imports torch._dynamo
        if func is F.adaptive_avg_pool2d and pair(args[1]) == (1, 1):
            return blank(x, (*x.shape[:-2], 1, 1))
        if func is F.max_pool2d and len(args) == 2 and not kwargs.get("ceil_mode") \
                and not kwargs.get("return_indices"):
            size = _out_size(x, args[1], kwargs.get("stride"), kwargs.get("padding", 0), kwargs.get("dilation", 1))
            return blank(x, (*x.shape[:-2], *size))
        if func is F.conv2d and not kwargs and all(isinstance(a, (int, tuple)) for a in args[3:6]):
            return self._conv2d(*args)
        if (timm_op := stand_in(func, x, args, kwargs, self.watch)) is not None:  # attention, ResNet-D's pool
            return timm_op
        if func is F.linear and x.dim() == 2 and not kwargs:
            weight = args[1]
            out = blank(x, (x.shape[0], weight.shape[0]))  # (B, out_features)
            self.watch.pending_flops += mm_flop(tuple(x.shape), tuple(weight.shape[::-1]))  # x @ weight.t()
            return out
        return None

    def _counted_stand_in(self, func, x: torch.Tensor, args: tuple, kwargs: dict) -> torch.Tensor | None:
        """`_stand_in`'s output, its one fresh tensor counted here (the watch muted while it is made)."""
        watch = self.watch
        was, watch.muted = watch.muted, True
        try:
            out = self._stand_in(func, x, args, kwargs)
        finally:
            watch.muted = was
        if out is not None and out is not x:
            watch.fresh(out)
        return out

    def quick(self, mod: nn.Module) -> Callable[[Any], torch.Tensor | None] | None:
        """For a BN, ReLU or zero-padded conv of torch's own classes: a function of the module's
        input that gives the output its functional op's stand-in gives, without running the
        module's forward (its Python checks and the dispatch to this mode are most of a meta
        call's time). The function returns None for an input it does not take (not a 4-D meta
        tensor, or arguments the stand-in leaves to the op): the module then runs. None for any
        other module."""
        cls = type(mod)
        if cls is nn.BatchNorm2d:
            return lambda x: self._quick(F.batch_norm, x, ())
        if cls is nn.ReLU:
            return lambda x: self._quick(F.relu, x, (), inplace=mod.inplace)
        if cls is nn.Conv2d and mod.padding_mode == "zeros":
            return lambda x: self._quick(F.conv2d, x, (mod.weight, mod.bias, mod.stride, mod.padding, mod.dilation,
                                                       mod.groups))
        return None

    def _quick(self, func, x: Any, rest: tuple, **kwargs) -> torch.Tensor | None:
        if not (type(x) is torch.Tensor and x.is_meta and x.dim() == 4):
            return None
        return self._counted_stand_in(func, x, (x, *rest), kwargs)

    def _conv2d(self, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> torch.Tensor:
        """Meta conv2d without the meta kernel, whose shape checks import sympy (about 0.5 s)."""
        h, w = _out_size(x, tuple(weight.shape[-2:]), stride, padding, dilation)
        out = blank(x, (x.shape[0], weight.shape[0], h, w))  # (B, C_out, H', W')
        # flop_counter's convolution formula, given the shapes its registered form reads off
        self.watch.pending_flops += conv_flop_count(list(x.shape), list(weight.shape), list(out.shape), False)
        return out


def _out_size(x: torch.Tensor, kernel, stride, padding, dilation) -> tuple[int, int]:
    """Output (H, W) of a conv or pool window (floor mode), as torch computes it."""
    stride = stride if stride not in (None, ()) else kernel  # pools default the stride to the kernel
    sizes = zip(x.shape[-2:], pair(kernel), pair(stride), pair(padding), pair(dilation))
    return tuple(conv_out(n, k, s, p, d) for n, k, s, p, d in sizes)


def _unique(base: str, taken: set[str]) -> str:
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


_EXACT_KINDS = dict(_KINDS)


def _leaf_kind(mod: nn.Module) -> NodeKind | None:
    """The node kind of a module recorded whole; None for a module whose ops are recorded."""
    kind = _EXACT_KINDS.get(type(mod))  # torch's own classes (nearly every module)
    return kind if kind is not None else _module_kind(mod) if isinstance(mod, _LEAVES) else None


def _module_kind(mod: nn.Module) -> NodeKind:
    return next((kind for cls, kind in _KINDS if isinstance(mod, cls)), type(mod).__name__.lower())


def kernel_stride_dilation(mod: nn.Module | None) -> tuple[int, int, int]:
    """(kernel, stride, dilation) of a conv or pool, read off its module; (1, 1, 1) for other ops."""
    if not isinstance(mod, (nn.Conv2d, nn.Conv1d, nn.MaxPool2d, nn.AvgPool2d)):
        return 1, 1, 1
    stride = mod.stride if mod.stride is not None else mod.kernel_size  # pools default to k
    return side(mod.kernel_size), side(stride), side(getattr(mod, "dilation", 1))


def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


# --- the public calls -----------------------------------------------------------------------

@lru_cache(maxsize=64)
def trace(cfg: ArchConfig) -> Trace:
    """The trace of the network `cfg` builds (meta device, batch 1); cached per config."""
    with paused_gc():  # a big build and trace make many objects and free none of them
        model = build_meta(cfg)
        t = _trace(model, private=True)
        del model  # freed here, so the collector's first pass afterwards sees only the trace
    return t


def trace_module(model: ResNet) -> Trace:
    """The trace of a built model; shapes are propagated on a meta copy when it holds real
    weights, so the model itself is left as it was."""
    if not all(p.is_meta for p in model.parameters()):
        return _trace(copy.deepcopy(model).to("meta"), private=True)
    return _trace(model)


def _trace(model: ResNet, private: bool = False) -> Trace:
    """Run the meta `model` once, in eval mode without autograd, and read it off (`private`:
    nobody else holds the model, so its mode is not restored)."""
    cfg = model.config
    counts = module_counts(model, count_params)
    module_params = counts.params
    was_training = model.training
    if private and all(type(m).train is nn.Module.train for _, m in counts.mods):  # eval mode, flag by flag
        for _, m in counts.mods:
            m.__dict__["training"] = False
    else:
        model.eval()
    watch = Watch()
    rec = _Recorder(watch)
    try:
        with torch.inference_mode():
            x = torch.empty(1, cfg.in_channels, cfg.input_size, cfg.input_size, device="meta")  # (B, C, H, W)
            rec.record("input", "input", "", None, x, ())
            with ModuleCalls(rec, counts.mods, _leaf_kind, ResidualUnit), rec, watch:
                watch.track(x)
                y = model(x)
            rec.record("output", "output", "", None, y, (y,))
            input_shape, output_shape = tuple(x.shape), tuple(y.shape)
            del x, y
    finally:
        if not private:
            model.train(was_training)
    unit_mods = {name: m for name, m in counts.mods if isinstance(m, ResidualUnit)}
    nodes = _make_nodes(rec.raw, unit_mods, module_params)
    units = _make_units(nodes, unit_mods, module_params, cfg.shortcut)
    return Trace(cfg.name, cfg, nodes, units, tuple(model.stage_names), input_shape, output_shape,
                 module_params, counts.trainable, counts.buffers, watch.total, watch.peak, watch.fresh_ops)


def _enclosing(path: str, unit_mods: dict) -> str:
    """The residual unit whose module path is the longest prefix of `path`."""
    parts = path.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in unit_mods:
            return prefix
    return ""


def _make_nodes(raw: list[dict[str, Any]], unit_mods: dict, module_params: dict[str, int]) -> tuple[Node, ...]:
    labels: dict[tuple, tuple[str, str]] = {}  # a replayed unit's ops share their modules: one description
    for r in raw:
        scope = r.pop("scope")
        r["unit"] = _enclosing(scope, unit_mods)
        r["stage"] = r["unit"].split(".")[0] if r["unit"] else ""
        mod = r.pop("mod")
        key = (r["kind"], id(mod), r["shape"])
        if key not in labels:
            labels[key] = describe(r["kind"], mod, r["shape"])
        r["label"], r["short"] = labels[key]
        r["params"] = module_params[scope] if mod is not None else 0  # a module node's scope is its path
    roles = _roles(raw)
    for r in raw:
        r["role"] = roles[r["id"]]
    return tuple(map(Node.from_record, raw))


def _roles(raw: list[dict[str, Any]]) -> dict[str, Role]:
    """Role of each node: stem, pre, branch, shortcut, add, post (after the add), head, io."""
    roles: dict[str, Role] = {}
    by_unit: dict[str, list[dict]] = defaultdict(list)
    seen_unit = False
    for r in raw:
        if r["kind"] in IO_KINDS:
            roles[r["id"]] = "io"
        elif r["unit"]:
            seen_unit = True
            by_unit[r["unit"]].append(r)
        else:
            roles[r["id"]] = "head" if seen_unit else "stem"
    for unit, ops in by_unit.items():
        shortcut = {r["id"] for r in ops if r["id"].startswith(unit + ".downsample")}
        after_add: set[str] = set()
        for r in ops:  # execution order: everything fed by the add (or by its successors) is post
            if r["kind"] == "add" or any(i in after_add for i in r["inputs"]):
                after_add.add(r["id"])
        feeds_shortcut: set[str] = set()
        for r in reversed(ops):  # ops before the split whose output a projection also reads
            if r["id"] in shortcut or r["id"] in feeds_shortcut:
                feeds_shortcut.update(r["inputs"])
        for r in ops:
            i = r["id"]
            roles[i] = ("shortcut" if i in shortcut else "attention" if i.startswith(unit + ".se.") else
                        "add" if r["kind"] == "add" else
                        "post" if i in after_add else "pre" if i in feeds_shortcut else "branch")
    return roles


def _make_units(nodes: tuple[Node, ...], unit_mods: dict, module_params: dict[str, int],
                option: str) -> tuple[Unit, ...]:
    by_id = {n.id: n for n in nodes}
    by_unit: dict[str, list[Node]] = defaultdict(list)
    for n in nodes:
        by_unit[n.unit].append(n)
    units = []
    for name, mod in unit_mods.items():
        mine = by_unit[name]
        outside = [i for n in mine for i in n.inputs if by_id[i].unit != name]
        in_shape = by_id[outside[0]].shape if outside else ()
        add = next((n for n in mine if n.kind == "add"), None)
        shortcut_input = ""
        if add is not None:
            # The shortcut side is the input from outside F: the downsample module, or x itself.
            others = [i for i in add.inputs if by_id[i].role == "shortcut" or by_id[i].unit != name]
            shortcut_input = others[-1] if others else add.inputs[-1]
        kind: ShortcutKind = "none" if not mod.residual else (
            "identity" if mod.downsample is None else
            "zero_pad" if isinstance(mod.downsample, ZeroPadShortcut) else "projection")
        sc_params = module_params.get(f"{name}.downsample", 0)
        out_shape = mine[-1].shape
        units.append(Unit(
            name=name, stage=name.split(".")[0], residual=bool(mod.residual),
            layers=sum(1 for n in mine if n.kind == "conv" and n.role not in ("shortcut", "attention")),
            in_shape=in_shape, out_shape=out_shape, shortcut=kind, shortcut_params=sc_params,
            shortcut_macs=sum(n.flops for n in mine if n.role == "shortcut") // 2,
            branch_params=module_params[name] - sc_params,
            reason=shortcut_reason(kind, in_shape, out_shape, option, pooled(mine)) if mod.residual else "",
            add=add.id if add is not None else "", shortcut_input=shortcut_input,
        ))
    return tuple(units)


__all__ = ["Node", "Trace", "Unit", "count_params", "kernel_stride_dilation", "shortcut_pooled", "trace",
           "trace_memory", "trace_module"]
