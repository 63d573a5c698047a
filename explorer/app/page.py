"""One run of the page: settings, the config they describe, its headline and the open view."""
from __future__ import annotations

import importlib

import streamlit as st

from explorer.app.cache import summary_of
from explorer.app.sidebar import config_io, settings_sidebar
from explorer.app.state import current_config, init_state
from explorer.app.text import error_text, headline, plain_lines, plain_text, title
from explorer.app.views import VIEWS
from explorer.errors import for_browser


# Page-wide style. While a script runs nothing animates: a measurement at torch's default thread
# count times its passes on every core, and each frame the browser paints for a fading element or
# a sliding progress bar is taken from those passes (the command line's passes have no page).
# A clicked tab keeps no focus ring (the keyboard's focus still shows one). The Diagram's inspector
# table keeps to its panel, long values wrapping.
PAGE_CSS = """<style>
[data-testid="stApp"][data-test-script-state="running"] [data-testid="stElementContainer"],
[data-testid="stApp"][data-test-script-state="running"] [data-testid="stProgress"] * { transition: none !important; }
[data-testid="stTab"]:focus:not(:focus-visible),
[data-testid="stTab"][data-focus-visible]:not(:focus-visible) { outline: none !important; box-shadow: none !important; }
.st-key-diagram_inspector table { width: 100%; table-layout: fixed; }
.st-key-diagram_inspector th:first-child { width: 40%; }
.st-key-diagram_inspector th, .st-key-diagram_inspector td { overflow-wrap: anywhere; }
</style>"""


def main() -> None:
    st.html(PAGE_CSS)
    init_state()
    slots = settings_sidebar()
    cfg, error = current_config(slots)
    config_io(cfg)
    if error is not None:
        # In sight as well as under its widget, which may be below the fold of the sidebar.
        st.error(f"**{error.key}**: {error_text(error, key_shown=True)}  \nShowing the last valid "
                 f"configuration, {plain_text(title(cfg))}, until the setting is fixed.", icon="⚠️")
    if st.session_state.get("url_error"):
        st.warning(plain_lines(for_browser(st.session_state.url_error)))
    summary = summary_of(cfg)
    st.subheader(plain_text(title(cfg)), anchor=False)
    st.caption(headline(summary))
    # Tabs track their state so only the open one computes (a hidden diagram costs nothing).
    for tab, module in zip(st.tabs(list(VIEWS), key="view", on_change="rerun"), VIEWS.values()):
        with tab:
            if tab.open:
                importlib.import_module(f"explorer.app.views.{module}").draw(cfg, summary)
