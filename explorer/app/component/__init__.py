"""The Diagram view's interactive frame: an `st.components.v2` component (no iframe, no network).

Its JavaScript (diagram.js) pans and zooms the Graphviz SVG, shows each node's tooltip, outlines
the selected node and reports a clicked node's id to Python as the trigger "select".
"""
from __future__ import annotations

import json
import re
import zlib
from pathlib import Path
from typing import Callable, Sequence

from streamlit.components.v2 import component

HERE = Path(__file__).parent
_frame = component(
    "explorer.diagram_frame",
    js=(HERE / "diagram.js").read_text(encoding="utf-8"),
    css=(HERE / "diagram.css").read_text(encoding="utf-8"),
    isolate_styles=False,  # light DOM: the page's font, and tests and tools can query the drawing
)


def svg_element(svg: str) -> str:
    """The <svg> element of Graphviz's output, without the XML prolog an HTML parser would show."""
    match = re.search(r"<svg[\s>]", svg)
    return svg[match.start():] if match else svg


def diagram_frame(svg: str, candidates: Sequence[str], focus: int, height: int, key: str,
                  on_select: Callable[[], None]) -> None:
    """Show `svg` pannable and zoomable in a frame at most `height` px tall (less where the window
    or the drawing is shorter); outline the first drawn id of `candidates`, centring it whenever
    `focus` changes; `on_select` runs when a node is clicked (its id in st.session_state[key]["select"])."""
    body = svg_element(svg)
    data = {"svg": body, "version": f"{zlib.crc32(body.encode()):08x}", "candidates": list(candidates),
            "focus": focus, "height": height}
    # As JSON bytes: a dict would be scanned for dataframes, which imports pandas on the first page.
    _frame(key=key, height="content", data=json.dumps(data).encode(), on_select_change=on_select)
