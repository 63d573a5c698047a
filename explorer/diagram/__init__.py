"""Graphviz drawings of the traced network: three detail levels, the paper-style unit figure, export,
and which drawn node shows each traced op (`drawn_ids`, `node_id`, `segment_ids`, `ops_drawn_in`)."""
from explorer.diagram.export import FORMATS, PNG_DPI, PNG_MAX_PX, GraphvizMissing, png_scale, png_size, to_bytes
from explorer.diagram.graph import DIRECTIONS, build_graph, unit_names
from explorer.diagram.ids import DETAILS, drawn_ids, node_id, ops_drawn_in, segment_ids
from explorer.diagram import overlay
from explorer.diagram.unit import build_unit_figure, equation

__all__ = [
    "DETAILS", "DIRECTIONS", "FORMATS", "PNG_DPI", "PNG_MAX_PX", "GraphvizMissing", "build_graph",
    "build_unit_figure", "drawn_ids", "equation", "node_id", "ops_drawn_in", "overlay", "png_scale", "png_size",
    "segment_ids", "to_bytes", "unit_names",
]
