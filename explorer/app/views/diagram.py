"""Diagram tab: the traced network at three detail levels, pannable and zoomable, coloured by a
chosen fact, with an inspector for the selected node, and downloads."""
from __future__ import annotations

import streamlit as st

from explorer import ArchConfig, diagram
from explorer.app.cache import diagram_bytes, diagram_source
from explorer.app.component import diagram_frame
from explorer.app.inspector import node_facts, profile_times, resolve_path, rolled_into
from explorer.app.layout import layout_on_page
from explorer.app.text import plain_lines, plain_text, safe_name
from explorer.arch.presets import named_for_changes
from explorer.labels import fmt_shape
from explorer.diagram.overlay import COLOR_BY
from explorer.diagram.roll import ROLL_ABOVE, rolls as roll_rule
from explorer.trace import trace
from explorer.vocab import SHORTCUT_TEXT

MIMES = {"dot": "text/vnd.graphviz", "svg": "image/svg+xml", "png": "image/png", "pdf": "application/pdf"}
DIRECTION_LABELS = {"TB": "top-down", "LR": "left-right"}
COLOR_LABELS = {"none": "none", "params": "parameters", "macs": "MACs", "memory": "activation memory",
                "time": "measured time"}
FRAME_HEIGHT = 960  # the most px of the drawing's frame: less where the window or the drawing is shorter


# -- selection: callbacks run before the next run draws any widget ------------------------------
def on_click() -> None:
    """A node clicked in the frame becomes the selection."""
    clicked = st.session_state["diagram_frame"]["select"]
    if clicked:
        st.session_state.diagram_node = clicked
        st.session_state.diagram_find_error = ""


def on_find(cfg: ArchConfig) -> None:
    """The path typed in the find box becomes the selection, centred in the frame."""
    path, why = resolve_path(trace(cfg), st.session_state.diagram_find)
    st.session_state.diagram_find_error = why
    if path:
        st.session_state.diagram_node = path
        st.session_state.diagram_focus = st.session_state.get("diagram_focus", 0) + 1


def on_roll() -> None:
    """The Roll repeats toggle: the user's choice replaces the default rule (kept in the address)."""
    st.session_state.diagram_roll = st.session_state.diagram_roll_toggle


def unroll() -> None:
    """Draw every unit, so that the selection inside a rolled run has its own node, centred."""
    st.session_state.diagram_roll = False
    st.session_state.diagram_focus = st.session_state.get("diagram_focus", 0) + 1


def clear_selection() -> None:
    st.session_state.diagram_node = None
    st.session_state.diagram_find = ""
    st.session_state.diagram_find_error = ""


def open_unit(unit: str) -> None:
    """Show `unit` in the Unit tab (its unit choice and the open tab are set before they draw)."""
    st.session_state.unit_pick = unit
    st.session_state.view = "Unit"


# -- the view ----------------------------------------------------------------------------------
def colour_times(cfg: ArchConfig, color_by: str) -> tuple[str, tuple[tuple[str, float], ...] | None]:
    """(color_by to draw, the profile's times) — "none" while no per-layer profile exists."""
    times = profile_times(st.session_state.get("latency_results", {}), cfg)
    if color_by == "time" and not times:
        st.info("Profile the layers in the Latency tab first: the diagram is coloured by their measured time.")
        return "none", None
    return color_by, tuple(sorted(times.items())) if times else None


def draw(cfg: ArchConfig, summary: dict) -> None:
    # Two rows, so that every label stays whole from 1024 px up.
    c1, c2, c3 = st.columns([2, 2, 2])
    # Kept while another tab is open (persist_state); the detail is in the page address too.
    keep = dict(persist_state="session")
    detail = c1.radio("Detail", diagram.DETAILS, horizontal=True, key="diagram_detail", **keep)
    direction = c2.radio("Direction", diagram.DIRECTIONS, horizontal=True, key="diagram_direction", **keep,
                         format_func=DIRECTION_LABELS.get)
    wanted = c3.selectbox("Colour by", COLOR_BY, key="diagram_color_by", format_func=COLOR_LABELS.get, **keep,
                          help="Fill each node by a fact on a log scale, light for little and dark for much")
    c4, c5, c6 = st.columns([2, 2, 2])
    shapes = c4.toggle("Shapes on edges", value=True, key="diagram_shapes", **keep)
    fold = c5.toggle("Fold BN/ReLU", value=False, key="diagram_fold", disabled=detail != "layers", **keep,
                     help="At layer detail, draw BN and ReLU inside their conv")
    rolled = roll_toggle(c6, cfg, detail)
    color_by, times = colour_times(cfg, wanted)
    options = (cfg, detail, direction, shapes, fold)
    overlay = {"color_by": color_by, "times": times, "roll": rolled}
    # Files go out under the display name (a changed preset's title says so); drawn only when asked.
    named = (named_for_changes(cfg), *options[1:])
    try:
        # Laid out in a child process that a newer change stops (a big layout takes seconds).
        svg = layout_on_page(diagram_source(*options, **overlay))
    except diagram.GraphvizMissing as exc:
        st.error(plain_lines(str(exc)))
        st.download_button("Download DOT", diagram_bytes(*named, "dot", **overlay),
                           file_name=f"{safe_name(cfg)}_{detail}.dot", key="download_dot", on_click="ignore")
        return
    tr = trace(cfg)
    selected = st.session_state.get("diagram_node")
    left, right = st.columns([3, 2])  # the facts panel keeps room for its table at 1024 px
    with right:
        st.text_input("Find a node", key="diagram_find", placeholder="layer3.4 or layer3.4.conv2",
                      on_change=on_find, args=(cfg,), help="A module path: press Enter to select and centre it")
        if st.session_state.get("diagram_find_error"):
            st.warning(plain_lines(st.session_state.diagram_find_error))
        drawn = diagram.node_id(tr, selected, detail, fold, rolled) if selected else ""
        unroll_offer(tr, selected, drawn)
        inspector_panel(tr, selected, dict(times) if times else None)
    with left:
        diagram_frame(svg, [drawn] if drawn else [],
                      st.session_state.get("diagram_focus", 0), FRAME_HEIGHT, key="diagram_frame",
                      on_select=on_click)
    st.caption("Blue dashed arcs: identity shortcuts · orange: zero-padding (option A) · red: 1x1 projections. "
               "Hover a node for its facts; click it to inspect it.")
    for col, fmt in zip(st.columns(4), diagram.FORMATS):
        col.download_button(
            f"Download {fmt.upper()}",
            data=(lambda f=fmt: diagram_bytes(*named, f, **overlay)),  # made only when downloaded
            file_name=f"{safe_name(cfg)}_{detail}.{fmt}", mime=MIMES.get(fmt), key=f"download_{fmt}",
            use_container_width=True, on_click="ignore",  # a click delivers the file without a rerun
        )
    scale = diagram.png_scale(svg)
    if scale < 1.0:
        st.caption(f"The PNG is shrunk to {scale:.0%} of {diagram.PNG_DPI} dpi: a bitmap can be at most "
                   f"{diagram.PNG_MAX_PX:,} pixels on a side. SVG and PDF keep this diagram at full size.")


def roll_toggle(col, cfg: ArchConfig, detail: str) -> bool:
    """The Roll repeats toggle; it shows what is drawn: the user's choice, else the default rule."""
    st.session_state.diagram_roll_toggle = rolled = roll_rule(trace(cfg), st.session_state.get("diagram_roll"))
    col.toggle("Roll repeats", key="diagram_roll_toggle", on_change=on_roll, disabled=detail == "stages",
               help=f"Draw each run of identical units once, with its count (on by default above {ROLL_ABOVE} units)")
    return rolled


def unroll_offer(tr, selected: str | None, drawn: str) -> None:
    """A button to unroll the drawing when the selection is drawn inside a rolled run's node."""
    run = rolled_into(tr, selected, drawn)
    if run:
        st.button(f"Unroll: {plain_text(selected)} is drawn in {run}", key="diagram_unroll", on_click=unroll,
                  use_container_width=True, help="Draw every unit, this one with its own node")


def md_table(header: list[str], rows: list[tuple[str, ...]]) -> str:
    """A small Markdown table (values are the trace's own text: paths, shapes, numbers)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows])


def inspector_panel(tr, selected: str | None, times: dict[str, float] | None) -> None:
    """The selected node's facts and its unit's shape check, with a way to the Unit view."""
    facts = node_facts(tr, selected, times) if selected else None
    with st.container(border=True, key="diagram_inspector"):
        if facts is None:
            if selected:
                st.caption(f"{plain_text(selected)} is not in this network.")
            else:
                st.caption("Click a node, or find one by its path, to see its facts here.")
            return
        st.markdown(f"**`{facts['path']}`**  \n{facts['what']}")
        st.markdown(md_table(["fact", "value (share)"],
                             [(r["fact"], r["value"] + (f" ({r['share']})" if r["share"] else "")) for r in facts["rows"]]))
        unit = facts["unit"]
        if unit is not None:
            st.markdown(f"**Unit `{unit['name']}`: shape check**")
            st.markdown(md_table(["check", "value"], [
                ("x (in)", fmt_shape(unit["in_shape"])), ("F(x) (out)", fmt_shape(unit["out_shape"])),
                ("shortcut", SHORTCUT_TEXT[unit["shortcut"]].name),
                ("shortcut params", f"{unit['shortcut_params']:,}")]))
            st.caption(unit["reason"])
            st.button(f"Open {unit['name']} in the Unit view", key="inspect_open_unit", on_click=open_unit,
                      args=(unit["name"],), use_container_width=True)
        st.button("Clear selection", key="inspect_clear", on_click=clear_selection, use_container_width=True)
