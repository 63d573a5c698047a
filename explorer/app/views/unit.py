"""Unit tab: one real unit in the papers' style, its equation, and the shape check of every unit."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer import ArchConfig, diagram
from explorer.app.cache import unit_equation, unit_figure_svg
from explorer.app.display import READABLE_SCALE, metric_row, show_svg, svg_width_px
from explorer.app.text import plain_lines
from explorer.diagram.unit import default_unit, gate_equation
from explorer.facts.results import Summary, UnitCheck
from explorer.labels import fmt_shape
from explorer.labels import fmt_count, fmt_share

UNIT_COLUMNS = ["name", "in_shape", "out_shape", "shortcut", "shortcut_params", "shortcut_macs", "reason"]
# (header, width px, help): the columns add up to the 560 px the main area has at 1024 px beside
# the sidebar; "why" wraps onto three lines (ROW_HEIGHT) and says what differs, the shortcut column
# what is done about it (the picked unit's whole reason is written out beside its figure).
COLUMNS = {
    "name": ("unit", 64, None),
    "in_shape": ("x", 78, "the unit's input, channels x height x width"),
    "out_shape": ("F(x)", 78, "the residual branch's output, channels x height x width"),
    "shortcut": ("shortcut", 78, "identity, zero_pad (option A) or projection (1x1 conv W_s)"),
    "shortcut_params": ("W_s params", 72, "parameters of the shortcut: the 1x1 conv W_s and, where the "
                                          "unit has BN, its BatchNorm (the figure's W_s box counts the "
                                          "conv's weights alone)"),
    "shortcut_macs": ("W_s MACs", 64, "multiply-adds of the shortcut per image"),
    "reason": ("why", 120, "what differs between x and F(x)"),
}
ROW_HEIGHT = 66     # px: above 64 px Streamlit's grid wraps a cell's text (three lines here)
# px: the figure's column in a 1024 px window with the sidebar open; a figure that would read
# smaller than READABLE_SCALE there (a wide SE/ECA unit) is drawn at full width instead
FIGURE_COLUMN_PX = 330
SHORTCUT_COLOURS = {"projection": "background-color: #f9d6d2", "zero_pad": "background-color: #fde9d0"}


def units_frame(units: tuple[UnitCheck, ...]) -> pd.DataFrame:
    df = pd.DataFrame(list(units))  # one column per UnitCheck field
    df["in_shape"] = df["in_shape"].map(fmt_shape)
    df["out_shape"] = df["out_shape"].map(fmt_shape)
    df["shortcut_params"] = df["shortcut_params"].map(fmt_count)
    df["shortcut_macs"] = df["shortcut_macs"].map(lambda n: fmt_count(n, short=True))
    df["reason"] = df["reason"].map(lambda r: r.split(": ", 1)[0])  # "channels 64 -> 256"
    return df[UNIT_COLUMNS]


def highlight_projection(row: pd.Series) -> list[str]:
    return [SHORTCUT_COLOURS.get(row["shortcut"], "")] * len(row)


def figure(cfg: ArchConfig, unit: str | None, beside) -> None:
    """The unit's figure, as tall as it is (no scroll box of its own): in `beside` (the left
    column) where it reads there at READABLE_SCALE or more, else at full width under the columns."""
    try:
        svg = unit_figure_svg(cfg, unit)
    except diagram.GraphvizMissing as exc:
        beside.error(plain_lines(str(exc)))
        return
    narrow = (svg_width_px(svg) or 0.0) * READABLE_SCALE <= FIGURE_COLUMN_PX
    with beside if narrow else st.container():
        show_svg(svg, height=None, fit=True)


def draw(cfg: ArchConfig, s: Summary) -> None:
    if not s.units:
        st.info("A plain network (skip span 0): nothing is added back. The figure shows one plain block.")
    names = [u.name for u in s.units] or [None]
    default = default_unit(cfg) if s.units else names[0]  # the figure's own choice
    if st.session_state.get("unit_pick") not in names:
        st.session_state.unit_pick = default
    # the figure's column is the wider: at 1024 px it holds the figure at a readable scale
    left, right = st.columns([3, 2])
    with left:
        unit = st.selectbox("Unit", names, key="unit_pick", format_func=lambda n: n or "first block")
        st.markdown(f"**{unit_equation(cfg, unit)}**")
        gate = gate_equation(cfg, unit)
        if gate:  # what s is: the unit's SE / ECA gate, with its sizes
            st.caption(gate)
        picked = next((u for u in s.units if u.name == unit), None)
        if picked is not None:
            st.caption(f"{unit}: {picked.reason}")
        beside = st.container()
    with right:
        st.markdown(
            "**x** is the unit's input feature map; **F(x)** its stacked weight layers (the table's "
            "x and F(x) columns give their shapes). They are added element-wise, so their shapes must "
            "match: where they do not, the shortcut pads (option A) or projects with a 1x1 conv W_s "
            "(options B/C). W_s's parameters in the table include its BatchNorm where it has one; "
            "the figure's W_s box counts the conv's weights alone."
        )
        if cfg.avg_down:
            st.markdown("**avg_down** (ResNet-D): where the size halves, x is averaged over each 2x2 window "
                        "before W_s, a stride-1 1x1 conv, so the projection reads every position of x "
                        "instead of one in four.")
        if cfg.attention != "none":
            st.markdown("**s** is the unit's channel gate: it averages F(x) over space, maps the channel "
                        "means to one sigmoid weight per channel and scales F(x) by them before the addition.")
        if s.units:
            metric_row([
                ("Residual units", str(s.residual_units), None),
                ("Projections", str(s.shortcuts.projection), None),
                ("Projection params", fmt_count(s.projection_params, short=True),
                 f"{fmt_count(s.projection_params)}, {fmt_share(s.projection_params / max(s.params, 1))} "
                 "of all parameters"),
            ], key="unit_metrics")
        for warning in s.warnings:
            st.warning(warning)
    figure(cfg, unit, beside)
    if s.units:
        # Full width below the figure: beside it, at 1024 px, the columns were cut short.
        st.dataframe(units_frame(s.units).style.apply(highlight_projection, axis=1), hide_index=True,
                     height=min(560, ROW_HEIGHT * len(s.units) + 38), row_height=ROW_HEIGHT, key="units_table",
                     column_config={k: st.column_config.Column(label, width=w, help=h)
                                    for k, (label, w, h) in COLUMNS.items()})
