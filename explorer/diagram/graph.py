"""Graphviz diagrams traced from the built module, and their export to bytes.

`trace_ops` builds the config on the meta device and records one forward pass of it (every
conv, BN, ReLU, pool, fc and the zero-pad shortcut is one op; the residual addition appears as
an `add`), with each op's output shape and the ops whose outputs it reads. Every view here is drawn from that
trace: `build_graph` at three levels of detail, `build_unit_figure` for one residual unit in
the style of He et al. 2015 Fig. 2 / 2016 Fig. 4. Node ids are module paths (`layer1.0.conv1`).
"""
from __future__ import annotations

import copy
import threading
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable

import graphviz
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from explorer.facts.summary import count_params, fresh_like, shortcut_kind
from explorer.arch.builder import ResidualUnit, ResNet, ZeroPadShortcut, build_model
from explorer.arch.config import ArchConfig
from explorer.errors import ConfigError, check_choice

DETAILS = ("stages", "units", "layers")
DIRECTIONS = ("TB", "LR")
FORMATS = ("dot", "svg", "png", "pdf")

# Pixels per inch for PNG: graphviz's own default, kept explicit. Large graphs are laid out
# compactly (small rank and node separation) so that ResNet-152 at layer detail stays within
# cairo's bitmap limit without being scaled down.
PNG_DPI = 96
# Longest side of a bitmap cairo can draw; Graphviz shrinks a larger drawing to fit it.
PNG_MAX_PX = 32767

_FONT = "Helvetica"
_COLOURS = {
    "conv": "#dbe9f6", "bn": "#fdebd0", "relu": "#e2f0d9", "pool": "#ececec", "fc": "#e8def3",
    "io": "#ffffff", "stage": "#dbe9f6", "unit": "#dbe9f6", "projection": "#f6c6c0",
    "zero_pad": "#fde2c4", "post": "#e2f0d9", "pre": "#fdebd0",
}
_SKIP_COLOURS = {"identity": "#1f77b4", "zero_pad": "#e67e22", "projection": "#c0392b"}
_MAIN_EDGE = "#555555"
_LARGE = 1000  # nodes above which dot's layout effort is capped


class GraphvizMissing(RuntimeError):
    """Graphviz's `dot` program is needed for SVG, PNG and PDF but is not installed."""


# --- the trace ----------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One operation of the traced forward pass."""

    id: str                         # module path ("layer1.0.conv1"), or scope + op ("layer1.0.add")
    kind: str                       # input conv bn relu add maxpool avgpool flatten fc zero_pad output
    unit: str                       # enclosing residual unit ("layer1.0"), "" outside units
    stage: str                      # enclosing stage ("layer1"), "" outside stages
    role: str                       # stem | pre | branch | shortcut | add | post | head | io
    shape: tuple[int, ...]          # output shape without the batch dim: (C, H, W) or (C,)
    inputs: tuple[str, ...]         # ids of the ops whose outputs this one reads
    label: str                      # "conv 3x3, 64, /2"
    short: str                      # compact form for one-line unit summaries: "3x3,64,/2"
    params: int                     # parameters of the module (0 for functional ops)


@dataclass(frozen=True)
class UnitInfo:
    """A residual unit as the trace saw it."""

    name: str                       # module path, "layer2.0"
    stage: str
    residual: bool                  # False for a plain block (skip_span 0)
    shortcut: str                   # identity | zero_pad | projection | none
    shortcut_params: int
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    add: str                        # id of the add op ("" for a plain block)
    shortcut_input: str             # id of the op feeding the add's shortcut side


@dataclass(frozen=True)
class OpTrace:
    """Ops in execution order, units and stages of one config."""

    name: str                       # the config's name (user text: escape before drawing)
    ops: tuple[Op, ...]
    units: tuple[UnitInfo, ...]
    stages: tuple[str, ...]

    def by_id(self) -> dict[str, Op]:
        return {op.id: op for op in self.ops}


_LEAVES = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Linear, ZeroPadShortcut)
_TENSOR_OPS = {"__add__": "add", "__iadd__": "add", "add": "add", "add_": "add", "flatten": "flatten"}


class _Recorder(TorchFunctionMode):
    """Records the ops of one forward pass of a private meta model, with their data flow.

    Module calls are seen through hooks on that model's own modules, and the few tensor ops
    between them (the residual addition, flatten) through a torch-function mode. Both are
    local to this model and this thread: unlike torch.fx, nothing global is patched, so
    forward passes in other threads (other users' latency runs) are untouched.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.paths = {m: name for name, m in model.named_modules()}
        self.thread = threading.get_ident()  # hooks sit on the model: ignore other threads' calls
        self.scope: list[str] = [""]   # module paths being executed, innermost last
        self.depth = 0                 # > 0 inside a leaf module: its internals are not ops
        self.producer: dict[int, str] = {}  # id(tensor) -> id of the op that made it
        self.keep: list[torch.Tensor] = []  # outputs kept alive so their ids stay unique
        self.taken: set[str] = set()
        self.raw: list[tuple[str, str, str, nn.Module | None, torch.Tensor, tuple[str, ...]]] = []

    def record(self, base: str, kind: str, scope: str, mod, out: torch.Tensor, inputs) -> None:
        op_id = _unique(base.replace(":", "_"), self.taken)
        srcs = tuple(self.producer[id(t)] for t in inputs
                     if isinstance(t, torch.Tensor) and id(t) in self.producer)
        self.raw.append((op_id, kind, scope, mod, out, srcs))
        self.producer[id(out)] = op_id
        self.keep.append(out)

    def pre_hook(self, mod, args):
        if threading.get_ident() != self.thread:
            return
        self.scope.append(self.paths[mod])
        if isinstance(mod, _LEAVES):
            self.depth += 1

    def hook(self, mod, args, out):
        if threading.get_ident() != self.thread:
            return
        path = self.scope.pop()
        if isinstance(mod, _LEAVES):
            self.depth -= 1
            if self.depth == 0:
                self.record(path, _module_kind(mod), path, mod, out, args[:1])

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.batch_norm:  # same shape out; its meta decomposition is slow
            return fresh_like(args[0])
        out = func(*args, **(kwargs or {}))
        kind = _TENSOR_OPS.get(getattr(func, "__name__", ""))
        if kind is not None and self.depth == 0 and isinstance(out, torch.Tensor):
            scope = self.scope[-1]
            self.record(f"{scope}.{kind}" if scope else kind, kind, scope, None, out, args)
        return out


@lru_cache(maxsize=32)
def trace_ops(cfg: ArchConfig) -> OpTrace:
    """Trace the model `cfg` builds (meta device, batch 1) into ops with output shapes."""
    with torch.device("meta"):
        return _trace(build_model(cfg))


def trace_module(model: ResNet) -> OpTrace:
    """Trace a built model into ops; shapes are propagated on meta (a meta copy of a model
    that holds real weights). The model itself is left as it was."""
    if not all(p.is_meta for p in model.parameters()):
        model = copy.deepcopy(model).to("meta")
    return _trace(model)


def _trace(model: ResNet) -> OpTrace:
    """Run the (private, meta) model once and turn what it did into ops."""
    cfg = model.config
    rec = _Recorder(model)
    hooks = []
    for mod in model.modules():
        hooks.append(mod.register_forward_pre_hook(rec.pre_hook))
        hooks.append(mod.register_forward_hook(rec.hook))
    x = torch.empty(1, cfg.in_channels, cfg.input_size, cfg.input_size, device="meta")  # (B, C, H, W)
    rec.record("input", "input", "", None, x, ())
    try:
        with rec:
            y = model(x)
    finally:
        for h in hooks:
            h.remove()
    rec.record("output", "output", "", None, y, (y,))
    unit_mods = {name: m for name, m in model.named_modules() if isinstance(m, ResidualUnit)}
    raw: list[dict] = []
    for op_id, kind, scope, mod, out, inputs in rec.raw:
        shape = tuple(out.shape[1:])
        label, short = _describe(kind, mod, shape)
        unit = _enclosing(scope, unit_mods)
        raw.append(dict(id=op_id, kind=kind, unit=unit, stage=unit.split(".")[0] if unit else "",
                        shape=shape, inputs=inputs, label=label, short=short,
                        params=count_params(mod) if mod is not None else 0))

    roles = _roles(raw, unit_mods)
    ops = tuple(Op(role=roles[r["id"]], **r) for r in raw)
    by_id = {op.id: op for op in ops}
    by_unit: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        by_unit[op.unit].append(op)
    units = tuple(_unit_info(name, m, by_unit[name], by_id) for name, m in unit_mods.items())
    return OpTrace(cfg.name, ops, units, tuple(model.stage_names))


def _unique(base: str, taken: set[str]) -> str:
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def _enclosing(path: str, unit_mods: dict) -> str:
    """The residual unit whose module path is the longest prefix of `path`."""
    parts = path.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in unit_mods:
            return prefix
    return ""


def _module_kind(mod: nn.Module) -> str:
    for cls, kind in ((nn.Conv2d, "conv"), (nn.BatchNorm2d, "bn"), (nn.ReLU, "relu"),
                      (nn.MaxPool2d, "maxpool"), (nn.AdaptiveAvgPool2d, "avgpool"),
                      (nn.Linear, "fc"), (ZeroPadShortcut, "zero_pad")):
        if isinstance(mod, cls):
            return kind
    return type(mod).__name__.lower()


def _pair(v) -> int:
    return v[0] if isinstance(v, tuple) else v


def _describe(kind: str, mod: nn.Module | None, shape: tuple[int, ...]) -> tuple[str, str]:
    """(label, compact form) of one op, read off its module."""
    if kind == "conv":
        k, s = _pair(mod.kernel_size), _pair(mod.stride)
        extra = (f", /{s}" if s > 1 else "") + (f", groups {mod.groups}" if mod.groups > 1 else "")
        short = f"{k}x{k},{mod.out_channels}" + (f",/{s}" if s > 1 else "")
        return f"conv {k}x{k}, {mod.out_channels}{extra}", short
    if kind == "maxpool":
        k, s = _pair(mod.kernel_size), _pair(mod.stride)
        return f"max pool {k}x{k}" + (f", /{s}" if s > 1 else ""), f"maxpool {k}x{k}"
    if kind == "avgpool":
        return "global avg pool", "avgpool"
    if kind == "fc":
        return f"fc {mod.in_features} -> {mod.out_features}", f"fc {mod.out_features}"
    if kind == "zero_pad":
        sub = f", /{mod.stride}" if mod.stride > 1 else ""
        return f"zero-pad {mod.in_ch} -> {mod.out_ch} ch{sub}", "zero-pad"
    if kind == "input":
        return "input " + _fmt(shape), "input"
    if kind == "output":
        return "output " + _fmt(shape), "output"
    names = {"bn": "BN", "relu": "ReLU", "add": "+", "flatten": "flatten"}
    name = names.get(kind, kind)
    return name, name


def _roles(raw: list[dict], unit_mods: dict) -> dict[str, str]:
    """Role of each op: stem, pre, branch, shortcut, add, post (after the add), head, io."""
    roles: dict[str, str] = {}
    by_unit: dict[str, list[dict]] = defaultdict(list)
    seen_unit = False
    for r in raw:
        if r["kind"] in ("input", "output"):
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
                feeds_shortcut.update(i for i in r["inputs"])
        for r in ops:
            i = r["id"]
            if i in shortcut:
                roles[i] = "shortcut"
            elif r["kind"] == "add":
                roles[i] = "add"
            elif i in after_add:
                roles[i] = "post"
            elif i in feeds_shortcut:
                roles[i] = "pre"
            else:
                roles[i] = "branch"
    return roles


def _unit_info(name: str, mod: ResidualUnit, mine: list[Op], by_id: dict[str, Op]) -> UnitInfo:
    first_inputs = [i for op in mine for i in op.inputs if by_id[i].unit != name]
    in_shape = by_id[first_inputs[0]].shape if first_inputs else ()
    add = next((op for op in mine if op.kind == "add"), None)
    shortcut_input = ""
    if add is not None:
        # The shortcut side is the input that comes from outside F: the downsample module, or
        # x itself (produced before the unit) for an identity.
        others = [i for i in add.inputs if by_id[i].role == "shortcut" or by_id[i].unit != name]
        shortcut_input = others[-1] if others else add.inputs[-1]
    kind = shortcut_kind(mod) if mod.residual else "none"
    sc_params = count_params(mod.downsample) if mod.downsample is not None else 0
    return UnitInfo(name, name.split(".")[0], bool(mod.residual), kind, sc_params, in_shape,
                    mine[-1].shape, add.id if add is not None else "", shortcut_input)


def _trace_of(source: ArchConfig | OpTrace) -> OpTrace:
    """The (cached) trace of a config, or a trace made earlier with `trace_module`."""
    return source if isinstance(source, OpTrace) else trace_ops(source)


def unit_names(cfg: ArchConfig | OpTrace) -> list[str]:
    """Module paths of the config's residual units, in network order."""
    return [u.name for u in _trace_of(cfg).units]


# --- drawing ------------------------------------------------------------------------


def _fmt(shape: Iterable[int]) -> str:
    return "x".join(str(s) for s in shape)


def _text(value: object) -> str:
    """User text made safe for a plain DOT label: one line, literal backslashes, and `&` as an
    entity (Graphviz decodes entities such as `&amp;` even outside HTML-like labels)."""
    return graphviz.escape(" ".join(str(value).split()).replace("&", "&amp;"))


def _lbl(text: str) -> graphviz.nohtml:
    """A plain (never HTML-like) DOT label; "\n" in `text` becomes DOT's centred line break."""
    return graphviz.nohtml(text.replace("\n", "\\n"))


def _safe_id(op_id: str) -> str:
    # ':' introduces a port in DOT edge statements; module paths never hold one, but be sure.
    return op_id.replace(":", "_")


def _new_graph(title: str, direction: str, n_nodes: int) -> graphviz.Digraph:
    g = graphviz.Digraph("resnet")
    compact = n_nodes > 60
    g.attr(rankdir=direction, label=title, labelloc="t", fontname=_FONT, fontsize="16",
           nodesep="0.18" if compact else "0.3", ranksep="0.22" if compact else "0.35")
    if n_nodes > _LARGE:
        # Cap dot's network-simplex passes: ResNet-1202 at layer detail lays out in seconds
        # instead of about a minute, and a chain of units needs no finer placement.
        g.attr(nslimit="2", nslimit1="2")
    g.attr("node", shape="box", style="rounded,filled", fontname=_FONT, fontsize="11",
           height="0.3", margin="0.08,0.03", fillcolor="#ffffff", color="#333333")
    g.attr("edge", fontname=_FONT, fontsize="9", arrowsize="0.6", color=_MAIN_EDGE, fontcolor="#333333")
    return g


@dataclass
class _Group:
    """One drawn node: a set of ops collapsed into it."""

    id: str
    ops: list[Op]
    label: str = ""
    cls: str = ""
    fill: str = "#ffffff"
    shape: str = "box"
    extra: dict | None = None
    cluster: tuple[str, ...] = ()   # nesting of clusters ("layer1", "layer1.0")


def _edges(trace: OpTrace, group_of: dict[str, str], shapes: bool,
           skip_label: Callable[[UnitInfo], str]) -> list[tuple[str, str, dict[str, str]]]:
    """Edges between drawn groups, with shapes and skip styling.

    Ops mapped to "" (a shortcut collapsed at units detail) are folded into the skip edge
    that runs past them.
    """
    by_id = trace.by_id()
    unit_of_add = {u.add: u for u in trace.units if u.add}
    units = {u.name: u for u in trace.units}
    seen: set[tuple[str, str]] = set()
    out = []
    for op in trace.ops:
        dst = group_of[op.id]
        if not dst:
            continue
        for src_id in op.inputs:
            shape = by_id[src_id].shape
            src, walk = group_of[src_id], by_id[src_id]
            while not src:  # back through collapsed shortcut ops to the drawn group feeding them
                walk = by_id[walk.inputs[0]]
                src = group_of[walk.id]
            if src == dst or (src, dst) in seen:
                continue
            seen.add((src, dst))
            add_unit = unit_of_add.get(op.id)
            attrs: dict[str, str] = {}
            texts = []
            if add_unit is not None and src_id == add_unit.shortcut_input:
                kind = add_unit.shortcut
                colour = _SKIP_COLOURS[kind]
                texts.append(skip_label(add_unit))
                attrs.update({"class": f"skip {kind}", "color": colour, "fontcolor": colour,
                              "style": "bold" if kind == "projection" else "dashed",
                              "penwidth": "2.2" if kind == "projection" else "1.4", "weight": "1"})
            elif op.role == "shortcut":
                colour = _SKIP_COLOURS[units[op.unit].shortcut]
                attrs.update({"class": "skip-path", "color": colour, "fontcolor": colour,
                              "style": "bold", "weight": "1"})
            else:
                attrs.update({"class": "main", "weight": "4"})
            if shapes and shape:
                texts.append(_fmt(shape))
            label = "\n".join(t for t in texts if t)
            if label:
                attrs["label"] = label
            out.append((src, dst, attrs))
    return out


def _fold_owners(trace: OpTrace) -> dict[str, str]:
    """BN/ReLU op id -> the conv it is drawn in when folding.

    Inside a unit, layer j's ops are `conv{j}`, `bn{j}`, `relu{j}` wherever they sit, so a
    BN/ReLU folds into the conv of its own layer when the two are adjacent (after it, or
    before it in pre-activation units); outside units (stem, projection) a conv takes the
    BN/ReLU chain that follows it.
    """
    by_id = trace.by_id()
    consumers: dict[str, list[str]] = defaultdict(list)
    for op in trace.ops:
        for i in op.inputs:
            consumers[i].append(op.id)

    def layer_of(op_id: str) -> str:
        return re.sub(r"^[a-z]+", "", op_id.rsplit(".", 1)[-1])

    def joins(op: Op, conv: Op, forward: bool) -> bool:
        if op.kind not in ("bn", "relu") or op.unit != conv.unit or op.id in owner:
            return False
        if conv.unit and conv.role != "shortcut":
            return layer_of(op.id) == layer_of(conv.id)
        return forward

    owner: dict[str, str] = {}
    for op in trace.ops:
        if op.kind != "conv":
            continue
        cur = op
        while len(consumers[cur.id]) == 1 and joins(by_id[consumers[cur.id][0]], op, True):
            cur = by_id[consumers[cur.id][0]]
            owner[cur.id] = op.id
        cur = op
        while len(cur.inputs) == 1:
            prev = by_id[cur.inputs[0]]
            if len(consumers[prev.id]) != 1 or not joins(prev, op, False):
                break
            owner[prev.id] = op.id
            cur = prev
    return owner


def _style_op(group: _Group, op: Op) -> None:
    """Colour and shape of a layer-level node from its main op."""
    kind = op.kind
    if kind == "add":
        group.shape, group.fill, group.cls = "circle", "#ffffff", "add"
        group.extra = {"width": "0.3", "fixedsize": "true", "fontsize": "14"}
    elif kind in ("input", "output"):
        group.shape, group.cls = "box", f"io {kind}"
        group.extra = {"style": "filled", "fillcolor": "#ffffff", "color": "#999999"}
    elif op.role == "shortcut" and kind == "conv":
        group.fill, group.cls = _COLOURS["projection"], "conv projection"
        group.extra = {"color": _SKIP_COLOURS["projection"], "penwidth": "2"}
    elif kind == "zero_pad":
        group.fill, group.cls = _COLOURS["zero_pad"], "zero_pad"
        group.extra = {"color": _SKIP_COLOURS["zero_pad"], "penwidth": "1.5"}
    else:
        group.fill = _COLOURS.get({"maxpool": "pool", "avgpool": "pool"}.get(kind, kind), "#ffffff")
        group.cls = kind + (" shortcut" if op.role == "shortcut" else "")


def _layer_groups(trace: OpTrace, fold: bool) -> tuple[dict[str, str], list[_Group]]:
    owner = _fold_owners(trace) if fold else {}
    group_of: dict[str, str] = {}
    groups: dict[str, _Group] = {}
    for op in trace.ops:
        if op.kind == "flatten" and op.inputs:  # a reshape: drawn as part of the pool before it
            group_of[op.id] = group_of[op.inputs[0]]
            continue
        gid = _safe_id(owner.get(op.id, op.id))
        group_of[op.id] = gid
        if gid not in groups:
            cluster = (op.stage, op.unit) if op.unit else ()
            groups[gid] = _Group(gid, [], cluster=cluster)
        groups[gid].ops.append(op)
    for group in groups.values():
        main = next((o for o in group.ops if o.kind == "conv"), group.ops[0])
        _style_op(group, main)
        idx = group.ops.index(main)
        before = "+".join(o.label for o in group.ops[:idx])
        after = " ".join("+" + o.label for o in group.ops[idx + 1:])
        text = main.label
        if main.role == "shortcut" and main.kind == "conv":
            text = "projection " + text
        text = (before + "+ " if before else "") + text + (" " + after if after else "")
        if main.role == "shortcut" and main.kind == "conv":
            text += f"\n{sum(o.params for o in group.ops):,} params"
        group.label = text
    return group_of, list(groups.values())


def _unit_groups(trace: OpTrace) -> tuple[dict[str, str], list[_Group]]:
    group_of: dict[str, str] = {}
    groups: dict[str, _Group] = {}
    for op in trace.ops:
        if op.role == "io":
            gid = op.id
        elif op.role in ("stem", "head"):
            gid = op.role
        elif op.role == "shortcut":
            group_of[op.id] = ""  # drawn as the skip edge's label
            continue
        elif op.role == "branch":
            gid = op.unit
        elif op.role == "add":
            gid = op.unit + ".add"
        else:  # pre, post
            gid = f"{op.unit}.{op.role}"
        gid = _safe_id(gid)
        group_of[op.id] = gid
        if gid not in groups:
            groups[gid] = _Group(gid, [], cluster=(op.stage,) if op.stage else ())
        groups[gid].ops.append(op)
    units = {u.name: u for u in trace.units}
    for g in groups.values():
        op = g.ops[0]
        shorts = [o.short for o in g.ops if o.kind != "flatten"]
        if op.role == "io":
            _style_op(g, op)
            g.label = op.label
        elif op.role in ("stem", "head"):
            g.label = f"{op.role}\n" + " ".join(shorts)
            g.fill, g.cls = _COLOURS["pool"], op.role
        elif op.role == "branch":
            unit = units[op.unit]
            g.label = f"{op.unit}{'' if unit.residual else ' (plain)'}\n" + _join_layers(g.ops)
            g.fill, g.cls = _COLOURS["unit"], "unit"
        elif op.role == "add":
            _style_op(g, op)
            g.label = "+"
        else:  # pre (shared by F and the projection) or post (after the addition)
            g.label = ("pre-activation\n" if op.role == "pre" else "") + " ".join(shorts)
            g.fill, g.cls = _COLOURS[op.role], op.role
    return group_of, list(groups.values())


def _join_layers(ops: list[Op]) -> str:
    """"1x1,64 BN ReLU | 3x3,64 BN ReLU": the branch as one line, a bar before each later conv."""
    parts: list[str] = []
    seen_conv = False
    for o in ops:
        if o.kind == "conv" and seen_conv:
            parts.append("|")
        seen_conv = seen_conv or o.kind == "conv"
        parts.append(o.short)
    return " ".join(parts)


def _stage_groups(trace: OpTrace) -> tuple[dict[str, str], list[_Group]]:
    group_of: dict[str, str] = {}
    groups: dict[str, _Group] = {}
    for op in trace.ops:
        gid = _safe_id(op.id if op.role == "io" else op.stage or op.role)
        group_of[op.id] = gid
        groups.setdefault(gid, _Group(gid, [])).ops.append(op)
    for g in groups.values():
        op = g.ops[0]
        if op.role == "io":
            _style_op(g, op)
            g.label = op.label
        elif op.stage:
            units = [u for u in trace.units if u.stage == op.stage]
            g.label = f"{op.stage}: {_count_units(units)}\nout {_fmt(g.ops[-1].shape)}"
            g.fill, g.cls = _COLOURS["stage"], "stage"
        else:
            shorts = [o.short for o in g.ops if o.kind != "flatten"]
            g.label = f"{op.role}\n" + " ".join(shorts)
            g.fill, g.cls = _COLOURS["pool"], op.role
    return group_of, list(groups.values())


def _count_units(units: list[UnitInfo]) -> str:
    """"6 units (1 projection, 5 identity)" or "2 plain blocks"."""
    residual = [u for u in units if u.residual]
    if not residual:
        return f"{len(units)} plain block{'s' * (len(units) != 1)}"
    counts = defaultdict(int)
    for u in residual:
        counts[u.shortcut] += 1
    names = {"projection": "projection", "zero_pad": "zero-pad", "identity": "identity"}
    detail = ", ".join(f"{counts[k]} {names[k]}" for k in names if counts[k])
    text = f"{len(residual)} unit{'s' * (len(residual) != 1)} ({detail})"
    if len(residual) != len(units):
        text += f", {len(units) - len(residual)} plain"
    return text


def _skip_label(detail: str) -> Callable[[UnitInfo], str]:
    def label(unit: UnitInfo) -> str:
        if unit.shortcut == "identity":
            return "identity"
        if detail == "units":
            if unit.shortcut == "zero_pad":
                return "zero-pad"
            return f"1x1 projection\n{unit.shortcut_params:,} params"
        return ""  # at layer detail the shortcut's own nodes say what it is
    return label


def _q(value: object) -> str:
    """A DOT double-quoted string. Labels arrive with their backslashes already meaningful
    (`\\n` breaks, user text escaped by `_text`), so only quotes need escaping here."""
    return '"' + str(value).replace('"', '\\"') + '"'


def _stmt(head: str, attrs: dict[str, str]) -> str:
    return f"{head} [" + " ".join(f"{k}={_q(v)}" for k, v in attrs.items()) + "]"


def _emit(g: graphviz.Digraph, groups: list[_Group], edges, cluster_labels: dict[str, str]) -> None:
    """Append node, cluster and edge statements to `g.body`, one statement a line.

    Written directly rather than through `Digraph.node`/`edge`: for thousands of nodes the
    package's per-attribute quoting dominated the drawing time. Ids are module paths.
    """
    tree: dict[tuple[str, ...], list[_Group]] = defaultdict(list)
    for grp in groups:
        tree[grp.cluster].append(grp)
    children: dict[tuple[str, ...], list[tuple[str, ...]]] = defaultdict(list)
    for path in list(tree):
        for depth in range(1, len(path) + 1):
            sub = path[:depth]
            if sub not in children[path[:depth - 1]]:
                children[path[:depth - 1]].append(sub)
    body = g.body

    def nodes(path: tuple[str, ...], indent: str) -> None:
        for grp in tree.get(path, []):
            attrs = {"label": _lbl(grp.label), "class": grp.cls, "fillcolor": grp.fill}
            if grp.shape != "box":
                attrs["shape"] = grp.shape
            attrs.update(grp.extra or {})
            body.append(indent + _stmt(_q(grp.id), attrs) + "\n")
        for child in children.get(path, []):
            name = child[-1]
            body.append(f"{indent}subgraph {_q('cluster_' + name)} {{\n")
            body.append(indent + "\tgraph " + _stmt("", {
                "label": cluster_labels.get(name, name), "style": "rounded,dashed", "color": "#aaaaaa",
                "fontsize": "10", "fontcolor": "#555555", "labeljust": "l", "margin": "6",
            }).lstrip() + "\n")
            nodes(child, indent + "\t")
            body.append(indent + "}\n")

    nodes((), "\t")
    for src, dst, attrs in edges:
        if "label" in attrs:
            attrs = {**attrs, "label": _lbl(attrs["label"])}
        body.append("\t" + _stmt(f"{_q(src)} -> {_q(dst)}", attrs) + "\n")


def build_graph(cfg: ArchConfig | OpTrace, detail: str = "units", direction: str = "TB", shapes: bool = True,
                fold: bool = False) -> graphviz.Digraph:
    """The network `cfg` builds, drawn from its traced module.

    Args:
        cfg: the config to draw (its trace is cached), or the ``trace_module`` of a built model.
        detail: "stages" (stem, one node a stage, head), "units" (one node per residual
            branch, one "+" per addition, shortcuts as labelled edges) or "layers" (every conv,
            BN, ReLU, add, pool and fc, clustered by unit and stage).
        direction: "TB" (top to bottom) or "LR" (left to right).
        shapes: label edges with the tensor shape C x H x W they carry.
        fold: at layer detail, draw BN/ReLU inside the conv they follow (or precede, in
            pre-activation units): "conv 3x3, 64 +BN +ReLU".

    Returns:
        A ``graphviz.Digraph``; node ids are module paths, nodes and edges carry a ``class``
        (conv, bn, relu, add, unit, stage, ...; main, skip identity|zero_pad|projection).
    """
    check_choice("detail", detail, DETAILS)
    check_choice("direction", direction, DIRECTIONS)
    trace = _trace_of(cfg)
    if detail == "layers":
        group_of, groups = _layer_groups(trace, fold)
    elif detail == "units":
        group_of, groups = _unit_groups(trace)
    else:
        group_of, groups = _stage_groups(trace)
    edges = _edges(trace, group_of, shapes, _skip_label(detail))
    what = {"stages": "stages", "units": "residual units", "layers": "layers"}[detail]
    title = f"{_text(trace.name)}: {what}" + (" (BN/ReLU folded)" if fold and detail == "layers" else "")
    g = _new_graph(_lbl(title), direction, len(groups))
    labels = {}
    for u in trace.units:
        labels[u.name] = u.name + ("" if not u.residual else {
            "identity": "  (identity)", "zero_pad": "  (zero-pad)", "projection": "  (projection)"}[u.shortcut])
    _emit(g, groups, edges, labels)
    return g


# --- the unit figure ----------------------------------------------------------------


def _pick_unit(trace: OpTrace, unit: str | None) -> UnitInfo:
    if unit is None:
        return next((u for u in trace.units if u.shortcut == "projection"), trace.units[0])
    for u in trace.units:
        if u.name == unit:
            return u
    names = [u.name for u in trace.units]
    shown = ", ".join(names[:6]) + (f", ... {names[-1]}" if len(names) > 6 else "")
    raise ConfigError("unit", unit, f"a residual unit of this network ({shown})")


def _compose(ops: list[Op], inner: str) -> str:
    """Ops applied in order to `inner`: [BN, ReLU] on "x" -> "ReLU(BN(x))"."""
    for o in ops:
        inner = f"{o.short}({inner})"
    return inner


def equation(cfg: ArchConfig | OpTrace, unit: str | None = None) -> str:
    """The unit's formula as the papers write it: "y = F(x, {W_i}) + x", "+ W_s x", with any
    ops after the addition applied around the sum (He et al. 2015 Eq. 1-2)."""
    trace = _trace_of(cfg)
    info = _pick_unit(trace, unit)
    mine = [o for o in trace.ops if o.unit == info.name]
    if not info.residual:
        return "y = F(x, {W_i})"
    pre = [o for o in mine if o.role == "pre"]
    shortcut = {
        "identity": "x",
        "zero_pad": "pad(x)",
        "projection": "W_s " + _compose(pre, "x"),
    }[info.shortcut]
    total = _compose([o for o in mine if o.role == "post"], f"F(x, {{W_i}}) + {shortcut}")
    return f"y = {total}"


def build_unit_figure(cfg: ArchConfig | OpTrace, unit: str | None = None, direction: str = "TB",
                      shapes: bool = True) -> graphviz.Digraph:
    """One real residual unit of the built model, drawn like the papers' unit figures.

    Args:
        cfg: the config whose model holds the unit.
        unit: module path of the unit ("layer2.0"); default: the first unit with a projection
            shortcut, else the first unit.
        direction: "TB" or "LR".
        shapes: label the input and output with their C x H x W.

    Returns:
        A ``graphviz.Digraph``: x -> the unit's ops in their traced order -> (+) -> y, the
        shortcut drawn as its own arc, and the unit's equation as the caption.
    """
    check_choice("direction", direction, DIRECTIONS)
    trace = _trace_of(cfg)
    info = _pick_unit(trace, unit)
    by_id = trace.by_id()
    mine = [o for o in trace.ops if o.unit == info.name]
    title = f"{_text(trace.name)}, unit {info.name}"
    caption = equation(cfg, info.name)
    g = graphviz.Digraph("unit")
    g.attr(rankdir=direction, label=_lbl(f"{title}\n\n{caption}"), labelloc="b",
           fontname="Times-Roman", fontsize="15", nodesep="0.35", ranksep="0.3")
    g.attr("node", shape="box", fontname="Times-Roman", fontsize="13", width="1.6", height="0.35",
           style="filled", fillcolor="#ffffff", color="#222222")
    g.attr("edge", fontname="Times-Italic", fontsize="12", arrowsize="0.7")
    g.node("x", label=_lbl("x" + (f"\n{_fmt(info.in_shape)}" if shapes else "")),
           shape="plaintext", fillcolor="none", **{"class": "io input"})
    g.node("y", label=_lbl("y" + (f"\n{_fmt(info.out_shape)}" if shapes else "")),
           shape="plaintext", fillcolor="none", **{"class": "io output"})

    def name(o: Op) -> str:
        if o.kind == "conv" and o.role == "shortcut":
            return f"W_s: {o.label}\n{o.params:,} params"
        if o.kind == "conv":
            return f"weight layer\n{o.label}"
        return o.label

    def draw(target: graphviz.Digraph, o: Op) -> None:
        attrs = {"class": o.kind + (" shortcut" if o.role == "shortcut" else "")}
        if o.kind == "add":
            attrs.update(shape="circle", width="0.35", fixedsize="true", fontsize="18")
        elif o.role == "shortcut":
            colour = _SKIP_COLOURS[info.shortcut]
            attrs.update(color=colour, penwidth="2", fillcolor=_COLOURS.get(info.shortcut, "#ffffff"))
        target.node(_safe_id(o.id), label=_lbl(name(o)), **attrs)

    branch = [o for o in mine if o.role == "branch"]
    for o in mine:
        if o.role != "branch":
            draw(g, o)
    with g.subgraph(name="cluster_F") as c:
        c.attr(label="F(x)", labeljust="r", style="dashed", color="#888888", fontname="Times-Italic")
        for o in branch:
            draw(c, o)
    for o in mine:
        for src in o.inputs:
            src_id = "x" if by_id[src].unit != info.name else _safe_id(src)
            attrs = {"weight": "4"}
            if o.id == info.add and src == info.shortcut_input or o.role == "shortcut":
                colour = _SKIP_COLOURS[info.shortcut]
                attrs = {"color": colour, "fontcolor": colour, "weight": "1", "penwidth": "1.6",
                         "style": "dashed" if info.shortcut == "identity" else "solid"}
                if o.id == info.add and info.shortcut == "identity":
                    attrs["label"] = _lbl("x\nidentity")
                attrs["class"] = f"skip {info.shortcut}" if o.id == info.add else "skip-path"
            g.edge(src_id, _safe_id(o.id), **attrs)
    g.edge(_safe_id(mine[-1].id), "y", weight="4")
    return g


# --- export -------------------------------------------------------------------------


def to_bytes(graph: graphviz.Digraph, fmt: str) -> bytes:
    """The graph as DOT source, or laid out by Graphviz as SVG, PNG or PDF (in memory).

    Raises:
        ConfigError: for a format other than dot, svg, png, pdf.
        GraphvizMissing: when SVG/PNG/PDF is asked for and the `dot` program is not installed.
    """
    check_choice("format", fmt, FORMATS)
    if fmt == "dot":
        return graph.source.encode("utf-8")
    if shutil.which("dot") is None:
        raise GraphvizMissing(_MISSING)
    try:
        if fmt == "png":
            # dpi only for bitmaps: set on the graph, it also scales SVG content past its viewBox.
            graph = graph.copy()
            graph.attr(dpi=str(PNG_DPI))
        # quiet: Graphviz's note that it shrank a tall PNG is reported by png_scale instead.
        return graph.pipe(format=fmt, quiet=fmt == "png")
    except graphviz.ExecutableNotFound as exc:
        raise GraphvizMissing(_MISSING) from exc


def png_scale(svg: str | bytes) -> float:
    """The factor Graphviz shrinks this drawing by when it renders it as PNG (1.0: full size).

    `svg` is the same graph already laid out as SVG: its size in points says how many pixels
    the PNG needs at PNG_DPI, and beyond PNG_MAX_PX on a side the whole bitmap is scaled down.
    """
    text = svg.decode("utf-8", "replace") if isinstance(svg, bytes) else svg
    match = re.search(r'<svg\s[^>]*?width="([\d.]+)pt"\s+height="([\d.]+)pt"', text)
    if match is None:
        return 1.0
    longest_px = max(float(match[1]), float(match[2])) * PNG_DPI / 72
    return min(1.0, PNG_MAX_PX / longest_px) if longest_px > 0 else 1.0


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels, read from a PNG's header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
        raise ValueError("not a PNG")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


_MISSING = ("Graphviz's `dot` program is not installed, so only DOT export works; install "
            "Graphviz (apt-get install graphviz, brew install graphviz or conda install graphviz) "
            "and make sure `dot` is on PATH")
