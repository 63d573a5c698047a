"""Outlines for the nodes where two variants differ (the diff view), with their legend."""
from __future__ import annotations

from typing import Callable, Mapping

from explorer.diagram.dot import Group, tip

# Outline of a node that differs from the other variant of a diff (colour, legend text), by what happened to it.
ACCENTS = {"changed": ("#c2255c", "differs in the other variant"), "added": ("#2f9e44", "only in this variant"),
           "removed": ("#e8590c", "only in this variant (removed in the other)")}


def _accent(kind: str) -> str:
    return next((w[5:] for w in kind.split() if w in ("unit_added", "unit_removed")), "changed")


def outline_changes(groups: list[Group], highlight: Mapping[str, str]) -> set[str]:
    """Outline the nodes that differ, name the change in their class and tooltip; the accents used."""
    used = set()
    for grp in (grp for grp in groups if highlight.get(grp.id)):
        kind = highlight[grp.id]
        accent = _accent(kind)
        grp.cls = " ".join([grp.cls, "changed", *([accent] if accent != "changed" else []),
                            *(f"diff-{k}" for k in kind.split())])
        extra = {**(grp.extra or {}), "color": ACCENTS[accent][0], "penwidth": "3.5"}
        extra["tooltip"] = tip(f"{accent}: {kind.replace('_', ' ')}\n") + extra.get("tooltip", "")
        grp.extra = extra
        used.add(accent)
    return used


def rolled_highlight(highlight: Mapping[str, str], rename: Callable[[str], str]) -> dict[str, str]:
    """Highlights moved onto the nodes that draw them (a rolled run's node for each of its units'),
    the kinds of change of nodes drawn as one merged."""
    out: dict[str, list[str]] = {}
    for node, kinds in highlight.items():
        words = out.setdefault(rename(node), [])
        words += [k for k in kinds.split() if k not in words]
    return {node: " ".join(words) for node, words in out.items()}


def highlight_legend(accents: set[str]) -> str:
    """A DOT node statement: one outlined swatch per kind of highlight shown."""
    rows = "".join(f'<tr><td border="3" color="{colour}" width="22" height="12"></td>'
                   f'<td align="left"><font point-size="10">{text}</font></td></tr>'
                   for a, (colour, text) in ACCENTS.items() if a in accents)
    label = f'<<table border="0" cellborder="0" cellspacing="3">{rows}</table>>'
    tip_text = "outlined: differs from the other variant"
    return f'\t"diff_legend" [shape=plaintext class="legend" tooltip="{tip_text}" label={label}]\n'
