"""The app's run store: one Keeper per server process, shared by every session.

A store that cannot be used is reported once per session, in one line, and the app goes on with
what the session holds in memory.
"""
from __future__ import annotations

import streamlit as st

from explorer.app.text import plain_text
from explorer.runs import Keeper, default_path, open_store


@st.cache_resource(show_spinner=False)
def _keeper_at(path: str) -> Keeper:
    return Keeper(open_store(path) if path else None)


def keeper() -> Keeper:
    """The store named by the environment (RESNET_EXPLORER_STORE), or a Keeper that keeps nothing."""
    path = default_path()
    return _keeper_at(str(path) if path is not None else "")


def store_notice() -> None:
    """Say once per session why runs are not being kept, when the store failed."""
    problem = keeper().problem
    if problem and st.session_state.get("store_notice") != problem:
        st.session_state.store_notice = problem
        st.warning(f"Runs are not being kept: {plain_text(problem)}. Results stay in this session until it ends.", icon="💾")
