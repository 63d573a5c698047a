"""Unit tab: one real unit in the papers' style, its equation, and the shape check of every unit."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer import ArchConfig, diagram
from explorer.app.cache import unit_equation, unit_figure_svg
from explorer.app.display import metric_row, show_svg
from explorer.app.text import fmt_shape
from explorer.labels import fmt_count, fmt_share

UNIT_COLUMNS = ["name", "layers", "in_shape", "out_shape", "shortcut", "shortcut_params", "shortcut_macs", "reason"]
# Narrow columns for the short values, so the reason keeps the rest of the width.
COLUMN_WIDTHS = {"name": 80, "layers": 50, "in_shape": 90, "out_shape": 90, "shortcut": 85, "shortcut_params": 110,
                 "shortcut_macs": 110}
SHORTCUT_COLOURS = {"projection": "background-color: #f9d6d2", "zero_pad": "background-color: #fde9d0"}


def units_frame(units: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(units)
    df["in_shape"] = df["in_shape"].map(fmt_shape)
    df["out_shape"] = df["out_shape"].map(fmt_shape)
    for key in ("shortcut_params", "shortcut_macs"):
        df[key] = df[key].map(fmt_count)
    return df[UNIT_COLUMNS]


def highlight_projection(row: pd.Series) -> list[str]:
    return [SHORTCUT_COLOURS.get(row["shortcut"], "")] * len(row)


def draw(cfg: ArchConfig, s: dict) -> None:
    if not s["units"]:
        st.info("A plain network (skip span 0): nothing is added back. The figure shows one plain block.")
    names = [u["name"] for u in s["units"]] or [None]
    default = next((u["name"] for u in s["units"] if u["shortcut"] != "identity"), names[0])
    if st.session_state.get("unit_pick") not in names:
        st.session_state.unit_pick = default
    left, right = st.columns([2, 3])
    with left:
        unit = st.selectbox("Unit", names, key="unit_pick", format_func=lambda n: n or "first block")
        st.markdown(f"**{unit_equation(cfg, unit)}**")
        try:
            show_svg(unit_figure_svg(cfg, unit), height=640, fit=True)
        except diagram.GraphvizMissing as exc:
            st.error(str(exc))
    with right:
        st.markdown(
            "**x** is the unit's input feature map (`in_shape`); **F(x)** its stacked weight layers "
            "(`out_shape`). They are added element-wise, so their shapes must match: where they do not, "
            "the shortcut pads (option A) or projects with a 1x1 conv W_s (options B/C)."
        )
        if s["units"]:
            metric_row([
                ("Residual units", str(s["residual_units"]), None),
                ("Projections", str(s["shortcuts"]["projection"]), None),
                ("Projection params", fmt_count(s["projection_params"], short=True),
                 f"{fmt_count(s['projection_params'])}, {fmt_share(s['projection_params'] / max(s['params'], 1))} "
                 "of all parameters"),
            ], key="unit_metrics")
        for warning in s["warnings"]:
            st.warning(warning)
    if s["units"]:
        # Full width below the figure: beside it, at 1024 px, the columns were cut short.
        st.dataframe(units_frame(s["units"]).style.apply(highlight_projection, axis=1), hide_index=True,
                     height=min(560, 35 * (len(s["units"]) + 1) + 3), key="units_table",
                     column_config={k: st.column_config.Column(width=w) for k, w in COLUMN_WIDTHS.items()})
