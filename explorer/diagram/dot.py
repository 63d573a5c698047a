"""DOT text for the diagrams: house style, safe labels and quoting, one statement a node or edge."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import graphviz

from explorer.trace import Node

FONT = "Helvetica"
COLOURS = {
    "conv": "#dbe9f6", "bn": "#fdebd0", "relu": "#e2f0d9", "pool": "#ececec", "fc": "#e8def3",
    "io": "#ffffff", "stage": "#dbe9f6", "unit": "#dbe9f6", "projection": "#f6c6c0",
    "zero_pad": "#fde2c4", "post": "#e2f0d9", "pre": "#fdebd0",
    # channel attention (SE / ECA): its squeeze, 1x1 / 1-D convs and sigmoid gate, and the product
    "attention": "#f3e3f1", "attention_edge": "#8e44ad", "squeeze": "#f3e3f1", "sigmoid": "#f3e3f1",
    "mul": "#ffffff",
}
SKIP_COLOURS = {"identity": "#1f77b4", "zero_pad": "#e67e22", "projection": "#c0392b"}
MAIN_EDGE = "#555555"
LARGE = 1000  # nodes above which dot's layout effort is capped


def text(value: object) -> str:
    """User text made safe for a plain DOT label: one line, literal backslashes, and `&` as an
    entity (Graphviz decodes entities such as `&amp;` even outside HTML-like labels)."""
    return graphviz.escape(" ".join(str(value).split()).replace("&", "&amp;"))


def lbl(text: str) -> graphviz.nohtml:
    """A plain (never HTML-like) DOT label; "\n" in `text` becomes DOT's centred line break."""
    return graphviz.nohtml(text.replace("\n", "\\n"))


def tip(text: str) -> str:
    """A tooltip in DOT: one escString, lines joined by Graphviz's own line break."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def safe_id(op_id: str) -> str:
    # ':' introduces a port in DOT edge statements; module paths never hold one, but be sure.
    return op_id.replace(":", "_")


def new_graph(title: str, direction: str, n_nodes: int) -> graphviz.Digraph:
    g = graphviz.Digraph("resnet")
    compact = n_nodes > 60
    g.attr(rankdir=direction, label=title, labelloc="t", fontname=FONT, fontsize="16",
           nodesep="0.18" if compact else "0.3", ranksep="0.22" if compact else "0.35")
    if n_nodes > LARGE:
        # Cap dot's network-simplex passes: ResNet-1202 at layer detail lays out in seconds
        # instead of about a minute, and a chain of units needs no finer placement.
        g.attr(nslimit="2", nslimit1="2")
    g.attr("node", shape="box", style="rounded,filled", fontname=FONT, fontsize="11",
           height="0.3", margin="0.08,0.03", fillcolor="#ffffff", color="#333333")
    g.attr("edge", fontname=FONT, fontsize="9", arrowsize="0.6", color=MAIN_EDGE, fontcolor="#333333")
    return g


@dataclass
class Group:
    """One drawn node: a set of ops collapsed into it."""

    id: str
    ops: list[Node]
    label: str = ""
    cls: str = ""
    fill: str = "#ffffff"
    shape: str = "box"
    extra: dict | None = None
    cluster: tuple[str, ...] = ()   # nesting of clusters ("layer1", "layer1.0")



def q(value: object) -> str:
    """A DOT double-quoted string. Labels arrive with their backslashes already meaningful
    (`\\n` breaks, user text escaped by `text`), so only quotes need escaping here."""
    return '"' + str(value).replace('"', '\\"') + '"'


def stmt(head: str, attrs: dict[str, str]) -> str:
    return f"{head} [" + " ".join(f"{k}={q(v)}" for k, v in attrs.items()) + "]"


def emit(g: graphviz.Digraph, groups: list[Group], edges, cluster_labels: dict[str, str]) -> None:
    """Append node, cluster and edge statements to `g.body`, one statement a line.

    Written directly rather than through `Digraph.node`/`edge`: for thousands of nodes the
    package's per-attribute quoting dominated the drawing time. Ids are module paths.
    """
    tree: dict[tuple[str, ...], list[Group]] = defaultdict(list)
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
            attrs = {"label": lbl(grp.label), "class": grp.cls, "fillcolor": grp.fill}
            if grp.shape != "box":
                attrs["shape"] = grp.shape
            attrs.update(grp.extra or {})
            body.append(indent + stmt(q(grp.id), attrs) + "\n")
        for child in children.get(path, []):
            name = child[-1]
            body.append(f"{indent}subgraph {q('cluster_' + name)} {{\n")
            body.append(indent + "\tgraph " + stmt("", {
                "label": cluster_labels.get(name, name), "style": "rounded,dashed", "color": "#aaaaaa",
                "fontsize": "10", "fontcolor": "#555555", "labeljust": "l", "margin": "6",
            }).lstrip() + "\n")
            nodes(child, indent + "\t")
            body.append(indent + "}\n")

    nodes((), "\t")
    for src, dst, attrs in edges:
        if "label" in attrs:
            attrs = {**attrs, "label": lbl(attrs["label"])}
        body.append("\t" + stmt(f"{q(src)} -> {q(dst)}", attrs) + "\n")

