"""What the Diagram view's inspector shows: the selected node's facts, its unit's shape check,
the paths the find box knows, and the selection in the page address. Plain data, no streamlit.

A selection is a module path of the trace (`layer3.4.conv2`), a unit or stage (`layer3.4`,
`layer3`), or one of the drawn group ids that are not modules (`stem`, `head`,
`layer1.0.pre`, `layer1.0.post`), or a node drawn for a rolled run of identical units
(`layer2.1-199`, `layer2.1-199.conv1`: the same part of every unit of the run). Its ops are the
trace's ops under that path. Which drawn node holds a selection is the diagram's to say
(`explorer.diagram.node_id`).
"""
from __future__ import annotations

import difflib
from collections import Counter
from typing import Any, Mapping

from explorer import ArchConfig
from explorer.labels import fmt_bytes, fmt_ms
from explorer.limits import MAX_PATH
from explorer.records import Node, Trace

NODE_PARAM = "node"  # query parameter of the selection: ?node=layer3.4.conv2
ROLL_PARAM = "roll"  # query parameter of the diagram's rolling when chosen: ?roll=on | ?roll=off
ROLL_VALUES = {"on": True, "off": False}


def ops_of(trace: Trace, path: str) -> list[Node]:
    """The trace's ops a selection covers, in execution order ([] when it names nothing): an op,
    the ops under a module path (unit, stage), or those of a drawn group (`stem`, `layer1.0.pre`)."""
    if not path:
        return []
    op = trace.by_id.get(path)
    if op is not None:
        return [op]
    from explorer.diagram.roll import run_at

    hit = run_at(trace, path)
    if hit is not None:  # a rolled run's node: the same part of each of its units
        return [o for unit in hit[0].units for o in ops_of(trace, unit + hit[1])]
    prefix = path + "."
    under = [o for o in trace.nodes if o.id.startswith(prefix)]
    if under:
        return under
    from explorer.diagram.ids import ops_drawn_in  # the diagram's own ids (loads Graphviz)

    return ops_drawn_in(trace, path, "units")


def known_paths(trace: Trace) -> list[str]:
    """Every selectable path: ops, units, stages and the drawn groups that are no module
    (`stem`, `head`, `layer1.0.pre`, `layer1.0.post`)."""
    from explorer.diagram.ids import drawn_ids

    modules = {*trace.by_id, *(u.name for u in trace.units), *trace.stages}
    groups = [i for i in dict.fromkeys(drawn_ids(trace, "units").values()) if i and i not in modules]
    return [*trace.by_id, *(u.name for u in trace.units), *trace.stages, *groups]


def resolve_path(trace: Trace, text: str) -> tuple[str | None, str]:
    """(path, "") for typed text naming something in this network, else (None, why not)."""
    path = text.strip().removeprefix("cluster_")
    if not path:
        return None, ""
    if len(path) > MAX_PATH:
        return None, f"No module path is {MAX_PATH} characters long."
    if ops_of(trace, path):
        return path, ""
    close = difflib.get_close_matches(path, known_paths(trace), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
    return None, f"`{path}` is not a module of {trace.name}.{hint}"


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.2%}" if whole else ""


def _what(ops: list[Node]) -> str:
    """"conv 3x3, 64" for one op, "7 ops: 2 conv, 2 bn, 2 relu, 1 add" for several."""
    shown = [o for o in ops if o.kind != "flatten"] or ops
    if len(shown) == 1:
        return shown[0].label
    counts = Counter(o.kind for o in shown)
    return f"{len(shown)} ops: " + ", ".join(f"{n} {kind}" for kind, n in counts.items())


def node_facts(trace: Trace, path: str, times: Mapping[str, float] | None = None) -> dict[str, Any] | None:
    """The facts of a selection, from the trace: what it is, shapes, params, MACs, memory, shares,
    measured time (with a per-layer profile) and the shape check of its residual unit."""
    from explorer.diagram.overlay import totals  # the tooltips' figures (loads Graphviz)

    ops = ops_of(trace, path)
    if not ops:
        return None
    t = totals(ops, times)
    rows = [
        {"fact": "shape", "value": t.shapes, "share": ""},
        {"fact": "parameters", "value": f"{t.params:,}", "share": _share(t.params, trace.params)},
        {"fact": "MACs", "value": f"{t.macs:,}", "share": _share(t.macs, trace.macs)},
        {"fact": "activation memory", "value": fmt_bytes(t.act_bytes),
         "share": _share(t.act_bytes, trace.activation_bytes)},
    ]
    if t.ms is not None:
        rows.append({"fact": "measured time", "value": fmt_ms(t.ms), "share": _share(t.ms, sum(times.values()))})
    unit_names = {o.unit for o in ops}
    unit = trace.unit(next(iter(unit_names))) if len(unit_names) == 1 and "" not in unit_names else None
    run = _run_rows(trace, path, rows, t.params, t.macs)
    if run is not None:
        unit = trace.unit(run["units"][0])  # each unit of the run checks alike: the first's
    return {"path": path, "what": _what(ops), "ops": len(t.shown), "rows": rows,
            "params": t.params, "macs": t.macs, "act_bytes": t.act_bytes,
            "unit": unit.to_dict() | {"residual": unit.residual} if unit else None, "run": run}


def _run_rows(trace: Trace, path: str, rows: list[dict[str, str]], params: int, macs: int) -> dict | None:
    """For a rolled run's node: rows for its units and one unit's figures (the rows above are
    the whole run's), and the run as data; None for any other selection."""
    from explorer.diagram.roll import run_at

    hit = run_at(trace, path)
    if hit is None:
        return None
    run = hit[0]
    for row in rows[1:]:  # after the shape: the whole run's figures
        row["fact"] = f"{row['fact']} (all {run.count})"
    rows[1:1] = [{"fact": "parameters per unit", "value": f"{params // run.count:,}",
                  "share": _share(params // run.count, trace.params)},
                 {"fact": "MACs per unit", "value": f"{macs // run.count:,}",
                  "share": _share(macs // run.count, trace.macs)}]
    rows.insert(0, {"fact": "units", "value": f"{run.label} ({run.count} identical units drawn once)", "share": ""})
    return run.to_dict() | {"label": run.label, "count": run.count}


def rolled_into(trace: Trace, path: str | None, drawn: str) -> str | None:
    """The label of the rolled run whose node `drawn` shows `path` when the path names a part of
    one of its units (`layer2.57.conv1` in `layer2.1-199.conv1`): the view offers to unroll."""
    from explorer.diagram.roll import run_at

    hit = run_at(trace, drawn) if path and drawn else None
    return hit[0].label if hit is not None and path != drawn else None


def roll_from_query(params: Mapping[str, str]) -> bool | None:
    """The diagram's rolling an address holds: True, False, or None (the default rule)."""
    value = params.get(ROLL_PARAM)
    return ROLL_VALUES.get(value.strip().lower()) if isinstance(value, str) else None


def roll_query(roll: bool | None) -> dict[str, str]:
    """The query parameters that hold the diagram's rolling: none for the default rule."""
    return {} if roll is None else {ROLL_PARAM: "on" if roll else "off"}


def selection_from_query(params: Mapping[str, str]) -> str | None:
    """The selected path a page address holds, if any (checked against the network when shown)."""
    value = params.get(NODE_PARAM)
    value = value.strip() if isinstance(value, str) else ""
    return value[:MAX_PATH] or None


def selection_query(path: str | None) -> dict[str, str]:
    """The query parameters that hold a selection: none when nothing is selected."""
    return {NODE_PARAM: path} if path else {}


def profile_times(results: Mapping, cfg: ArchConfig) -> dict[str, float] | None:
    """Module path -> ms of the newest per-layer profile of `cfg`'s architecture in a session's
    results, or None when there is none.

    The Latency view's *Profile layers* stores one under `store.profile_key(cfg, settings)`
    ("profile", config, settings) as `ProfileResult.to_dict()`; a `ProfileResult` itself also serves.
    """
    from explorer.app.store import same_architecture

    found = None
    for key, value in results.items():
        if (isinstance(key, tuple) and len(key) > 1 and key[0] == "profile"
                and isinstance(key[1], ArchConfig) and same_architecture(key[1], cfg)):
            found = value
    if found is None:
        return None
    if hasattr(found, "times"):
        return dict(found.times())
    return {r["module"]: r["ms"] for r in found.get("profile", [])} or None
