"""Display helpers shared by the views."""
from __future__ import annotations

import base64
from typing import Sequence

import streamlit as st


def show_svg(svg: str, height: int, fit: bool = False) -> None:
    """An SVG in a scrolling frame, at natural size or fitted to the width (as an <img>: nothing in it runs)."""
    data = base64.b64encode(svg.encode()).decode()
    size = "max-width:100%" if fit else "max-width:none"
    with st.container(height=height, border=True):
        st.html(f'<div class="diagram" style="overflow-x:auto;width:100%;max-width:100%">'
                f'<img alt="diagram" style="{size}" src="data:image/svg+xml;base64,{data}"></div>')


def metric_row(items: Sequence[tuple[str, str, str | None]], key: str) -> None:
    """Metrics (label, value, help) side by side, each as wide as its text: on a narrow page they
    wrap onto another row instead of cutting their values short."""
    with st.container(horizontal=True, gap="medium", key=key):
        for label, value, help_text in items:
            st.metric(label, value, help=help_text, width="content", border=True)
