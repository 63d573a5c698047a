"""Session state: the settings widgets <-> the config, the page address (the config, the open
view, the Diagram's detail and selected node), and the callbacks that set several widgets at once
(preset, unit variant, lesson, upload).

Every change the user makes writes a new page address, which the browser keeps in its history;
Back and Forward rerun the page with an older or newer address, and the page then shows what
that address holds (`follow_address`).
"""
from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

import explorer
from explorer import ArchConfig, ConfigError, lessons
from explorer.app.inputs import (CUSTOM, DEFAULT_PRESET, WIDGET_PREFIX as W, config_from_link, config_from_upload,
                                 config_from_widgets, follow_block, lesson_config, preset_choice, unit_variant_key,
                                 widget_values)
from explorer.app.text import error_text
from explorer.app.inspector import (NODE_PARAM, ROLL_PARAM, roll_from_query, roll_query, selection_from_query,
                                    selection_query)
from explorer.app.views import DEFAULT_VIEW, VIEWS
from explorer.diagram.graph import DETAILS, trace_of
from explorer.diagram.unit import default_unit

CHANGED = "last_changed"  # session key: the config key whose widget the user changed last
ADDRESS = "address"       # session key: the query parameters this session wrote last
VIEW_PARAM, DETAIL_PARAM = "view", "detail"  # ?view=Summary&detail=layers
UNIT_PARAM, UNIT_KEY = "unit", "unit_pick"   # ?unit=layer3.0: the Unit view's unit, and its widget
DETAIL_KEY = "diagram_detail"                # the Diagram view's detail widget
DEFAULT_DETAIL = "units"
PAGE_PARAMS = (NODE_PARAM, VIEW_PARAM, DETAIL_PARAM, ROLL_PARAM, UNIT_PARAM)  # beside the config keys


def box_choice(cfg: ArchConfig) -> str:
    """The preset box's value, which always agrees with the title: the preset the settings are, or
    "custom" when they are none, or when they carry another preset's name (the title then lists
    the changes from that preset, and choosing any preset in the box applies it)."""
    choice = preset_choice(cfg)
    return CUSTOM if cfg.name in explorer.PRESETS and choice != cfg.name else choice


def to_widgets(cfg: ArchConfig) -> None:
    """Put a config into the settings widgets (before they are drawn), and the preset box with it."""
    for key, value in widget_values(cfg).items():
        st.session_state[key] = value
    st.session_state.preset = box_choice(cfg)


def from_widgets() -> ArchConfig:
    """The config the widgets describe; raises ConfigError naming the widget's key (for a size
    limit, the key changed last)."""
    return config_from_widgets(st.session_state, st.session_state.get(CHANGED))


def sync_preset() -> None:
    """The preset box follows the settings: the preset they are, or "custom". Settings that become
    another preset's network exactly take that preset's name too (resnet50 with basic blocks is
    resnet34), unless the name is the user's own or was the setting just changed."""
    try:
        cfg = from_widgets()
    except ConfigError:
        st.session_state.preset = CUSTOM
        return
    match = preset_choice(cfg)
    if match != CUSTOM and cfg.name in explorer.PRESETS and st.session_state.get(CHANGED) != "name":
        st.session_state[W + "name"] = match
        cfg = cfg.replace(name=match)
    st.session_state.preset = box_choice(cfg)


def on_setting(key: str) -> None:
    """A settings widget changed: remember which (a size-limit error is shown under it)."""
    st.session_state[CHANGED] = key
    if key in ("bn_position", "relu_position"):
        on_position()
    if key == "block":
        span = follow_block(st.session_state.last_good, st.session_state[W + "block"])
        if span is not None:
            st.session_state[W + "skip_span"] = span
    sync_preset()


def on_preset() -> None:
    """A preset chosen in the box is applied; "custom" chosen by hand changes nothing, so the box
    goes back to saying what the settings are."""
    if st.session_state.preset != CUSTOM:
        st.session_state[CHANGED] = None
        to_widgets(explorer.preset(st.session_state.preset))
    else:
        sync_preset()


def on_unit_variant() -> None:
    v = lessons.UNIT_VARIANTS.get(st.session_state.unit_variant)
    if v is not None:
        st.session_state[W + "bn_position"] = v.bn_position
        st.session_state[W + "relu_position"] = v.relu_position
        st.session_state[CHANGED] = "bn_position"
        sync_preset()


def on_position() -> None:
    st.session_state["unit_variant"] = unit_variant_key(
        st.session_state[W + "bn_position"], st.session_state[W + "relu_position"])


def apply_lesson(lesson: lessons.Lesson) -> None:
    st.session_state[CHANGED] = None
    to_widgets(lesson_config(lesson))
    st.session_state.view = lesson.look_at


def apply_uploaded() -> None:
    upload = st.session_state.get("upload_config")
    if upload is None:
        return
    try:
        to_widgets(config_from_upload(upload.name, upload.size, upload.getvalue()))
        st.session_state[CHANGED] = None
        st.session_state.upload_error = None
    except ConfigError as exc:
        st.session_state.upload_error = str(exc)


def page_params(params: dict[str, str]) -> tuple[str, str]:
    """The open view and the Diagram's detail an address holds (defaults where absent or unknown)."""
    view = params.get(VIEW_PARAM, DEFAULT_VIEW)
    detail = params.get(DETAIL_PARAM, DEFAULT_DETAIL)
    return (view if view in VIEWS else DEFAULT_VIEW), (detail if detail in DETAILS else DEFAULT_DETAIL)


def show_address(params: dict[str, str]) -> None:
    """Put everything a page address holds into the widgets (before they are drawn)."""
    st.session_state.diagram_node = selection_from_query(params)  # the Diagram view's selected node
    st.session_state.diagram_roll = roll_from_query(params)  # its Roll repeats choice (None: the default)
    st.session_state.view, st.session_state[DETAIL_KEY] = page_params(params)
    st.session_state[UNIT_KEY] = params.get(UNIT_PARAM)  # the Unit view checks it is one of the network's
    preset, cfg, error = config_from_link({k: v for k, v in params.items() if k not in PAGE_PARAMS}, repeated_params())
    st.session_state.url_error = error
    st.session_state.last_good = cfg
    st.session_state[CHANGED] = None
    to_widgets(cfg)
    st.session_state.preset = preset if preset == CUSTOM else box_choice(cfg)


def repeated_params() -> dict[str, int]:
    """The page address's keys given more than once, with how many times (the last one would win)."""
    counts = {key: len(st.query_params.get_all(key)) for key in st.query_params}
    return {key: n for key, n in counts.items() if n > 1}


def history_navigation() -> bool:
    """Whether this run was started by the browser's Back or Forward button."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.is_history_navigation)


def follow_address() -> None:
    """After Back or Forward, show the settings, view, detail and selection the address holds.

    Only then: a rerun that merely carries an address older than the one just written (the user
    clicked again before the browser had the new one) must not undo what the user did."""
    params = st.query_params.to_dict()
    written = st.session_state.get(ADDRESS)
    if written is not None and params != written and history_navigation():
        show_address(params)  # a valid config: current_config then notes this address as written


def address(cfg: ArchConfig) -> dict[str, str]:
    """The page address of what is shown: the config, then the view, detail, selection and the
    Unit view's unit where they are not the defaults (a shared link opens where it was copied)."""
    params = {**cfg.to_query(), **selection_query(st.session_state.get("diagram_node")),
              **roll_query(st.session_state.get("diagram_roll"))}
    view, detail = st.session_state.get("view", DEFAULT_VIEW), st.session_state.get(DETAIL_KEY, DEFAULT_DETAIL)
    if view != DEFAULT_VIEW:
        params[VIEW_PARAM] = view
    if detail != DEFAULT_DETAIL:
        params[DETAIL_PARAM] = detail
    return {**params, **unit_query(cfg)}


def unit_query(cfg: ArchConfig) -> dict[str, str]:
    """The Unit view's unit in the address: where it is one of the network's, not the figure's own."""
    unit = st.session_state.get(UNIT_KEY)
    if not isinstance(unit, str) or unit not in {u.name for u in trace_of(cfg).units}:
        return {}
    return {UNIT_PARAM: unit} if unit != default_unit(cfg) else {}


def init_state() -> None:
    """First run of a session: what the page address holds (the default preset if nothing).
    Later runs follow the address when the browser went Back or Forward."""
    if st.session_state.get("initialised"):
        follow_address()
        return
    st.session_state.initialised = True
    st.session_state.compare = []
    st.session_state.latency_results = {}
    st.session_state.lab_results = {}
    show_address(st.query_params.to_dict())


def current_config(slots: dict) -> tuple[ArchConfig, ConfigError | None]:
    """The config to show: the widgets' if valid, else the last valid one, with the error shown
    under the widget at fault. A valid one is written into the page address."""
    try:
        cfg = from_widgets()
    except ConfigError as exc:
        where = slots.get(exc.key, slots["config"])
        where.error(error_text(exc), icon="⚠️")
        return st.session_state.last_good, exc
    st.session_state.last_good = cfg
    params, url = address(cfg), st.query_params.to_dict()
    if params == explorer.preset(DEFAULT_PRESET).to_query():
        params = {}  # the default preset on its default view has the bare address, whenever it is shown
    if params != url:
        st.query_params.from_dict(params)
    st.session_state[ADDRESS] = params
    return cfg, None
