"""What each drawn node holds and costs: tooltips with its facts, and colour by a chosen fact.

Every figure comes from the trace's nodes collapsed into the drawn node (one layer, a unit's
branch, a whole stage). Tooltips use Graphviz's own `tooltip` attribute, so they survive in the
exported SVG (and the PDF's link annotations); colours use a sequential, colour-blind-safe scale
(viridis, light for little and dark for much) with a legend giving the scale and its min/max.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from explorer.errors import ConfigError, check_choice
from explorer.labels import fmt_bytes, fmt_count, fmt_ms, fmt_shape
from explorer.records import Node, Trace, Unit
from explorer.vocab import SHORTCUT_TEXT

COLOR_BY = ("none", "params", "macs", "memory", "time")
# viridis at 9 even steps, from its bright end: light = little, dark = much
SCALE = ("#fde725", "#b5de2b", "#6ece58", "#35b779", "#1f9e89", "#26828e", "#31688e", "#3e4989", "#482878")
_DARK_FROM = 4  # steps from here on take white text
_TITLES = {"params": "parameters", "macs": "multiply-adds", "memory": "activation memory",
           "time": "measured time"}


def legend_count(n: float) -> str:
    """4096 -> "4,096"; 11.5e9 -> "11.5 G": exact below a million, engineering units past it."""
    return fmt_count(n, short=abs(n) >= 1e6)


def _share(part: float, whole: float) -> str:
    return f" ({part / whole:.2%} of the network)" if whole else ""


@dataclass(frozen=True)
class Totals:
    """What the ops drawn as one node hold and cost, summed once for its tooltip, panel and colour."""

    shown: tuple[Node, ...]     # the ops a reader sees (a flatten belongs to the pool before it)
    shapes: str                 # "64x56x56 -> 128x28x28"
    params: int
    macs: int
    act_bytes: int
    ms: float | None            # measured time, with a per-layer profile's times


def totals(ops: Iterable[Node], times: Mapping[str, float] | None = None) -> Totals:
    ops = list(ops)
    shown = tuple(o for o in ops if o.kind != "flatten") or tuple(ops)
    first, last = shown[0], shown[-1]
    shape_in = fmt_shape(first.in_shapes[0]) if first.in_shapes else "-"
    return Totals(shown, f"{shape_in} -> {fmt_shape(last.shape)}", sum(o.params for o in ops),
                  sum(o.macs for o in ops), sum(o.act_bytes for o in ops),
                  sum(times.get(o.id, 0.0) for o in ops) if times else None)


def node_tooltip(trace: Trace, path: str, ops: Iterable[Node], times: Mapping[str, float] | None = None) -> str:
    """The facts of a drawn node: path, op(s) and settings, shapes, params, MACs, memory, shares."""
    t = totals(ops, times)
    what = t.shown[0].label if len(t.shown) == 1 else " ".join(o.short for o in t.shown)
    lines = [path, what, t.shapes,
             f"params {t.params:,}{_share(t.params, trace.params)}",
             f"MACs {t.macs:,}{_share(t.macs, trace.macs)}",
             f"activations {fmt_bytes(t.act_bytes)}{_share(t.act_bytes, trace.activation_bytes)}"]
    if t.ms is not None:
        lines.append(f"time {fmt_ms(t.ms)}{_share(t.ms, sum(times.values()))}")
    return "\n".join(lines)


def shortcut_tooltip(trace: Trace, unit: Unit) -> str:
    """The facts of a unit's shortcut arc: kind, parameters, MACs, and why."""
    return "\n".join([f"{unit.name} shortcut", SHORTCUT_TEXT[unit.shortcut].name,
                      f"{fmt_shape(unit.in_shape)} -> {fmt_shape(unit.out_shape)}",
                      f"params {unit.shortcut_params:,}{_share(unit.shortcut_params, trace.params)}",
                      f"MACs {unit.shortcut_macs:,}{_share(unit.shortcut_macs, trace.macs)}",
                      unit.reason])


def node_value(ops: Iterable[Node], color_by: str, times: Mapping[str, float] | None = None) -> float:
    """The figure a node is coloured by: the sum over the ops drawn in it."""
    ops = list(ops)
    if color_by == "params":
        return sum(o.params for o in ops)
    if color_by == "macs":
        return sum(o.macs for o in ops)
    if color_by == "memory":
        return sum(o.act_bytes for o in ops)
    if color_by == "time":
        return sum((times or {}).get(o.id, 0.0) for o in ops)
    return 0.0


def check_color_by(color_by: str, times: Mapping[str, float] | None) -> str:
    check_choice("color_by", color_by, COLOR_BY)
    if color_by == "time" and not times:
        raise ConfigError("color_by", "time", "a per-layer profile's times (measure one first), "
                                              "or one of params, macs, memory")
    return color_by


def colour(value: float, vmax: float) -> tuple[str, str]:
    """(fill, font colour) of a value on the scale 0..vmax."""
    step = 0 if vmax <= 0 else min(len(SCALE) - 1, int(value / vmax * (len(SCALE) - 1) + 0.5))
    return SCALE[step], "#ffffff" if step >= _DARK_FROM else "#000000"


def fmt_value(color_by: str, value: float) -> str:
    if color_by == "memory":
        return fmt_bytes(value)
    if color_by == "time":
        return fmt_ms(value)
    return legend_count(value)


def legend(color_by: str, vmin: float, vmax: float) -> str:
    """A DOT node statement: the colour scale with its min and max (an HTML-like label)."""
    cells = "".join(f'<td bgcolor="{c}" width="18" height="12"></td>' for c in SCALE)
    title = f"colour: {_TITLES[color_by]} per node"
    lo, hi = fmt_value(color_by, vmin).replace("µ", "&#181;"), fmt_value(color_by, vmax).replace("µ", "&#181;")
    label = (f'<<table border="0" cellborder="0" cellspacing="1">'
             f'<tr><td colspan="{len(SCALE)}"><font point-size="10">{title}</font></td></tr>'
             f'<tr>{cells}</tr>'
             f'<tr><td colspan="3" align="left"><font point-size="9">min {lo}</font></td>'
             f'<td colspan="{len(SCALE) - 6}"></td>'
             f'<td colspan="3" align="right"><font point-size="9">max {hi}</font></td></tr></table>>')
    tip = f"{_TITLES[color_by]}: min {fmt_value(color_by, vmin)}, max {fmt_value(color_by, vmax)}"
    return f'\t"legend" [shape=plaintext class="legend" tooltip="{tip}" label={label}]\n'
