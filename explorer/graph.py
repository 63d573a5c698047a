"""Graphviz diagrams traced from the built module, and their export to bytes.

`trace_ops` builds the config on the meta device, traces it with torch.fx (every conv, BN,
ReLU, pool, fc and the zero-pad shortcut stay leaves; the residual addition appears as an
`add`) and propagates shapes through the traced graph. Every view here is drawn from that
trace: `build_graph` at three levels of detail, `build_unit_figure` for one residual unit in
the style of He et al. 2015 Fig. 2 / 2016 Fig. 4. Node ids are module paths (`layer1.0.conv1`).
"""
from __future__ import annotations

import operator
import shutil
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable

import graphviz
import torch
import torch.fx as fx
from torch import nn

from .analysis import count_params, shortcut_kind
from .builder import ResidualUnit, ZeroPadShortcut, build_model
from .config import ArchConfig
from .errors import ConfigError

DETAILS = ("stages", "units", "layers")
DIRECTIONS = ("TB", "LR")
FORMATS = ("dot", "svg", "png", "pdf")

# Pixels per inch for PNG: graphviz's own default, kept explicit. Large graphs are laid out
# compactly (small rank and node separation) so that ResNet-152 at layer detail stays within
# cairo's bitmap limit without being scaled down.
PNG_DPI = 96

_FONT = "Helvetica"
_COLOURS = {
    "conv": "#dbe9f6", "bn": "#fdebd0", "relu": "#e2f0d9", "pool": "#ececec", "fc": "#e8def3",
    "io": "#ffffff", "stage": "#dbe9f6", "unit": "#dbe9f6", "projection": "#f6c6c0",
    "zero_pad": "#fde2c4", "post": "#e2f0d9", "pre": "#fdebd0",
}
_SKIP_COLOURS = {"identity": "#1f77b4", "zero_pad": "#e67e22", "projection": "#c0392b"}
_MAIN_EDGE = "#555555"


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


class _ScopeTracer(fx.Tracer):
    """fx tracer that keeps the zero-pad shortcut a leaf and records each node's module scope."""

    def __init__(self) -> None:
        super().__init__()
        self._scope = [""]

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, ZeroPadShortcut) or super().is_leaf_module(m, qualname)

    def call_module(self, m, forward, args, kwargs):
        self._scope.append(self.path_of_module(m))
        try:
            return super().call_module(m, forward, args, kwargs)
        finally:
            self._scope.pop()

    def create_node(self, *args, **kwargs):
        node = super().create_node(*args, **kwargs)
        node.meta["scope"] = self._scope[-1]
        return node


_ADD_FUNCS = (operator.add, operator.iadd, torch.add)


@lru_cache(maxsize=32)
def trace_ops(cfg: ArchConfig) -> OpTrace:
    """Trace the model `cfg` builds (meta device, batch 1) into ops with output shapes."""
    with torch.device("meta"):
        model = build_model(cfg)
        x = torch.empty(1, cfg.in_channels, cfg.input_size, cfg.input_size)  # (B, C, H, W)
    graph = _ScopeTracer().trace(model)
    modules = dict(model.named_modules())
    unit_mods = {name: m for name, m in modules.items() if isinstance(m, ResidualUnit)}

    values: dict[fx.Node, object] = {}
    ids: dict[fx.Node, str] = {}
    taken: set[str] = set()
    raw: list[dict] = []
    for node in graph.nodes:
        args = [values.get(a, a) if isinstance(a, fx.Node) else a for a in node.args]
        if node.op == "placeholder":
            out, kind, base, mod = x, "input", "input", None
        elif node.op == "call_module":
            mod = modules[node.target]
            # BatchNorm changes no shape; its Python meta decomposition is slow, so skip it.
            out = args[0] if isinstance(mod, nn.BatchNorm2d) else mod(*args)
            kind, base = _module_kind(mod), node.target
        elif node.op == "call_function":
            out = node.target(*args, **node.kwargs)
            mod = None
            if node.target in _ADD_FUNCS:
                kind = "add"
            else:
                kind = getattr(node.target, "__name__", "op")
            scope = node.meta.get("scope", "")
            base = f"{scope}.{kind}" if scope else kind
        elif node.op == "output":
            out, kind, base, mod = args[0], "output", "output", None
        else:  # get_attr and the like: no tensor op to draw
            values[node] = getattr(model, str(node.target), None)
            continue
        values[node] = out
        op_id = _unique(base.replace(":", "_"), taken)
        ids[node] = op_id
        shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else ()
        label, short = _describe(kind, mod, shape)
        inputs = tuple(ids[a] for a in node.all_input_nodes if a in ids)
        scope = node.target if node.op == "call_module" else node.meta.get("scope", "")
        unit = _enclosing(str(scope), unit_mods)
        raw.append(dict(id=op_id, kind=kind, unit=unit, stage=unit.split(".")[0] if unit else "",
                        shape=shape, inputs=inputs, label=label, short=short,
                        params=count_params(mod) if mod is not None else 0))

    roles = _roles(raw, unit_mods)
    ops = tuple(Op(role=roles[r["id"]], **r) for r in raw)
    units = tuple(_unit_info(name, m, ops) for name, m in unit_mods.items())
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


def _unit_info(name: str, mod: ResidualUnit, ops: tuple[Op, ...]) -> UnitInfo:
    mine = [op for op in ops if op.unit == name]
    by_id = {op.id: op for op in ops}
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


def unit_names(cfg: ArchConfig) -> list[str]:
    """Module paths of the config's residual units, in network order."""
    return [u.name for u in trace_ops(cfg).units]


# --- drawing ------------------------------------------------------------------------


def _fmt(shape: Iterable[int]) -> str:
    return "x".join(str(s) for s in shape)


def _text(value: object) -> str:
    """User text made safe for a plain DOT label: one line, literal backslashes, quotes escaped."""
    return graphviz.escape(" ".join(str(value).split()))


def _safe_id(op_id: str) -> str:
    # ':' introduces a port in DOT edge statements; module paths never hold one, but be sure.
    return op_id.replace(":", "_")


def _new_graph(title: str, direction: str, compact: bool) -> graphviz.Digraph:
    g = graphviz.Digraph("resnet")
    g.attr(rankdir=direction, label=title, labelloc="t", fontname=_FONT, fontsize="16",
           nodesep="0.18" if compact else "0.3", ranksep="0.22" if compact else "0.35",
           newrank="true", dpi=str(PNG_DPI))
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


