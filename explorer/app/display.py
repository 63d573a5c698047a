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


# The least a figure is shrunk to: Graphviz's smallest text in the figures (12 pt = 16 px) then
# reads at 11 px; a column narrower than that scrolls sideways instead of shrinking it further.
READABLE_SCALE = 0.69


def _img(svg: str, style: str) -> str:
    data = base64.b64encode(svg.encode()).decode()
    return f'<img alt="diagram" style="{style}" src="data:image/svg+xml;base64,{data}">'


def _readable_width(svg: str) -> str:
    """CSS width of a figure: its column's, but no smaller than READABLE_SCALE of its natural
    width and no larger than natural (an SVG without a width: its column's)."""
    width = svg_width_px(svg)
    if not width:
        return "width:100%"
    return f"width:clamp({READABLE_SCALE * width:.2f}px,100%,{width:.2f}px);max-width:none"


def show_svg(svg: str, height: int | None, fit: bool = False) -> None:
    """An SVG in a frame, at natural size or fitted to the width (as an <img>: nothing in it runs).
    The frame scrolls beyond `height` px; with None it is as tall as the figure (no scroll box of
    its own) and a fitted figure is never shrunk below READABLE_SCALE.
    """
    if fit and height is None:
        size = _readable_width(svg)
    else:
        size = "max-width:100%" if fit else "max-width:none"
    # a frame only around a scroll box: a whole figure needs none, and keeps its width for the drawing
    with st.container(height=height or "content", border=height is not None or not fit):
        st.html(f'<div class="diagram" style="overflow-x:auto;width:100%;max-width:100%">{_img(svg, size)}</div>')


def figure_row(figures: Sequence[tuple[str, str]], height: int | None) -> None:
    """SVG figures (caption, svg) side by side in columns of equal width, all at one scale: the
    widest fills its column (never enlarged) and the others are drawn in proportion, so a layer is
    as large in each. Columns are never narrower than READABLE_SCALE of the widest figure: on a
    narrow page they wrap onto more rows instead. Each scrolls beyond `height` px (None: whole)."""
    widths = [svg_width_px(svg) for _, svg in figures]
    widest = max((w for w in widths if w), default=0.0)
    boxes = []
    for (caption, svg), width in zip(figures, widths):
        size = (f"width:{100 * width / widest:.4f}%;max-width:{width:.2f}px" if width else "max-width:100%")
        tall = f"max-height:{height}px;overflow-y:auto;" if height else ""
        boxes.append(
            f'<figure style="margin:0;min-width:0">'
            f'<figcaption style="font-size:0.875rem;opacity:0.65;overflow-wrap:anywhere;line-height:1.4;'
            f'margin-bottom:0.3rem">{html.escape(caption)}</figcaption>'
            f'<div class="diagram" style="{tall}overflow-x:auto;border:1px solid rgba(49,51,63,0.2);'
            f'border-radius:0.5rem;padding:0.5rem">{_img(svg, size)}</div></figure>')
    least = READABLE_SCALE * widest + 18  # px: the figure and its frame's padding and border
    st.html(f'<div style="display:grid;gap:1rem;align-items:start;'
            f'grid-template-columns:repeat(auto-fit,minmax(min(100%,{least:.0f}px),1fr))">{"".join(boxes)}</div>')


def metric_row(items: Sequence[tuple[str, str, str | None]], key: str) -> None:
    """Metrics (label, value, help) side by side, each as wide as its text: on a narrow page they
    wrap onto another row instead of cutting their values short."""
    with st.container(horizontal=True, gap="medium", key=key):
        for label, value, help_text in items:
            st.metric(label, value, help=help_text, width="content", border=True)
