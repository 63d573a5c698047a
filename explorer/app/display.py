"""Display helpers shared by the views."""
from __future__ import annotations

import base64
import html
import re
from typing import Sequence

import streamlit as st

# CSS px per unit of an SVG length (CSS: 96 px to the inch, 72 pt); Graphviz writes points.
_PX_PER = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "in": 96.0, "cm": 96 / 2.54, "mm": 96 / 25.4}
_WIDTH = re.compile(r'<svg\b[^>]*?\swidth="\s*([0-9.]+)\s*([a-z]*)\s*"', re.S)


def svg_width_px(svg: str) -> float | None:
    """The natural width of an SVG in CSS px, as a browser sizes it; None when it names none."""
    m = _WIDTH.search(svg)
    if not m or m.group(2) not in _PX_PER:
        return None
    return float(m.group(1)) * _PX_PER[m.group(2)]


def show_svg(svg: str, height: int | None, fit: bool = False, widest: float | None = None) -> None:
    """An SVG in a frame, at natural size or fitted to the width (as an <img>: nothing in it runs).
    The frame scrolls beyond `height` px; with None it is as tall as the figure.

    `widest`: the natural width (CSS px) of the widest of the figures drawn beside this one in
    columns of equal width. All of them are then drawn at one scale, the one that fits the widest
    to its column (never enlarged), so the same layer is as large in each.
    """
    data = base64.b64encode(svg.encode()).decode()
    width = svg_width_px(svg)
    if widest and width:
        size = f"width:min({width:.2f}px,{100 * min(width / widest, 1.0):.4f}%);max-width:none"
    else:
        size = "max-width:100%" if fit else "max-width:none"
    with st.container(height=height or "content", border=True):
        st.html(f'<div class="diagram" style="overflow-x:auto;width:100%;max-width:100%">'
                f'<img alt="diagram" style="{size}" src="data:image/svg+xml;base64,{data}"></div>')


def wrapped_caption(text: str) -> None:
    """Plain text in the caption's size and shade that wraps, even inside a word, rather than run
    past a narrow column (a long config name)."""
    st.html(f'<div style="font-size:0.875rem;opacity:0.65;overflow-wrap:anywhere;line-height:1.4">'
            f'{html.escape(text)}</div>')


def metric_row(items: Sequence[tuple[str, str, str | None]], key: str) -> None:
    """Metrics (label, value, help) side by side, each as wide as its text: on a narrow page they
    wrap onto another row instead of cutting their values short."""
    with st.container(horizontal=True, gap="medium", key=key):
        for label, value, help_text in items:
            st.metric(label, value, help=help_text, width="content", border=True)
