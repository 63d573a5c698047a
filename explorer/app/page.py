"""One run of the page: settings, the config they describe, its headline and the open view."""
from __future__ import annotations

import importlib

import streamlit as st

from explorer.app.cache import summary_of
from explorer.app.sidebar import config_io, settings_sidebar
from explorer.app.state import current_config, init_state
from explorer.app.text import headline, plain_lines, plain_text, title
from explorer.app.views import VIEWS


def main() -> None:
    init_state()
    slots = settings_sidebar()
    cfg, error = current_config(slots)
    config_io(cfg)
    if error is not None:
        # In sight as well as under its widget, which may be below the fold of the sidebar.
        st.error(f"**{error.key}**: {plain_text(str(error))}  \nShowing the last valid configuration, "
                 f"{plain_text(cfg.name)}, until the setting is fixed.", icon="⚠️")
    if st.session_state.get("url_error"):
        st.warning(plain_lines(st.session_state.url_error))
    summary = summary_of(cfg)
    st.subheader(plain_text(title(cfg)), anchor=False)
    st.caption(headline(summary))
    # Tabs track their state so only the open one computes (a hidden diagram costs nothing).
    for tab, module in zip(st.tabs(list(VIEWS), key="view", on_change="rerun"), VIEWS.values()):
        with tab:
            if tab.open:
                importlib.import_module(f"explorer.app.views.{module}").draw(cfg, summary)
