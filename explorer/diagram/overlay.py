"""What each drawn node holds and costs: tooltips with its facts, and colour by a chosen fact.

Every figure comes from the trace's nodes collapsed into the drawn node (one layer, a unit's
branch, a whole stage). Tooltips use Graphviz's own `tooltip` attribute, so they survive in the
exported SVG (and the PDF's link annotations); colours use a sequential, colour-blind-safe scale
(viridis, light for little and dark for much) on a log scale, with a legend naming it.

A node's figures span orders of magnitude (a BN holds a few hundred parameters, a 3x3 conv
millions), so a linear scale would paint all but the largest nodes alike: the lightest colour is
kept for nothing at all (0), and the rest divide the range from the smallest non-zero value to the
largest into steps of equal ratio.
"""
from __future__ import annotations

import math
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


@dataclass(frozen=True)
class ColourScale:
    """A log scale over the drawn nodes' values: 0 takes the first colour, `lo` (the smallest value
    above 0) to `hi` (the largest) the others in steps of equal ratio."""

    lo: float
    hi: float

    @property
    def ratio(self) -> float:
        """How many times larger each step's values are than the step before."""
        return (self.hi / self.lo) ** (1 / (len(SCALE) - 1)) if 0 < self.lo < self.hi else 1.0

    def step(self, value: float) -> int:
        """Index into SCALE of `value`."""
        if value <= 0 or self.hi <= 0:
            return 0
        if self.hi <= self.lo:
            return len(SCALE) - 1
        where = math.log(max(value, self.lo) / self.lo) / math.log(self.hi / self.lo)
        return 1 + min(len(SCALE) - 2, int(where * (len(SCALE) - 1)))


def colour_scale(values: Iterable[float]) -> ColourScale:
    """The log scale spanning `values` (the colour of each drawn node)."""
    values = list(values)
    return ColourScale(min((v for v in values if v > 0), default=0.0), max(values, default=0.0))


def colour(value: float, scale: ColourScale) -> tuple[str, str]:
    """(fill, font colour) of a value on `scale`."""
    step = scale.step(value)
    return SCALE[step], "#ffffff" if step >= _DARK_FROM else "#000000"


def fmt_value(color_by: str, value: float) -> str:
    if color_by == "memory":
        return fmt_bytes(value)
    if color_by == "time":
        return fmt_ms(value)
    return legend_count(value)


def _legend_text(color_by: str, value: float) -> str:
    return fmt_value(color_by, value).replace("µ", "&#181;")


def legend(color_by: str, scale: ColourScale) -> str:
    """A DOT node statement: the colour scale, named, with the values at its ends (an HTML-like label)."""
    cells = "".join(f'<td bgcolor="{c}" width="18" height="12"></td>' for c in SCALE)
    title = f"colour: {_TITLES[color_by]} per node, log scale"
    label = (f'<<table border="0" cellborder="0" cellspacing="1">'
             f'<tr><td colspan="{len(SCALE)}"><font point-size="10">{title}</font></td></tr>'
             f'<tr>{cells}</tr>'
             f'<tr><td align="left"><font point-size="9">0</font></td>'
             f'<td colspan="3" align="left"><font point-size="9">{_legend_text(color_by, scale.lo)}</font></td>'
             f'<td colspan="{len(SCALE) - 7}"></td>'
             f'<td colspan="3" align="right"><font point-size="9">{_legend_text(color_by, scale.hi)}</font></td>'
             f'</tr></table>>')
    tip = (f"{_TITLES[color_by]}, log scale: the lightest colour is 0; the others run from "
           f"min {fmt_value(color_by, scale.lo)} to max {fmt_value(color_by, scale.hi)}, "
           f"each step {scale.ratio:.3g} times the one before")
    return f'\t"legend" [shape=plaintext class="legend" tooltip="{tip}" label={label}]\n'
