"""Learn tab: the questions this tool exists for, each with a *Show me* button that sets the knobs."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer import ArchConfig, lessons
from explorer.app.state import apply_lesson
from explorer.app.text import published_figure


def unit_variants_table() -> pd.DataFrame:
    return pd.DataFrame([
        {"unit": v.label, "BN": v.bn_position, "ReLU": v.relu_position,
         "ResNet-110 error %": published_figure(v.error_110), "ResNet-164 error %": published_figure(v.error_164)}
        for v in lessons.UNIT_VARIANTS.values()]).set_index("unit")


def draw(cfg: ArchConfig, summary: dict) -> None:
    st.markdown("Each question below is answered by building the real model. **Show me** sets the knobs.")
    for lesson in lessons.LESSONS:
        with st.expander(lesson.question, expanded=lesson.key == "two_layers"):
            st.markdown(lesson.answer)
            if lesson.key == "bn_position":
                st.table(unit_variants_table())  # a table wraps its text: nothing is cut at 1024 px
            st.button("Show me", key=f"learn_{lesson.key}", on_click=apply_lesson, args=(lesson,))
