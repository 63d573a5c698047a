"""Learn tab: the questions this tool exists for, each with a *Show me* button that sets the knobs."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer import ArchConfig, lessons
from explorer.app.state import DETAIL_KEY, apply_lesson
from explorer.app.text import published_figure


def unit_variants_table() -> pd.DataFrame:
    return pd.DataFrame([
        {"unit": v.label, "BN": v.bn_position, "ReLU": v.relu_position,
         "ResNet-110 error %": published_figure(v.error_110), "ResNet-164 error %": published_figure(v.error_164)}
        for v in lessons.UNIT_VARIANTS.values()]).set_index("unit")


def tweaks_table() -> pd.DataFrame:
    """The published ImageNet figures of ResNet-B/C/D and SE, one row per model and source."""
    return pd.DataFrame([
        {"model": r.model, "source": r.source, "figure": r.what, "top-1": published_figure(r.top1),
         "top-5": published_figure(r.top5), "GFLOPs": published_figure(r.gflops)}
        for r in lessons.TWEAK_RESULTS]).set_index("model")


def show_me(lesson: lessons.Lesson) -> None:
    """Set the knobs a lesson names and open its view (the Diagram at the detail its text speaks of)."""
    apply_lesson(lesson)
    if lesson.look_at == "Diagram":  # its first view: the whole drawing, or its start, with nothing selected
        st.session_state[DETAIL_KEY] = lesson.detail
        st.session_state.diagram_node = None
        st.session_state.diagram_find = ""
    st.session_state.pop("unit_pick", None)  # the Unit view opens at the unit its text speaks of


def draw(cfg: ArchConfig, summary: dict) -> None:
    st.markdown("Each question below is answered by building the real model. **Show me** sets the knobs.")
    for lesson in lessons.LESSONS:
        with st.expander(lesson.question, expanded=lesson.key == "two_layers"):
            st.markdown(lesson.answer)
            if lesson.key == "bn_position":
                st.table(unit_variants_table())  # a table wraps its text: nothing is cut at 1024 px
            elif lesson.key == "resnet_d":
                st.table(tweaks_table())
            st.button("Show me", key=f"learn_{lesson.key}", on_click=show_me, args=(lesson,))
