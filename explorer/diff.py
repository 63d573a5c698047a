"""What changes between two variants, read off their two traces, unit by unit.

Units are matched by module path (`layer2.3`). Per matched unit the diff compares the shortcut
(kind and parameters), the weight layers (kernel, stride, channels, groups) and where each BN
and ReLU sits relative to the convs and the addition. Where `skip_span` cuts a stage into
different units, the units no longer correspond: the stage gets one entry saying how its layers
are grouped. The stem and the head are compared the same way. Every entry carries the change in
parameters and multiply-adds (B minus A) from the traces' own counts, so the entries of one
segment (stem, unit, stage, head) add up to that segment's difference.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal, Sequence, get_args

from explorer.arch.config import ArchConfig
from explorer.diagram.ids import segment_ids
from explorer.labels import attention_text, fmt_shape, stem_text
from explorer.records import Node, Trace, Unit
from explorer.trace import trace
from explorer.vocab import GROUP_ROLES, IO_KINDS, NORM_KINDS, POOLED_PROJECTION, SHORTCUT_TEXT, shortcut_counts

ChangeKind = Literal["stem", "head", "unit_boundaries", "unit_added", "unit_removed", "shortcut", "stride_moved",
                     "layer_changed", "shape_changed", "bn_added", "bn_removed", "bn_moved", "relu_added",
                     "relu_removed", "relu_moved", "order_changed", "attention"]
Side = Literal["a", "b", "both"]
KINDS: tuple[ChangeKind, ...] = get_args(ChangeKind)
_NORM = NORM_KINDS                   # ops placed around the weight layers
_SKIP = ("flatten", *IO_KINDS)
_OP_NAMES = {"bn": "BN", "relu": "ReLU"}


@dataclass(frozen=True)
class Change:
    """One difference between variant A and variant B."""

    unit: str       # module path of the unit ("layer2.3"), the stage ("layer1") or "stem" / "head"
    kind: ChangeKind
    change: str     # "identity -> 1x1 projection + BN"
    params: int     # parameters of B minus those of A for this change
    macs: int       # multiply-adds of B minus those of A (batch 1)
    side: Side = "both"  # the diagram(s) that show it

    def text(self) -> str:
        """"layer2.3: identity -> 1x1 projection + BN, +66,048 params, +12,845,056 MACs"."""
        return f"{self.unit}: {self.change}, {self.params:+,} params, {self.macs:+,} MACs"

    def to_dict(self) -> dict[str, Any]:
        return {"unit": self.unit, "kind": self.kind, "change": self.change, "params": self.params,
                "macs": self.macs, "side": self.side, "text": self.text()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Change:
        """The change `to_dict` wrote (its "text" is derived, so it is read back from the rest)."""
        return cls(d["unit"], d["kind"], d["change"], d["params"], d["macs"], d.get("side", "both"))


def diff_configs(a: ArchConfig, b: ArchConfig) -> list[Change]:
    """The changes from `a` to `b`, in network order (empty when they build the same network)."""
    return diff_traces(trace(a), trace(b))


def diff_traces(a: Trace, b: Trace) -> list[Change]:
    """The changes from trace `a` to trace `b`, in network order."""
    ia, ib = _index(a), _index(b)
    out = _segment("stem", ia["stem"], ib["stem"], "stem")
    for stage in dict.fromkeys([*a.stages, *b.stages]):
        out += _stage(a, b, ia, ib, stage)
    out += _segment("head", ia["head"], ib["head"], "head")
    return out


def total(a: ArchConfig | Trace, b: ArchConfig | Trace) -> dict[str, int]:
    """Whole-network difference, B minus A: {"params": ..., "macs": ...}."""
    ta, tb = (x if isinstance(x, Trace) else trace(x) for x in (a, b))
    return {"params": tb.params - ta.params, "macs": tb.macs - ta.macs}


def diff_document(a: ArchConfig, b: ArchConfig, changes: Sequence[Change] | None = None) -> dict[str, Any]:
    """The diff as JSON: the two configs' names, every change, and the whole-network total (B - A);
    what `compare A B --diff --json` prints under "diff" and "diff_total", and the app's download."""
    changes = diff_configs(a, b) if changes is None else changes
    return {"a": a.name, "b": b.name, "diff": [c.to_dict() for c in changes], "diff_total": total(a, b)}


def count_line(changes: Sequence[Change]) -> str:
    """"21 changes (8 bn_moved, 8 relu_moved, 3 shortcut, ...)", kinds by frequency."""
    counts = Counter(c.kind for c in changes).most_common()
    detail = ", ".join(f"{n} {kind}" for kind, n in counts)
    return f"{len(changes)} change{'s' * (len(changes) != 1)}" + (f" ({detail})" if len(counts) > 1 else "")


def total_line(a: ArchConfig | Trace, b: ArchConfig | Trace) -> str:
    t = total(a, b)
    return f"total: {t['params']:+,} params, {t['macs']:+,} MACs"


# -- stages and units ----------------------------------------------------------------------------
def _index(t: Trace) -> dict[str, list[Node]]:
    """The drawn ops (not input, output, flatten) by unit, by stage, and of the stem and head."""
    out: dict[str, list[Node]] = {"stem": [], "head": []}
    for n in t.nodes:
        if n.kind in _SKIP:
            continue
        keys = [n.unit, "stage " + n.stage] if n.unit else [n.role] if n.role in out else []
        for key in keys:
            out.setdefault(key, []).append(n)
    return out


def _sums(nodes: Sequence[Node]) -> tuple[int, int]:
    return sum(n.params for n in nodes), sum(n.macs for n in nodes)


def _stage(a: Trace, b: Trace, ia: dict[str, list[Node]], ib: dict[str, list[Node]], stage: str) -> list[Change]:
    ua = [u for u in a.units if u.stage == stage]
    ub = [u for u in b.units if u.stage == stage]
    if ua and ub and _spans(ua)[:min(len(ua), len(ub))] != _spans(ub)[:min(len(ua), len(ub))]:
        (pa, ma), (pb, mb) = _sums(ia["stage " + stage]), _sums(ib["stage " + stage])
        text = f"{_grouping(ua)} -> {_grouping(ub)} ({len(ua)} -> {_count(len(ub))})"
        sa, sb = _shortcut_counts(ua), _shortcut_counts(ub)
        if sa != sb:
            text += f"; shortcuts {sa} -> {sb}"
        return [Change(stage, "unit_boundaries", text, pb - pa, mb - ma)]
    out: list[Change] = []
    units_b = {u.name: u for u in ub}
    for u in ua:
        if u.name in units_b:
            out += _segment(u.name, ia[u.name], ib[u.name], "unit", u, units_b[u.name])
        else:
            p, m = _sums(ia[u.name])
            out.append(Change(u.name, "unit_removed", "unit removed (" + _unit_text(u, ia[u.name]) + ")", -p, -m, "a"))
    names_a = {u.name for u in ua}
    for v in ub:
        if v.name not in names_a:
            p, m = _sums(ib[v.name])
            out.append(Change(v.name, "unit_added", "unit added (" + _unit_text(v, ib[v.name]) + ")", p, m, "b"))
    return out


def _spans(units: Sequence[Unit]) -> list[int]:
    return [u.layers for u in units]


def _grouping(units: Sequence[Unit]) -> str:
    """"units of 2 layers", "units of 2 layers (last of 1)" or "plain blocks of 3 layers"."""
    what = "units" if any(u.residual for u in units) else "plain blocks"
    sizes = [u.layers for u in units]
    text = f"{what} of {_layers(sizes[0])}"
    if len(set(sizes)) > 1:
        text += f" (last of {sizes[-1]})" if len(set(sizes[:-1])) == 1 else " (" + "/".join(map(str, sizes)) + ")"
    return text


def _layers(n: int) -> str:
    return f"{n} layer{'s' * (n != 1)}"


def _count(n: int) -> str:
    return f"{n} unit{'s' * (n != 1)}"


def _shortcut_counts(units: Sequence[Unit]) -> str:
    return shortcut_counts(Counter(u.shortcut for u in units if u.residual)) or "none"


def _unit_text(u: Unit, nodes: Sequence[Node]) -> str:
    convs = [n.short for n in nodes if n.kind == "conv" and n.role not in ("shortcut", "attention")]
    gate = attention_text(nodes, short=True)
    return " | ".join(convs) + (f" + {gate}" if gate else "") + "; " + _shortcut_text(u, nodes)


def _shortcut_text(u: Unit, nodes: Sequence[Node], detailed: bool = False) -> str:
    """"identity", "zero-pad", "1x1 projection + BN" (with its conv when `detailed`)."""
    if u.shortcut != "projection":
        return SHORTCUT_TEXT[u.shortcut].label
    ops = [n for n in nodes if n.role == "shortcut"]
    conv = next((n for n in ops if n.kind == "conv"), None)
    words = POOLED_PROJECTION if any(n.kind == "pool" for n in ops) else SHORTCUT_TEXT["projection"]
    text = words.label + (f" ({conv.short})" if detailed and conv else "")
    return text + (" + BN" if any(n.kind == "bn" for n in ops) else "")


# -- one segment: the stem, a unit or the head -----------------------------------------------------
def _segment(name: str, na: list[Node], nb: list[Node], what: str,
             ua: Unit | None = None, ub: Unit | None = None) -> list[Change]:
    out = _shortcut(name, ua, ub, na, nb) if ua is not None and ub is not None else []
    out += _attention(name, na, nb)
    main_a = [n for n in na if n.role not in ("shortcut", "attention")]
    main_b = [n for n in nb if n.role not in ("shortcut", "attention")]
    anchors_a, anchors_b = _anchors(main_a, name), _anchors(main_b, name)
    if any(n.kind == "add" for _, n in anchors_a) != any(n.kind == "add" for _, n in anchors_b):
        # residual vs plain: the shortcut entry says so; place BN/ReLU by the convs alone
        anchors_a = [(k, n) for k, n in anchors_a if n.kind != "add"]
        anchors_b = [(k, n) for k, n in anchors_b if n.kind != "add"]
    if what == "stem" and max(len(_convs(main_a)), len(_convs(main_b))) > 1 \
            and [n.label for n in main_a] != [n.label for n in main_b]:  # a deep stem on either side
        out.append(Change(name, "stem", f"{stem_text(_convs(main_a))} -> {stem_text(_convs(main_b))}", 0, 0))
    elif [(k, n.kind) for k, n in anchors_a] != [(k, n.kind) for k, n in anchors_b]:
        kind = what if what in ("stem", "head") else "layer_changed"
        out.append(Change(name, kind, f"{_ops_text(main_a)} -> {_ops_text(main_b)}", 0, 0))
    else:
        layers = _layers_changed(name, anchors_a, anchors_b)
        out += [layers] if layers else []
        out += _norm_changes(name, main_a, main_b, anchors_a, anchors_b)
    (pa, ma), (pb, mb) = _sums(na), _sums(nb)
    rest_p = pb - pa - sum(c.params for c in out)
    rest_m = mb - ma - sum(c.macs for c in out)
    if rest_p or rest_m:  # sizes that follow from the layers: booked on the entry that changed them
        i = next((i for i, c in enumerate(out) if c.kind in ("layer_changed", "stride_moved", what)), None)
        if i is None:
            out.append(_shape_change(name, na, nb, ua, ub, rest_p, rest_m))
        else:
            c = out[i]
            out[i] = Change(c.unit, c.kind, c.change, c.params + rest_p, c.macs + rest_m, c.side)
    return out


def _shortcut(name: str, ua: Unit, ub: Unit, na: list[Node], nb: list[Node]) -> list[Change]:
    sa = [(n.kind, n.label) for n in na if n.role == "shortcut"]
    sb = [(n.kind, n.label) for n in nb if n.role == "shortcut"]
    if (ua.residual, ua.shortcut, ua.shortcut_params, sa) == (ub.residual, ub.shortcut, ub.shortcut_params, sb):
        return []
    ta, tb = _shortcut_text(ua, na), _shortcut_text(ub, nb)
    if ta == tb:
        ta, tb = _shortcut_text(ua, na, True), _shortcut_text(ub, nb, True)
    return [Change(name, "shortcut", f"{ta} -> {tb}", ub.shortcut_params - ua.shortcut_params,
                   ub.shortcut_macs - ua.shortcut_macs)]


def _attention(name: str, na: list[Node], nb: list[Node]) -> list[Change]:
    """Channel attention added, removed or changed on a unit's branch (SE, ECA)."""
    ga = [n for n in na if n.role == "attention"]
    gb = [n for n in nb if n.role == "attention"]
    ta, tb = attention_text(ga), attention_text(gb)
    if ta == tb:
        return []
    (pa, ma), (pb, mb) = _sums(ga), _sums(gb)
    return [Change(name, "attention", f"{ta or 'no attention'} -> {tb or 'no attention'}", pb - pa, mb - ma)]


def _convs(nodes: list[Node]) -> list[Node]:
    return [n for n in nodes if n.kind == "conv"]


def _local(node: Node, scope: str) -> str:
    """A node's name inside its segment: "conv2" for "layer1.0.conv2", "the addition" for an add."""
    if node.kind == "add":
        return "the addition"
    prefix = scope + "."
    return node.id[len(prefix):] if node.id.startswith(prefix) else node.id


def _anchors(nodes: list[Node], scope: str) -> list[tuple[str, Node]]:
    """The segment's ops other than BN and ReLU (convs, pools, fc, the addition), by local name."""
    return [(_local(n, scope), n) for n in nodes if n.kind not in _NORM]


def _ops_text(nodes: list[Node]) -> str:
    return " ".join(n.short for n in nodes) or "nothing"


def _settings(n: Node) -> tuple:
    """What makes two layers the same layer, stride aside."""
    if n.kind == "conv":
        return n.kernel, n.shape[0], n.in_shapes[0][0], n.groups, n.params
    return n.label, n.params


def _layers_changed(name: str, anchors_a, anchors_b) -> Change | None:
    """Changed layers (kernel, channels, groups, stride), or one stride moved to another conv."""
    pairs = [(local, x, y) for (local, x), (_, y) in zip(anchors_a, anchors_b)]
    texts = [_layer_text(local, x, y) for local, x, y in pairs if _settings(x) != _settings(y)]
    convs = [(local, x, y) for local, x, y in pairs if x.kind == "conv"]
    strides_a, strides_b = [x.stride for _, x, _ in convs], [y.stride for _, _, y in convs]
    if sorted(strides_a) != sorted(strides_b):
        texts += [f"{local} stride {x.stride} -> {y.stride}" for local, x, y in convs if x.stride != y.stride]
    if texts:
        return Change(name, "layer_changed", "; ".join(texts), 0, 0)
    if strides_a != strides_b:
        where_a = ", ".join(f"{local} ({x.kernel}x{x.kernel})" for local, x, _ in convs if x.stride > 1)
        where_b = ", ".join(f"{local} ({y.kernel}x{y.kernel})" for local, _, y in convs if y.stride > 1)
        return Change(name, "stride_moved", f"stride {max(strides_a)} on {where_a} -> on {where_b}", 0, 0)
    return None


def _layer_text(local: str, x: Node, y: Node) -> str:
    """"conv2 3x3, 64 -> 3x3, 128, groups 32", "conv3 input channels 64 -> 128", "fc outputs 1000 -> 10"."""
    if x.kind == "fc":
        parts = [f"{what} {a} -> {b}" for what, a, b in (("inputs", x.in_shapes[0][0], y.in_shapes[0][0]),
                                                          ("outputs", x.shape[0], y.shape[0])) if a != b]
    elif x.label != y.label:
        return f"{local} {_setting(x)} -> {_setting(y)}"
    elif x.kind == "conv" and x.in_shapes[0][0] != y.in_shapes[0][0]:
        parts = [f"input channels {x.in_shapes[0][0]} -> {y.in_shapes[0][0]}"]
    else:
        parts = []
    if not parts and x.kind == "conv" and abs(y.params - x.params) == x.shape[0]:
        parts = ["bias added" if y.params > x.params else "bias removed"]
    return f"{local} " + (", ".join(parts) or f"{x.params:,} -> {y.params:,} params")


def _setting(n: Node) -> str:
    """A layer's label without its kind: "3x3, 64, /2" for "conv 3x3, 64, /2"."""
    return n.label[len(n.kind) + 1:] if n.label.startswith(n.kind + " ") else n.label


def _gaps(nodes: list[Node], anchors: list[tuple[str, Node]]) -> list[tuple[str, Node]]:
    """Each BN / ReLU with the place it sits: "before conv1", "between conv2 and the addition"."""
    names = {n.id: local for local, n in anchors}
    order = [n for n in nodes if n.kind not in _SKIP]
    out = []
    for i, n in enumerate(order):
        if n.kind not in _NORM:
            continue
        prev = next((names[m.id] for m in reversed(order[:i]) if m.id in names), None)
        nxt = next((names[m.id] for m in order[i + 1:] if m.id in names), None)
        if prev and nxt:
            where = f"between {prev} and {nxt}"
        else:
            where = f"before {nxt}" if nxt else f"after {prev}" if prev else "alone"
        out.append((where, n))
    return out


def _norm_changes(name: str, main_a: list[Node], main_b: list[Node], anchors_a, anchors_b) -> list[Change]:
    """BN / ReLU added, removed or moved (same weight layers on both sides)."""
    ga, gb = _gaps(main_a, anchors_a), _gaps(main_b, anchors_b)
    out: list[Change] = []
    for kind in _NORM:
        op = _OP_NAMES[kind]
        pa = [(w, n) for w, n in ga if n.kind == kind]
        pb = [(w, n) for w, n in gb if n.kind == kind]
        common = Counter(w for w, _ in pa) & Counter(w for w, _ in pb)
        gone, new = _minus(pa, common), _minus(pb, common)
        for (wa, x), (wb, y) in zip(gone, new):
            out.append(Change(name, f"{kind}_moved", f"{op} {wa} -> {wb}", y.params - x.params, y.macs - x.macs))
        for wa, x in gone[len(new):]:
            out.append(Change(name, f"{kind}_removed", f"{op} {wa} removed", -x.params, -x.macs))
        for wb, y in new[len(gone):]:
            out.append(Change(name, f"{kind}_added", f"{op} {wb} added", y.params, y.macs))
    if not out and [(w, n.kind) for w, n in ga] != [(w, n.kind) for w, n in gb]:
        out.append(Change(name, "order_changed", f"{_order(ga)} -> {_order(gb)}", 0, 0))
    return out


def _minus(placed: list[tuple[str, Node]], common: Counter) -> list[tuple[str, Node]]:
    left = Counter(common)
    out = []
    for w, n in placed:
        if left[w]:
            left[w] -= 1
        else:
            out.append((w, n))
    return out


def _order(placed: list[tuple[str, Node]]) -> str:
    groups: dict[str, list[str]] = {}
    for w, n in placed:
        groups.setdefault(w, []).append(_OP_NAMES[n.kind])
    return "; ".join(f"{'-'.join(ops)} {w}" for w, ops in groups.items())


def _shape_change(name: str, na, nb, ua: Unit | None, ub: Unit | None, params: int, macs: int) -> Change:
    """Same ops, different sizes (an input size or a width set elsewhere)."""
    if ua is not None and ub is not None:
        shapes = [(fmt_shape(ua.in_shape), fmt_shape(ub.in_shape)), (fmt_shape(ua.out_shape), fmt_shape(ub.out_shape))]
    else:
        shapes = [(fmt_shape(na[0].in_shapes[0]) if na and na[0].in_shapes else "-",
                   fmt_shape(nb[0].in_shapes[0]) if nb and nb[0].in_shapes else "-"),
                  (fmt_shape(na[-1].shape) if na else "-", fmt_shape(nb[-1].shape) if nb else "-")]
    (ia, ib), (oa, ob) = shapes
    text = f"in {ia} -> {ib}, out {oa} -> {ob}" if (ia, oa) != (ib, ob) else "same ops, different sizes"
    return Change(name, "shape_changed", text, params, macs)


# -- what the two diagrams highlight ---------------------------------------------------------------
def highlights(changes: Sequence[Change], source: ArchConfig | Trace, side: Side) -> dict[str, str]:
    """Node ids of the units-detail diagram of one side ("a" or "b") -> the kinds of change there
    (space-separated), for `build_graph(..., highlight=...)`."""
    t = source if isinstance(source, Trace) else trace(source)
    drawn = segment_ids(t, "units")  # unit -> its branch, addition, pre and post nodes; stem, head
    out: dict[str, list[str]] = {}
    for c in changes:
        if c.side not in ("both", side):
            continue
        if c.unit in GROUP_ROLES:
            ids = drawn.get(c.unit, [])
        elif t.unit(c.unit) is not None:  # a shortcut meets the branch at the addition
            ids = drawn[c.unit][:2] if c.kind == "shortcut" else drawn[c.unit]
        else:  # a stage: every unit in it
            ids = [i for u in t.units if u.stage == c.unit for i in drawn[u.name]]
        for i in ids:
            if c.kind not in out.setdefault(i, []):
                out[i].append(c.kind)
    return {i: " ".join(kinds) for i, kinds in out.items()}
