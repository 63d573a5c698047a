"""Display helpers shared by the views."""
from __future__ import annotations

import base64

import streamlit as st


def show_svg(svg: str, height: int, fit: bool = False) -> None:
    """An SVG in a scrolling frame, at natural size or fitted to the width (as an <img>: nothing in it runs)."""
    data = base64.b64encode(svg.encode()).decode()
    size = "max-width:100%" if fit else "max-width:none"
    with st.container(height=height, border=True):
        st.html(f'<div class="diagram" style="overflow-x:auto;width:100%;max-width:100%">'
                f'<img alt="diagram" style="{size}" src="data:image/svg+xml;base64,{data}"></div>')
