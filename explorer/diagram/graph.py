"""The network drawn from its trace, at three levels of detail.

Every drawing reads the one trace of the built module (explorer/trace.py): `build_graph` at
stage, unit or layer detail. Node ids are module paths (`layer1.0.conv1`), made in
explorer/diagram/ids.py.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable, Mapping

import graphviz

from explorer.arch.config import ArchConfig
from explorer.diagram.dot import (
    COLOURS, SKIP_COLOURS, Group, emit, lbl, new_graph, text, tip,
)
from explorer.diagram.highlight import highlight_legend, outline_changes, rolled_highlight
from explorer.diagram.ids import DETAILS, cluster_of, drawn_ids
from explorer.diagram.roll import (
    Run, by_unit, drawn_runs, hidden_units, mark_runs, roll_legend, rolled_path, run_ops, run_tooltip,
)
from explorer.diagram.overlay import (
    check_color_by, colour, colour_scale, legend, node_tooltip, node_value, shortcut_tooltip,
)
from explorer.labels import attention_kind, attention_text, fmt_shape
from explorer.errors import check_choice
from explorer.trace import Node, Trace, Unit, trace
from explorer.vocab import (
    ATTENTION_TEXT, GROUP_ROLES, IO_KINDS, POOL_KINDS, POOLED_PROJECTION, SHORTCUT_TEXT, shortcut_counts,
)

DIRECTIONS = ("TB", "LR")


def trace_of(source: ArchConfig | Trace) -> Trace:
    """The (cached) trace of a config, or a trace made earlier with `trace_module`."""
    return source if isinstance(source, Trace) else trace(source)


def unit_names(cfg: ArchConfig | Trace) -> list[str]:
    """Module paths of the config's residual units, in network order."""
    return [u.name for u in trace_of(cfg).units]


def _edges(trace: Trace, group_of: dict[str, str], shapes: bool, skip_label: Callable[[Unit], str],
           members: Mapping[str, Run] | None = None) -> list[tuple[str, str, dict[str, str]]]:
    """Edges between drawn groups, with shapes and skip styling.

    Ops mapped to "" (a shortcut collapsed at units detail) are folded into the skip edge
    that runs past them. `members`: unit -> its rolled run; edges from one unit of a run to the
    next are not drawn (the run is drawn once).
    """
    by_id = trace.by_id
    unit_of_add = {u.add: u for u in trace.units if u.add}
    units = {u.name: u for u in trace.units}
    seen: set[tuple[str, str]] = set()
    out = []
    for op in trace.nodes:
        dst = group_of[op.id]
        if not dst:
            continue
        for src_id in op.inputs:
            shape = by_id[src_id].shape
            src, walk = group_of[src_id], by_id[src_id]
            while not src:  # back through collapsed shortcut ops to the drawn group feeding them
                walk = by_id[walk.inputs[0]]
                src = group_of[walk.id]
            if members and walk.unit != op.unit and members.get(walk.unit, 0) is members.get(op.unit):
                continue  # inside a rolled run
            if src == dst or (src, dst) in seen:
                continue
            seen.add((src, dst))
            add_unit = unit_of_add.get(op.id)
            attrs: dict[str, str] = {}
            texts = []
            if add_unit is not None and src_id == add_unit.shortcut_input:
                kind = add_unit.shortcut
                colour = SKIP_COLOURS[kind]
                texts.append(skip_label(add_unit))
                attrs.update({"class": f"skip {kind}", "color": colour, "fontcolor": colour,
                              "style": "bold" if kind == "projection" else "dashed",
                              "penwidth": "2.2" if kind == "projection" else "1.4", "weight": "1",
                              "tooltip": tip(_run_note(members, add_unit.name) + shortcut_tooltip(trace, add_unit))})
            elif op.role == "shortcut":
                colour = SKIP_COLOURS[units[op.unit].shortcut]
                attrs.update({"class": "skip-path", "color": colour, "fontcolor": colour,
                              "style": "bold", "weight": "1",
                              "tooltip": tip(shortcut_tooltip(trace, units[op.unit]))})
            else:
                attrs.update({"class": "main", "weight": "4"})
            if shapes and shape:
                texts.append(fmt_shape(shape))
            label = "\n".join(t for t in texts if t)
            if label:
                attrs["label"] = label
            out.append((src, dst, attrs))
    return out


def _run_note(members: Mapping[str, Run] | None, unit: str) -> str:
    """"layer2.1 - layer2.199 x 199, each:" before the facts of a rolled unit's shortcut."""
    run = (members or {}).get(unit)
    return f"{run.label}, each:\n" if run else ""


def style_op(group: Group, op: Node) -> None:
    """Colour and shape of a layer-level node from its main op."""
    kind = op.kind
    if kind == "add":
        group.shape, group.fill, group.cls = "circle", "#ffffff", "add"
        group.extra = {"width": "0.3", "fixedsize": "true", "fontsize": "14"}
    elif op.role == "attention":  # SE / ECA: the gate's ops, and the product x * s drawn as a circle
        group.fill, group.cls = COLOURS.get(kind, COLOURS["attention"]), f"{kind} attention"
        group.extra = {"color": COLOURS["attention_edge"]}
        if kind == "mul":
            group.shape = "circle"
            group.extra.update({"width": "0.3", "fixedsize": "true", "fontsize": "14"})
    elif kind in IO_KINDS:
        group.shape, group.cls = "box", f"io {kind}"
        group.extra = {"style": "filled", "fillcolor": "#ffffff", "color": "#999999"}
    elif op.role == "shortcut" and kind == "conv":
        group.fill, group.cls = COLOURS["projection"], "conv projection"
        group.extra = {"color": SKIP_COLOURS["projection"], "penwidth": "2"}
    elif op.role == "shortcut" and kind == "pool":  # ResNet-D's average pool before W_s
        group.fill, group.cls = COLOURS["pool"], "pool shortcut"
        group.extra = {"color": SKIP_COLOURS["projection"], "penwidth": "1.5"}
    elif kind == "zero_pad":
        group.fill, group.cls = COLOURS["zero_pad"], "zero_pad"
        group.extra = {"color": SKIP_COLOURS["zero_pad"], "penwidth": "1.5"}
    else:
        group.fill = COLOURS.get("pool" if kind in POOL_KINDS else kind, "#ffffff")
        group.cls = kind + (" shortcut" if op.role == "shortcut" else "")


def _layer_groups(trace: Trace, fold: bool, runs: tuple[Run, ...] = ()) -> tuple[dict[str, str], list[Group]]:
    group_of = drawn_ids(trace, "layers", fold, bool(runs))
    groups: dict[str, Group] = {}
    hidden, members = hidden_units(runs), by_unit(runs)
    for op in trace.nodes:
        if op.kind == "flatten" and op.inputs:  # a reshape: drawn as part of the pool before it
            continue
        if op.unit in hidden:  # drawn once, in its run's first unit
            continue
        gid = group_of[op.id]
        if gid not in groups:
            groups[gid] = Group(gid, [], cluster=tuple(rolled_path(c, members) for c in cluster_of(op, "layers")))
        groups[gid].ops.append(op)
    for group in groups.values():
        main = next((o for o in group.ops if o.kind == "conv"), group.ops[0])
        style_op(group, main)
        idx = group.ops.index(main)
        before = "+".join(o.label for o in group.ops[:idx])
        after = " ".join("+" + o.label for o in group.ops[idx + 1:])
        text = "\u00d7" if main.kind == "mul" else main.label
        if main.role == "shortcut" and main.kind == "conv":
            text = f"{SHORTCUT_TEXT['projection'].word} {text}"
        text = (before + "+ " if before else "") + text + (" " + after if after else "")
        if main.role == "shortcut" and main.kind == "conv":
            text += f"\n{sum(o.params for o in group.ops):,} params"
        group.label = text
    return group_of, list(groups.values())


def _unit_groups(trace: Trace, runs: tuple[Run, ...] = ()) -> tuple[dict[str, str], list[Group]]:
    group_of = drawn_ids(trace, "units", roll=bool(runs))
    groups: dict[str, Group] = {}
    hidden = hidden_units(runs)
    for op in trace.nodes:
        gid = group_of[op.id]
        if not gid or op.unit in hidden:  # a shortcut's own op (the skip edge's label), a rolled unit
            continue
        if gid not in groups:
            groups[gid] = Group(gid, [], cluster=cluster_of(op, "units"))
        groups[gid].ops.append(op)
    units = {u.name: u for u in trace.units}
    for g in groups.values():
        op = g.ops[0]
        shorts = [o.short for o in g.ops if o.kind != "flatten"]
        if op.role == "io":
            style_op(g, op)
            g.label = op.label
        elif op.role in GROUP_ROLES:
            g.label = f"{op.role}\n" + _group_text(g.ops, shorts)
            g.fill, g.cls = COLOURS["pool"], op.role
        elif op.role == "branch":
            unit = units[op.unit]
            g.label = f"{op.unit}{'' if unit.residual else ' (plain)'}\n" + _join_layers(
                [o for o in g.ops if o.role == "branch"])
            gate = attention_text(g.ops, short=True)  # SE / ECA, drawn in the branch it scales
            g.label += f"\n+ {gate}" if gate else ""
            g.fill, g.cls = COLOURS["unit"], "unit"
        elif op.role == "add":
            style_op(g, op)
            g.label = "+"
        else:  # pre (shared by F and the projection) or post (after the addition)
            g.label = ("pre-activation\n" if op.role == "pre" else "") + " ".join(shorts)
            g.fill, g.cls = COLOURS[op.role], op.role
    return group_of, list(groups.values())


def _group_text(ops: list[Node], shorts: list[str]) -> str:
    """The stem's or head's ops on one line; a deep stem's three convs one a line."""
    if sum(o.kind == "conv" for o in ops) < 2:
        return " ".join(shorts)
    return _join_layers([o for o in ops if o.kind != "flatten"]).replace(" | ", "\n")


def _join_layers(ops: list[Node]) -> str:
    """"1x1,64 BN ReLU | 3x3,64 BN ReLU": the branch as one line, a bar before each later conv."""
    parts: list[str] = []
    seen_conv = False
    for o in ops:
        if o.kind == "conv" and seen_conv:
            parts.append("|")
        seen_conv = seen_conv or o.kind == "conv"
        parts.append(o.short)
    return " ".join(parts)


def _stage_groups(trace: Trace) -> tuple[dict[str, str], list[Group]]:
    group_of = drawn_ids(trace, "stages")
    groups: dict[str, Group] = {}
    for op in trace.nodes:
        gid = group_of[op.id]
        groups.setdefault(gid, Group(gid, [])).ops.append(op)
    for g in groups.values():
        op = g.ops[0]
        if op.role == "io":
            style_op(g, op)
            g.label = op.label
        elif op.stage:
            units = [u for u in trace.units if u.stage == op.stage]
            g.label = f"{op.stage}: {_count_units(units)}\nout {fmt_shape(g.ops[-1].shape)}"
            gate = ATTENTION_TEXT[attention_kind(g.ops)][1]  # "" without attention
            g.label += f"\n+ {gate} on each branch" if gate else ""
            g.fill, g.cls = COLOURS["stage"], "stage"
        else:
            shorts = [o.short for o in g.ops if o.kind != "flatten"]
            g.label = f"{op.role}\n" + _group_text(g.ops, shorts)
            g.fill, g.cls = COLOURS["pool"], op.role
    return group_of, list(groups.values())


def _count_units(units: list[Unit]) -> str:
    """"6 units (1 projection, 5 identity)" or "2 plain blocks"."""
    residual = [u for u in units if u.residual]
    if not residual:
        return f"{len(units)} plain block{'s' * (len(units) != 1)}"
    counts: dict[str, int] = defaultdict(int)
    for u in residual:
        counts[u.shortcut] += 1
    text = f"{len(residual)} unit{'s' * (len(residual) != 1)} ({shortcut_counts(counts)})"
    if len(residual) != len(units):
        text += f", {len(units) - len(residual)} plain"
    return text


def _skip_label(detail: str, pooled: set[str] = frozenset()) -> Callable[[Unit], str]:
    """The skip arc's label; `pooled`: units whose projection average-pools x first (ResNet-D)."""
    def label(unit: Unit) -> str:
        words = POOLED_PROJECTION if unit.name in pooled else SHORTCUT_TEXT[unit.shortcut]
        if unit.shortcut == "identity":
            return words.label
        if detail == "units":
            if unit.shortcut == "zero_pad":
                return words.label
            return f"{words.label}\n{unit.shortcut_params:,} params"
        return ""  # at layer detail the shortcut's own nodes say what it is
    return label



# many parameters: the public drawing call, each option a keyword of the Python API and the CLI
def build_graph(cfg: ArchConfig | Trace, detail: str = "units", direction: str = "TB", shapes: bool = True,
                fold: bool = False, color_by: str = "none",
                times: Mapping[str, float] | None = None,
                highlight: Mapping[str, str] | None = None, roll: bool | None = None) -> graphviz.Digraph:
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
        color_by: "none", or fill each node by its "params", "macs", "memory" (activation
            bytes) or measured "time" on a sequential scale, with a legend.
        times: module path -> ms of a per-layer profile (needed for color_by "time"; also
            adds each node's time to its tooltip).
        highlight: drawn node id -> the kind of change there ("shortcut", "unit_added", ...;
            several kinds separated by spaces), as `explorer.diff.highlights` gives them: those
            nodes get the class ``changed`` and a coloured outline, and the graph a legend.
        roll: draw each run of identical consecutive units (same ops, shapes, shortcut) once,
            with its count ("layer2.1 - layer2.199 x 199"), at unit and layer detail: True,
            False, or None for the default, rolled when the network has more than
            ``roll.ROLL_ABOVE`` units. A rolled node's id is the run's (``layer2.1-199``,
            ``layer2.1-199.conv1``); it is coloured by one unit's value.

    Returns:
        A ``graphviz.Digraph``; node ids are module paths, nodes and edges carry a ``class``
        (conv, bn, relu, add, unit, stage, ...; main, skip identity|zero_pad|projection), every
        node a ``tooltip`` with its facts and every shortcut arc one with the shortcut's.
    """
    check_choice("detail", detail, DETAILS)
    check_color_by(color_by, times)
    check_choice("direction", direction, DIRECTIONS)
    trace = trace_of(cfg)
    runs = drawn_runs(trace, detail, roll)
    if detail == "layers":
        group_of, groups = _layer_groups(trace, fold, runs)
    elif detail == "units":
        group_of, groups = _unit_groups(trace, runs)
    else:
        group_of, groups = _stage_groups(trace)
    pooled = {n.unit for n in trace.nodes if n.role == "shortcut" and n.kind == "pool"}
    edges = _edges(trace, group_of, shapes, _skip_label(detail, pooled), by_unit(runs))
    what = {"stages": "stages", "units": "residual units", "layers": "layers"}[detail]
    title = f"{text(trace.name)}: {what}" + (" (BN/ReLU folded)" if fold and detail == "layers" else "")
    rolled = mark_runs(groups, runs, detail)
    values = _annotate(trace, groups, color_by, times, rolled)
    if highlight and runs:
        members = by_unit(runs)
        highlight = rolled_highlight(highlight, lambda node: rolled_path(node, members))
    accents = outline_changes(groups, highlight) if highlight else set()
    g = new_graph(lbl(title), direction, len(groups))
    labels = {u.name: u.name + (f"  ({SHORTCUT_TEXT[u.shortcut].word})" if u.residual else "")
              for u in trace.units}
    gates: dict[str, list[Node]] = defaultdict(list)  # a unit's SE / ECA ops: their cluster's title
    for n in trace.nodes:
        if n.role == "attention":
            gates[n.unit].append(n)
    labels.update({f"{u}.se": f"{u}.se  ({attention_text(ops, short=True)})" for u, ops in gates.items()})
    labels.update({f"{r.id}.se": f"{r.id}.se  ({attention_text(gates[r.units[0]], short=True)})"
                   for r in runs if gates.get(r.units[0])})
    labels.update({r.id: f"{r.label}  ({SHORTCUT_TEXT[trace.unit(r.units[0]).shortcut].word})"
                   for r in runs if trace.unit(r.units[0]).residual})
    emit(g, groups, edges, labels)
    if color_by != "none":
        g.body.append(legend(color_by, colour_scale(values.values())))
    if rolled:
        g.body.append(roll_legend())
    if accents:
        g.body.append(highlight_legend(accents))
    return g


def _annotate(trace: Trace, groups: list[Group], color_by: str, times: Mapping[str, float] | None,
              rolled: Mapping[str, Run] | None = None) -> dict[str, float]:
    """Each drawn node's tooltip and, when colouring, its fill from the chosen fact (a rolled
    run's: one unit's, the mean over its units); the values coloured by, by drawn id."""
    rolled = rolled or {}

    def value(grp: Group) -> float:
        run = rolled.get(grp.id)
        if run is None:
            return node_value(grp.ops, color_by, times)
        return node_value(run_ops(trace, run, grp.ops), color_by, times) / run.count

    values = {grp.id: value(grp) for grp in groups if color_by != "none" and grp.ops[0].role != "io"}
    scale = colour_scale(values.values())
    for grp in groups:
        extra = dict(grp.extra or {})
        run = rolled.get(grp.id)
        text = run_tooltip(trace, run, grp.id, grp.ops, times) if run else node_tooltip(trace, grp.id, grp.ops, times)
        extra["tooltip"] = tip(text)
        if grp.id in values:
            grp.fill, extra["fontcolor"] = colour(values[grp.id], scale)
            extra.pop("fillcolor", None)
        grp.extra = extra
    return values

