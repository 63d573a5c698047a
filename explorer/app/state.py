"""Session state: the settings widgets <-> the config, the page address (the config and the
Diagram view's selected node), and the callbacks that set several widgets at once (preset,
unit variant, lesson, upload)."""
from __future__ import annotations

import streamlit as st

import explorer
from explorer import ArchConfig, ConfigError, lessons
from explorer.app.inputs import (CUSTOM, WIDGET_PREFIX as W, config_from_link, config_from_upload, config_from_widgets,
                                 lesson_config, preset_choice, unit_variant_key, widget_values)
from explorer.app.inspector import NODE_PARAM, selection_from_query, selection_query

CHANGED = "last_changed"  # session key: the config key whose widget the user changed last


def to_widgets(cfg: ArchConfig) -> None:
    """Put a config into the settings widgets (before they are drawn), and the preset box with it."""
    for key, value in widget_values(cfg).items():
        st.session_state[key] = value
    st.session_state.preset = preset_choice(cfg)


def from_widgets() -> ArchConfig:
    """The config the widgets describe; raises ConfigError naming the widget's key (for a size
    limit, the key changed last)."""
    return config_from_widgets(st.session_state, st.session_state.get(CHANGED))


def sync_preset() -> None:
    """The preset box follows the settings: the preset they are, or "custom"."""
    try:
        st.session_state.preset = preset_choice(from_widgets())
    except ConfigError:
        st.session_state.preset = CUSTOM


def on_setting(key: str) -> None:
    """A settings widget changed: remember which (a size-limit error is shown under it)."""
    st.session_state[CHANGED] = key
    if key in ("bn_position", "relu_position"):
        on_position()
    sync_preset()


def on_preset() -> None:
    if st.session_state.preset != CUSTOM:
        st.session_state[CHANGED] = None
        to_widgets(explorer.preset(st.session_state.preset))


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


def init_state() -> None:
    """First run of a session: the config comes from the URL if it has one, else the default preset."""
    if st.session_state.get("initialised"):
        return
    st.session_state.initialised = True
    st.session_state.compare = []
    st.session_state.latency_results = {}
    st.session_state.lab_results = {}
    params = {k: st.query_params[k] for k in st.query_params}
    st.session_state.diagram_node = selection_from_query(params)  # the Diagram view's selected node
    preset, cfg, error = config_from_link({k: v for k, v in params.items() if k != NODE_PARAM})
    st.session_state.url_error = error
    st.session_state.last_good = cfg
    to_widgets(cfg)
    st.session_state.preset = preset


def current_config(slots: dict) -> tuple[ArchConfig, ConfigError | None]:
    """The config to show: the widgets' if valid, else the last valid one, with the error shown
    under the widget at fault."""
    try:
        cfg = from_widgets()
    except ConfigError as exc:
        where = slots.get(exc.key, slots["config"])
        where.error(str(exc), icon="⚠️")
        return st.session_state.last_good, exc
    st.session_state.last_good = cfg
    st.query_params.from_dict({**cfg.to_query(), **selection_query(st.session_state.get("diagram_node"))})
    return cfg, None
