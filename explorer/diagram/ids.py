"""Which drawn node shows each traced op, at each detail level: the one place drawn ids are made.

At layer detail every op is its own node (its module path), a flatten is drawn in the pool
before it, and with `fold` a BN/ReLU in the conv of its layer. At unit detail a unit's branch is
one node (the unit's path), its addition `<unit>.add`, its pre-activation and post-addition ops
`<unit>.pre` / `<unit>.post`, the stem and the head one node each; the shortcut's own ops are
drawn as the label of the skip arc, so no node holds them. At stage detail a stage is one node.
With `roll`, runs of identical units are drawn once under the run's id (explorer/diagram/roll.py).
The diagrams draw these ids; the diff's highlights and the app's inspector ask for them here.
"""
from __future__ import annotations

import re
from collections import defaultdict
from typing import Literal, get_args

from explorer.diagram.dot import safe_id
from explorer.diagram.roll import by_unit, drawn_runs, roll_ids, rolled_path, unrolled_path
from explorer.errors import check_choice
from explorer.records import Node, Trace
from explorer.vocab import GROUP_ROLES, NORM_KINDS, ROLES

Detail = Literal["stages", "units", "layers"]
DETAILS: tuple[Detail, ...] = get_args(Detail)
# A unit's drawn nodes in the order a reader names them: F, the addition, then the ops around them.
_UNIT_ORDER = ("branch", "add", "pre", "post")
_RANK = {role: i for i, role in enumerate(_UNIT_ORDER + tuple(r for r in ROLES if r not in _UNIT_ORDER))}


def fold_owners(trace: Trace) -> dict[str, str]:
    """BN/ReLU op id -> the conv it is drawn in when folding.

    Inside a unit, layer j's ops are `conv{j}`, `bn{j}`, `relu{j}` wherever they sit, so a
    BN/ReLU folds into the conv of its own layer when the two are adjacent (after it, or
    before it in pre-activation units); outside units (stem, projection) a conv takes the
    BN/ReLU chain that follows it.
    """
    by_id = trace.by_id
    consumers: dict[str, list[str]] = defaultdict(list)
    for op in trace.nodes:
        for i in op.inputs:
            consumers[i].append(op.id)

    def layer_of(op_id: str) -> str:
        return re.sub(r"^[a-z]+", "", op_id.rsplit(".", 1)[-1])

    def joins(op: Node, conv: Node, forward: bool) -> bool:
        if op.kind not in NORM_KINDS or op.unit != conv.unit or op.id in owner:
            return False
        if conv.unit and conv.role not in ("shortcut", "attention"):  # an SE conv takes its ReLU as a stem's does
            return layer_of(op.id) == layer_of(conv.id)
        return forward

    owner: dict[str, str] = {}
    for op in trace.nodes:
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


def _unit_detail_id(op: Node) -> str:
    if op.role == "shortcut":
        return ""  # drawn as the skip arc's label
    if op.role == "io":
        return safe_id(op.id)
    if op.role in GROUP_ROLES:
        return op.role
    if op.role in ("branch", "attention"):  # SE / ECA scale F: drawn in the branch's node
        return safe_id(op.unit)
    return safe_id(f"{op.unit}.{op.role}")  # add, pre, post


def drawn_ids(trace: Trace, detail: str = "units", fold: bool = False, roll: bool | None = False) -> dict[str, str]:
    """Op id -> id of the drawn node that shows it at `detail` ("" for a shortcut's own op at
    unit detail, drawn as its arc's label). `fold` is layer detail's BN/ReLU folding; `roll`
    draws runs of identical units once (None: when the network is large, as `build_graph`)."""
    check_choice("detail", detail, DETAILS)
    runs = drawn_runs(trace, detail, roll)
    if detail == "units":
        ids = {op.id: _unit_detail_id(op) for op in trace.nodes}
        return roll_ids(ids, trace, runs) if runs else ids
    if detail == "stages":
        return {op.id: safe_id(op.id if op.role == "io" else op.stage or op.role) for op in trace.nodes}
    owner = fold_owners(trace) if fold else {}
    out: dict[str, str] = {}
    for op in trace.nodes:
        if op.kind == "flatten" and op.inputs:  # a reshape: drawn as part of the pool before it
            out[op.id] = out[op.inputs[0]]
        else:
            out[op.id] = safe_id(owner.get(op.id, op.id))
    return roll_ids(out, trace, runs) if runs else out


def cluster_of(op: Node, detail: str) -> tuple[str, ...]:
    """The nesting of clusters an op's node sits in: (stage, unit) at layer detail, (stage,) at
    unit detail, none at stage detail."""
    if detail == "layers":
        if op.role == "attention" and op.kind != "mul":  # the gate s(F) in its own box; x * s beside F
            return (op.stage, op.unit, f"{op.unit}.se")
        return (op.stage, op.unit) if op.unit else ()
    if detail == "units":
        return (op.stage,) if op.stage else ()
    return ()


def node_id(trace: Trace, path: str, detail: str = "units", fold: bool = False, roll: bool | None = False) -> str:
    """The drawn node or cluster that shows `path` at `detail`: an op's node (or the node it is
    folded or grouped into), a drawn group (`stem`, `layer1.0.pre`), else the nearest enclosing
    unit or stage drawn as a node or a cluster; "" when nothing drawn holds it. With `roll`, a
    path inside a rolled run (`layer2.57.conv1`) is shown by the run's node (`layer2.1-199.conv1`);
    without it, a run's path by its first unit's node."""
    ids = drawn_ids(trace, detail, fold, roll)
    if ids.get(path):
        return ids[path]
    members = by_unit(drawn_runs(trace, detail, roll))
    path = rolled_path(path, members) if members else unrolled_path(trace, path)
    if ids.get(path):
        return ids[path]
    drawn = set(ids.values()) | {rolled_path(c, members) for op in trace.nodes for c in cluster_of(op, detail)}
    parts = path.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate and candidate in drawn:
            return candidate
    return ""


def segment_ids(trace: Trace, detail: str = "units", fold: bool = False) -> dict[str, list[str]]:
    """Drawn node ids of each unit (branch first, then the addition, pre and post nodes) and of
    the stem and the head, keyed by unit path, "stem" and "head"."""
    ids = drawn_ids(trace, detail, fold)
    ranked = sorted(trace.nodes, key=lambda o: _RANK[o.role])  # stable: execution order within a role
    out: dict[str, list[str]] = {}
    for op in ranked:
        key = op.unit or (op.role if op.role in GROUP_ROLES else "")
        if key and ids[op.id] and ids[op.id] not in out.setdefault(key, []):
            out[key].append(ids[op.id])
    return out


def ops_drawn_in(trace: Trace, drawn: str, detail: str = "units", fold: bool = False) -> list[Node]:
    """The ops the node `drawn` shows at `detail`, in execution order."""
    ids = drawn_ids(trace, detail, fold)
    return [op for op in trace.nodes if ids[op.id] == drawn]
