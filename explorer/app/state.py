"""Session state: the settings widgets <-> the config, the page address (the config and the
Diagram view's selected node), and the callbacks that set several widgets at once (preset,
unit variant, lesson, upload)."""
from __future__ import annotations

import streamlit as st

import explorer
from explorer import ArchConfig, ConfigError, lessons
from explorer.app.inputs import (WIDGET_PREFIX as W, config_from_link, config_from_upload, config_from_widgets,
                                 lesson_config, unit_variant_key, widget_values)
from explorer.app.inspector import NODE_PARAM, selection_from_query, selection_query


def to_widgets(cfg: ArchConfig) -> None:
    """Put a config into the settings widgets (before they are drawn)."""
    for key, value in widget_values(cfg).items():
        st.session_state[key] = value


def from_widgets() -> ArchConfig:
    """The config the widgets describe; raises ConfigError naming the widget's key."""
    return config_from_widgets(st.session_state)


def on_preset() -> None:
    to_widgets(explorer.preset(st.session_state.preset))


def on_unit_variant() -> None:
    v = lessons.UNIT_VARIANTS.get(st.session_state.unit_variant)
    if v is not None:
        st.session_state[W + "bn_position"] = v.bn_position
        st.session_state[W + "relu_position"] = v.relu_position


def on_position() -> None:
    st.session_state["unit_variant"] = unit_variant_key(
        st.session_state[W + "bn_position"], st.session_state[W + "relu_position"])


def apply_lesson(lesson: lessons.Lesson) -> None:
    st.session_state.preset = lesson.preset
    to_widgets(lesson_config(lesson))
    st.session_state.view = lesson.look_at


def apply_uploaded() -> None:
    upload = st.session_state.get("upload_config")
    if upload is None:
        return
    try:
        to_widgets(config_from_upload(upload.name, upload.size, upload.getvalue()))
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
    st.session_state.preset = preset
    st.session_state.last_good = cfg
    to_widgets(cfg)


def current_config(slots: dict) -> tuple[ArchConfig, bool]:
    """The config to show: the widgets' if valid, else the last valid one (and the error by its widget)."""
    try:
        cfg = from_widgets()
    except ConfigError as exc:
        where = slots.get(exc.key, slots["config"])
        where.error(str(exc), icon="⚠️")
        return st.session_state.last_good, False
    st.session_state.last_good = cfg
    st.query_params.from_dict({**cfg.to_query(), **selection_query(st.session_state.get("diagram_node"))})
    return cfg, True
