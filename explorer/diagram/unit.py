"""One residual unit of the built model, drawn like the papers' unit figures, and its equation."""
from __future__ import annotations

import textwrap

import graphviz

from explorer.arch.config import ArchConfig
from explorer.diagram.dot import COLOURS, SKIP_COLOURS, lbl, safe_id, text
from explorer.diagram.graph import DIRECTIONS, trace_of
from explorer.errors import ConfigError, check_choice
from explorer.labels import attention_kind, attention_text, fmt_shape
from explorer.trace import Node, Trace, Unit
from explorer.vocab import ATTENTION_TEXT, SHORTCUT_TEXT


def default_unit(cfg: ArchConfig | Trace) -> str:
    """The unit the figure shows unless told: the first whose shortcut adapts x (an average-pool
    projection first, where ResNet-D differs; then a projection; then a zero-pad), else the first."""
    trace = trace_of(cfg)
    pooled = {n.unit for n in trace.nodes if n.role == "shortcut" and n.kind == "pool"}
    firsts = (u for test in (lambda u: u.name in pooled, lambda u: u.shortcut == "projection",
                             lambda u: u.shortcut == "zero_pad") for u in trace.units if test(u))
    return next(firsts, trace.units[0]).name


def _pick_unit(trace: Trace, unit: str | None) -> Unit:
    if unit is None:
        unit = default_unit(trace)
    for u in trace.units:
        if u.name == unit:
            return u
    names = [u.name for u in trace.units]
    shown = ", ".join(names[:6]) + (f", ... {names[-1]}" if len(names) > 6 else "")
    raise ConfigError("unit", unit, f"a residual unit of this network ({shown})")


def _compose(ops: list[Node], inner: str) -> str:
    """Ops applied in order to `inner`: [BN, ReLU] on "x" -> "ReLU(BN(x))"."""
    for o in ops:
        inner = f"{o.short}({inner})"
    return inner


def _pooled(mine: list[Node]) -> bool:
    """Whether the unit's shortcut average-pools x before its projection (ResNet-D)."""
    return any(o.role == "shortcut" and o.kind == "pool" for o in mine)


def equation(cfg: ArchConfig | Trace, unit: str | None = None) -> str:
    """The unit's formula as the papers write it: "y = F(x, {W_i}) + x", "+ W_s x", with any
    ops after the addition applied around the sum (He et al. 2015 Eq. 1-2); with channel
    attention the branch is scaled by its gate, s(F(x)) * F(x) (Hu et al. 2018, Eq. 4), and an
    average-pool projection reads W_s avgpool(x) (He et al. 2019, ResNet-D)."""
    trace = trace_of(cfg)
    info = _pick_unit(trace, unit)
    mine = [o for o in trace.nodes if o.unit == info.name]
    branch = "F(x, {W_i})" if attention_kind(mine) == "none" else "s(F(x)) * F(x)"
    if not info.residual:
        return f"y = {branch}"
    pre = [o for o in mine if o.role == "pre"]
    projected = _compose(pre, "x")
    if _pooled(mine):
        projected = f"avgpool({projected})"
    shortcut = {
        "identity": "x",
        "zero_pad": f"pad({_compose(pre, 'x')})",  # pre-activation units pad the activated x
        "projection": "W_s " + projected,
    }[info.shortcut]
    total = _compose([o for o in mine if o.role == "post"], f"{branch} + {shortcut}")
    return f"y = {total}"


def gate_equation(cfg: ArchConfig | Trace, unit: str | None = None) -> str:
    """What s is in the unit's equation, with the gate's sizes: "s(F) = sigmoid(W_2 ReLU(W_1
    avgpool(F))), 256 -> 16 -> 256 (squeeze-excitation)"; "" for a unit without attention."""
    trace = trace_of(cfg)
    mine = [o for o in trace.nodes if o.unit == _pick_unit(trace, unit).name]
    kind = attention_kind(mine)
    if kind == "none":
        return ""
    if kind == "se":
        detail = attention_text(mine).split(", ", 1)[1]
        return f"s(F) = sigmoid(W_2 ReLU(W_1 avgpool(F))), {detail} ({ATTENTION_TEXT['se'][0]})"
    k = attention_text(mine, short=True).split("=")[-1]
    return f"s(F) = sigmoid(conv1d_k(avgpool(F))), k = {k} ({ATTENTION_TEXT['eca'][1]})"


TITLE_WIDTH = 40  # characters per line of the figure's title
CAPTION_WIDTH = 44  # and of each formula under it


def build_unit_figure(cfg: ArchConfig | Trace, unit: str | None = None, direction: str = "TB",
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
    trace = trace_of(cfg)
    info = _pick_unit(trace, unit)
    mine = [o for o in trace.nodes if o.unit == info.name]
    # wrapped, so a long config name does not widen the figure (side by side it would shrink it)
    title = "\n".join(text(line) for line in textwrap.wrap(f"{trace.name}, unit {info.name}", TITLE_WIDTH))
    # each formula wrapped like the title: a long one would widen the figure and so shrink its text
    caption = "\n".join(part for line in (equation(trace, info.name), gate_equation(trace, info.name)) if line
                        for part in textwrap.wrap(line, CAPTION_WIDTH, break_long_words=False))
    g = graphviz.Digraph("unit")
    g.attr(rankdir=direction, label=lbl(f"{title}\n\n{caption}"), labelloc="b",
           fontname="Times-Roman", fontsize="15", nodesep="0.35", ranksep="0.3")
    g.attr("node", shape="box", fontname="Times-Roman", fontsize="13", width="1.6", height="0.35",
           style="filled", fillcolor="#ffffff", color="#222222")
    g.attr("edge", fontname="Times-Italic", fontsize="12", arrowsize="0.7")
    g.node("x", label=lbl("x" + (f"\n{fmt_shape(info.in_shape)}" if shapes else "")),
           shape="plaintext", fillcolor="none", **{"class": "io input"})
    g.node("y", label=lbl("y" + (f"\n{fmt_shape(info.out_shape)}" if shapes else "")),
           shape="plaintext", fillcolor="none", **{"class": "io output"})
    gate = [o for o in mine if o.role == "attention" and o.kind != "mul"]  # s(F); the product stays outside
    for o in mine:
        if o.role != "branch" and o not in gate:
            _draw_op(g, o, info)
    with g.subgraph(name="cluster_F") as c:
        c.attr(label="F(x)", labeljust="r", style="dashed", color="#888888", fontname="Times-Italic")
        for o in mine:
            if o.role == "branch":
                _draw_op(c, o, info)
    if gate:
        with g.subgraph(name="cluster_s") as c:
            name = ATTENTION_TEXT[attention_kind(mine)][0]
            c.attr(label=lbl(f"s(F): {name}"), labeljust="r", style="dashed", color=COLOURS["attention_edge"],
                   fontname="Times-Italic")
            for o in gate:
                _draw_op(c, o, info)
    _draw_edges(g, trace, info, mine)
    return g


def _op_text(o: Node) -> str:
    """An op's box as the papers label it: "weight layer" for a conv, W_s for a projection, the
    gate's own layers with their parameters."""
    if o.kind == "conv" and o.role == "shortcut":
        return f"W_s: {o.label}\n{o.params:,} params"
    if o.kind == "conv" and o.role == "attention":
        name = {"fc1": "W_1: ", "fc2": "W_2: "}.get(o.id.rsplit(".", 1)[-1], "")  # SE's two; ECA's one
        return f"{name}{o.label}\n{o.params:,} params"
    if o.kind == "conv":
        return f"weight layer\n{o.label}"
    if o.kind == "sigmoid":
        return f"s: {o.label}"
    if o.kind == "mul":
        return "\u00d7"
    return o.label


def _draw_op(target: graphviz.Digraph, o: Node, info: Unit) -> None:
    attrs = {"class": o.kind + (" shortcut" if o.role == "shortcut" else "")
             + (" attention" if o.role == "attention" else "")}
    if o.kind in ("add", "mul"):
        attrs.update(shape="circle", width="0.35", fixedsize="true", fontsize="18")
    elif o.role == "attention":
        attrs.update(fillcolor=COLOURS["attention"], color=COLOURS["attention_edge"])
    elif o.role == "shortcut":
        colour = SKIP_COLOURS[info.shortcut]
        attrs.update(color=colour, penwidth="2", fillcolor=COLOURS.get(info.shortcut, "#ffffff"))
    target.node(safe_id(o.id), label=lbl(_op_text(o)), **attrs)


def _draw_edges(g: graphviz.Digraph, trace: Trace, info: Unit, mine: list[Node]) -> None:
    """x -> the ops in traced order -> y; the shortcut's arcs in its colour, an identity dashed."""
    by_id = trace.by_id
    for o in mine:
        for src in o.inputs:
            src_id = "x" if by_id[src].unit != info.name else safe_id(src)
            attrs = {"weight": "4"}
            if o.kind == "mul" and by_id[src].role != "attention":  # F(x) itself, scaled by its gate
                attrs = {"weight": "1", "label": lbl("F(x)"), "class": "attention-scale"}
            if o.id == info.add and src == info.shortcut_input or o.role == "shortcut":
                colour = SKIP_COLOURS[info.shortcut]
                attrs = {"color": colour, "fontcolor": colour, "weight": "1", "penwidth": "1.6",
                         "style": "dashed" if info.shortcut == "identity" else "solid"}
                if o.id == info.add and info.shortcut == "identity":
                    attrs["label"] = lbl("x\n" + SHORTCUT_TEXT["identity"].label)
                attrs["class"] = f"skip {info.shortcut}" if o.id == info.add else "skip-path"
            g.edge(src_id, safe_id(o.id), **attrs)
    g.edge(safe_id(mine[-1].id), "y", weight="4")

