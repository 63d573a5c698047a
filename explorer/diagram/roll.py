"""Runs of identical residual units, drawn once with their count ("rolled").

Two consecutive units of a stage are identical when their traced ops match field for field once
the unit's own path is taken out of every id: the same ops, settings, shapes, costs and shortcut.
A run of two or more such units is drawn as its first unit under the run's id, `layer2.1-199`:
its ops become `layer2.1-199.conv1`, its addition `layer2.1-199.add`, its cluster at layer detail
`cluster_layer2.1-199`; the other units of the run are not drawn. A reader learns no more from
199 identical units drawn one by one than from one drawn with "x 199".
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Mapping

from explorer.diagram.dot import Group
from explorer.diagram.overlay import node_tooltip, totals
from explorer.labels import fmt_ms
from explorer.records import Node, Trace, Unit

# Networks with more units than this are drawn rolled unless asked otherwise: ResNet-1202 (600
# units) and the pre-activation ResNet-1001 (333) roll; ResNet-164 (54 units), ResNet-110 with
# one-layer shortcuts (108) and every smaller preset draw whole.
ROLL_ABOVE = 150
MIN_RUN = 2  # identical units in a row that make a run


@dataclass(frozen=True)
class Run:
    """Consecutive identical units of one stage, drawn once."""

    id: str                     # drawn id: "layer2.1-199" (first unit, then the last unit's index)
    stage: str                  # "layer2"
    units: tuple[str, ...]      # unit paths in network order: ("layer2.1", ..., "layer2.199")

    @property
    def count(self) -> int:
        return len(self.units)

    @property
    def label(self) -> str:
        """"layer2.1 - layer2.199 x 199"."""
        return f"{self.units[0]} - {self.units[-1]} x {self.count}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "stage": self.stage, "units": list(self.units)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Run":
        return cls(str(d["id"]), str(d["stage"]), tuple(str(u) for u in d["units"]))


def run_id(first: str, last: str) -> str:
    """"layer2.1-199" for units layer2.1 ... layer2.199 (the last unit's whole path when the two
    paths differ before their last part)."""
    head, _, _ = first.rpartition(".")
    lhead, _, ltail = last.rpartition(".")
    return f"{first}-{ltail if head == lhead else last}"


def _relative(op_id: str, prefix: str, outside: dict[str, str]) -> str:
    if op_id.startswith(prefix):
        return op_id[len(prefix):]
    return outside.setdefault(op_id, f"^{len(outside)}")  # read from outside the unit: its input


def unit_signature(unit: Unit, ops: list[Node]) -> tuple | None:
    """What makes a unit what it is, without its own path: equal signatures draw alike. None for
    a unit with an op outside its path (it never rolls)."""
    prefix = unit.name + "."
    if not ops or any(not o.id.startswith(prefix) for o in ops):
        return None
    outside: dict[str, str] = {}
    nodes = tuple((o.id[len(prefix):], o.kind, o.role, o.in_shapes, o.shape, o.label, o.short, o.params,
                   o.flops, o.act_bytes, o.kernel, o.stride, o.dilation, o.groups,
                   tuple(_relative(i, prefix, outside) for i in o.inputs)) for o in ops)
    shortcut_input = _relative(unit.shortcut_input, prefix, outside) if unit.shortcut_input else ""
    return (unit.stage, unit.residual, unit.layers, unit.in_shape, unit.out_shape, unit.shortcut,
            unit.shortcut_params, unit.shortcut_macs, unit.branch_params, unit.reason,
            unit.add.removeprefix(prefix), shortcut_input, nodes)


_RUNS: dict[int, tuple[Trace, tuple[Run, ...]]] = {}  # id(trace) -> (trace, its runs), the last few


def find_runs(trace: Trace) -> tuple[Run, ...]:
    """The runs of `MIN_RUN` or more identical consecutive units of one stage, in network order."""
    hit = _RUNS.get(id(trace))
    if hit is not None and hit[0] is trace:
        return hit[1]
    ops: dict[str, list[Node]] = defaultdict(list)
    for op in trace.nodes:
        if op.unit:
            ops[op.unit].append(op)
    runs: list[Run] = []
    group: list[str] = []
    last_sig: tuple | None = None
    for unit in trace.units:
        sig = unit_signature(unit, ops[unit.name])
        if group and sig is not None and sig == last_sig:
            group.append(unit.name)
            continue
        if len(group) >= MIN_RUN:
            runs.append(Run(run_id(group[0], group[-1]), trace.unit(group[0]).stage, tuple(group)))
        group, last_sig = [unit.name], sig
    if len(group) >= MIN_RUN:
        runs.append(Run(run_id(group[0], group[-1]), trace.unit(group[0]).stage, tuple(group)))
    if len(_RUNS) >= 8:
        _RUNS.pop(next(iter(_RUNS)))
    _RUNS[id(trace)] = (trace, tuple(runs))
    return tuple(runs)


def rolls(trace: Trace, roll: bool | None) -> bool:
    """Whether a drawing of `trace` rolls its runs: as asked, or (None) when the network has more
    than ROLL_ABOVE units."""
    return bool(roll) if roll is not None else len(trace.units) > ROLL_ABOVE


def drawn_runs(trace: Trace, detail: str, roll: bool | None) -> tuple[Run, ...]:
    """The runs a drawing at `detail` rolls: none at stage detail (a stage is one node already)."""
    return find_runs(trace) if detail != "stages" and rolls(trace, roll) else ()


def by_unit(runs: tuple[Run, ...]) -> dict[str, Run]:
    """Unit path -> the run it belongs to."""
    return {u: r for r in runs for u in r.units}


def hidden_units(runs: tuple[Run, ...]) -> set[str]:
    """Units of a run other than its first: drawn through the first."""
    return {u for r in runs for u in r.units[1:]}


def _unit_of(path: str, members: Mapping[str, Run]) -> str:
    """The longest leading part of `path` that is a unit in a run, or ""."""
    parts = path.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in members:
            return ".".join(parts[:n])
    return ""


def rolled_path(path: str, members: Mapping[str, Run]) -> str:
    """A path inside a rolled unit as drawn: `layer2.57.conv1` -> `layer2.1-199.conv1`; other
    paths unchanged."""
    unit = _unit_of(path, members)
    return members[unit].id + path[len(unit):] if unit else path


def roll_ids(ids: Mapping[str, str], trace: Trace, runs: tuple[Run, ...]) -> dict[str, str]:
    """Drawn ids (op id -> node id) with every node inside a run's unit renamed into the run."""
    members = by_unit(runs)
    by_id = trace.by_id
    out = {}
    for op_id, drawn in ids.items():
        run = members.get(by_id[op_id].unit)
        if run is not None and drawn:
            drawn = rolled_path(drawn, {by_id[op_id].unit: run})
        out[op_id] = drawn
    return out


def run_at(trace: Trace, path: str) -> tuple[Run, str] | None:
    """(run, the rest of the path) for a path naming a run or something drawn in it
    (`layer2.1-199`, `layer2.1-199.conv1` -> ".conv1"); None otherwise."""
    if "-" not in path:
        return None
    for run in find_runs(trace):
        if path == run.id or path.startswith(run.id + "."):
            return run, path[len(run.id):]
    return None


def unrolled_path(trace: Trace, path: str) -> str:
    """A run's path in a drawing that does not roll: its first unit's (`layer2.1-199.conv1` ->
    `layer2.1.conv1`); other paths unchanged."""
    hit = run_at(trace, path)
    return hit[0].units[0] + hit[1] if hit else path


def share(part: float, whole: float) -> str:
    return f" ({part / whole:.2%} of the network)" if whole else ""


def run_ops(trace: Trace, run: Run, ops: list[Node]) -> list[Node]:
    """The ops of every unit of `run` that `ops` (ops of its first unit) stand for."""
    first = run.units[0]
    by_id = trace.by_id
    return [by_id[u + o.id[len(first):]] for u in run.units for o in ops if u + o.id[len(first):] in by_id]


def run_tooltip(trace: Trace, run: Run, path: str, ops: list[Node],
                times: Mapping[str, float] | None = None) -> str:
    """The facts of a node drawn for a run: what it stands for, one unit's figures and all of them."""
    every = totals(run_ops(trace, run, ops), times)
    lines = node_tooltip(trace, path, ops, times).split("\n")
    whole = [f"all {run.count}: params {every.params:,}{share(every.params, trace.params)}",
             f"all {run.count}: MACs {every.macs:,}{share(every.macs, trace.macs)}"]
    each = [f"each unit: {line}" for line in lines[3:] if not line.startswith("time ")]
    if every.ms is not None:  # measured times differ from unit to unit: their mean, as coloured
        each.append(f"each unit (mean): time {fmt_ms(every.ms / run.count)}")
        whole.append(f"all {run.count}: time {fmt_ms(every.ms)}")
    return "\n".join([lines[0], f"{run.label}: {run.count} identical units drawn once", *lines[1:3],
                      *each, *whole])


def mark_runs(groups: list[Group], runs: tuple[Run, ...], detail: str) -> dict[str, Run]:
    """Drawn id -> run, for the nodes drawn for a rolled run: a double outline, the class
    ``rolled``, and at unit detail the run's name and count in the branch's label."""
    firsts = {r.units[0]: r for r in runs}
    rolled = {}
    for grp in groups:
        run = firsts.get(grp.ops[0].unit)
        if run is None:
            continue
        rolled[grp.id] = run
        grp.cls = f"{grp.cls} rolled"
        grp.extra = {**(grp.extra or {}), "peripheries": "2"}
        if detail == "units" and grp.label.startswith(run.units[0]):
            grp.label = run.label + grp.label[len(run.units[0]):]
    return rolled


def roll_legend() -> str:
    """A DOT node statement saying what a double outline means (and how a run is coloured)."""
    text = "double outline: identical\\lunits drawn once (x count);\\lcolour and figures per unit\\l"
    return (f'\t"roll_legend" [shape=plaintext class="legend" fontsize="10" label="{text}" '
            f'tooltip="Runs of identical consecutive units are drawn once with their count. '
            f'Unroll them with the Roll repeats toggle (roll=False, --no-roll)."]\n')
