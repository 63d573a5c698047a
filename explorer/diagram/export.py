"""Diagrams to bytes: DOT source, or laid out by Graphviz as SVG, PNG or PDF, in memory."""
from __future__ import annotations

import re
import shutil

import graphviz

from explorer.errors import check_choice

FORMATS = ("dot", "svg", "png", "pdf")

# Pixels per inch for PNG: graphviz's own default, kept explicit. Large graphs are laid out
# compactly (small rank and node separation) so that ResNet-152 at layer detail stays within
# cairo's bitmap limit without being scaled down.
PNG_DPI = 96
# Longest side of a bitmap cairo can draw; Graphviz shrinks a larger drawing to fit it.
PNG_MAX_PX = 32767


_MISSING = ("Graphviz's `dot` program is not installed, so only DOT export works; install "
            "Graphviz (apt-get install graphviz, brew install graphviz or conda install graphviz) "
            "and make sure `dot` is on PATH")


class GraphvizMissing(RuntimeError):
    """Graphviz's `dot` program is needed for SVG, PNG and PDF but is not installed; the message
    says how to install it."""

    def __init__(self, message: str = _MISSING) -> None:
        super().__init__(message)


def to_bytes(graph: graphviz.Digraph, fmt: str) -> bytes:
    """The graph as DOT source, or laid out by Graphviz as SVG, PNG or PDF (in memory).

    Raises:
        ConfigError: for a format other than dot, svg, png, pdf.
        GraphvizMissing: when SVG/PNG/PDF is asked for and the `dot` program is not installed.
    """
    check_choice("format", fmt, FORMATS)
    if fmt == "dot":
        return graph.source.encode("utf-8")
    if shutil.which("dot") is None:
        raise GraphvizMissing()
    try:
        if fmt == "png":
            # dpi only for bitmaps: set on the graph, it also scales SVG content past its viewBox.
            graph = graph.copy()
            graph.attr(dpi=str(PNG_DPI))
        # quiet: Graphviz's note that it shrank a tall PNG is reported by png_scale instead.
        return graph.pipe(format=fmt, quiet=fmt == "png")
    except graphviz.ExecutableNotFound as exc:
        raise GraphvizMissing() from exc


def png_scale(svg: str | bytes) -> float:
    """The factor Graphviz shrinks this drawing by when it renders it as PNG (1.0: full size).

    `svg` is the same graph already laid out as SVG: its size in points says how many pixels
    the PNG needs at PNG_DPI, and beyond PNG_MAX_PX on a side the whole bitmap is scaled down.
    """
    text = svg.decode("utf-8", "replace") if isinstance(svg, bytes) else svg
    match = re.search(r'<svg\s[^>]*?width="([\d.]+)pt"\s+height="([\d.]+)pt"', text)
    if match is None:
        return 1.0
    longest_px = max(float(match[1]), float(match[2])) * PNG_DPI / 72
    return min(1.0, PNG_MAX_PX / longest_px) if longest_px > 0 else 1.0


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels, read from a PNG's header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
        raise ValueError("not a PNG")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
