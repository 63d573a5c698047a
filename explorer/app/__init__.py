"""The Streamlit UI: session state, the settings sidebar and one module per view.

The only package that imports streamlit. `store`, `inputs` and `text` hold the UI's plain logic
and import no streamlit, so tests call them directly; the views only wire widgets to `explorer`.
"""
from __future__ import annotations


def main() -> None:
    """Draw one run of the page (Streamlit reruns `app.py`, which calls this)."""
    from explorer.app.page import main as draw_page

    draw_page()


__all__ = ["main"]
