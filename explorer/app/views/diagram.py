"""Diagram tab: the traced network at three detail levels, with downloads."""
from __future__ import annotations

import streamlit as st

from explorer import ArchConfig, diagram
from explorer.app.cache import diagram_bytes, diagram_svg
from explorer.app.display import show_svg
from explorer.app.text import safe_name

MIMES = {"dot": "text/vnd.graphviz", "svg": "image/svg+xml", "png": "image/png", "pdf": "application/pdf"}
DIRECTION_LABELS = {"TB": "top-down", "LR": "left-right"}


def draw(cfg: ArchConfig, summary: dict) -> None:
    c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
    detail = c1.radio("Detail", diagram.DETAILS, index=1, horizontal=True, key="diagram_detail")
    direction = c2.radio("Direction", diagram.DIRECTIONS, horizontal=True, key="diagram_direction",
                         format_func=DIRECTION_LABELS.get)
    shapes = c3.toggle("Shapes on edges", value=True, key="diagram_shapes")
    fit = c3.toggle("Fit to width", value=False, key="diagram_fit")
    fold = c4.toggle("Fold BN/ReLU", value=False, key="diagram_fold", disabled=detail != "layers",
                     help="At layer detail, draw BN and ReLU inside their conv")
    options = (cfg, detail, direction, shapes, fold)
    try:
        svg = diagram_svg(*options)
    except diagram.GraphvizMissing as exc:
        st.error(str(exc))
        st.download_button("Download DOT", diagram_bytes(*options, "dot"),
                           file_name=f"{safe_name(cfg)}_{detail}.dot", key="download_dot")
        return
    show_svg(svg, height=760, fit=fit)
    st.caption("Blue dashed arcs: identity shortcuts · orange: zero-padding (option A) · red: 1x1 projections.")
    for col, fmt in zip(st.columns(4), diagram.FORMATS):
        col.download_button(
            f"Download {fmt.upper()}",
            data=(lambda f=fmt: diagram_bytes(*options, f)),  # made only when downloaded
            file_name=f"{safe_name(cfg)}_{detail}.{fmt}", mime=MIMES.get(fmt), key=f"download_{fmt}",
            use_container_width=True,
        )
    scale = diagram.png_scale(svg)
    if scale < 1.0:
        st.caption(f"The PNG is shrunk to {scale:.0%} of {diagram.PNG_DPI} dpi: a bitmap can be at most "
                   f"{diagram.PNG_MAX_PX:,} pixels on a side. SVG and PDF keep this diagram at full size.")
