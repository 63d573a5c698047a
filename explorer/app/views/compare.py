"""Compare tab: up to MAX_COMPARE configs side by side, renamed or removed in place."""
from __future__ import annotations

import streamlit as st

from explorer import ArchConfig, compare, diagram, diff
from explorer.app.store import (MAX_COMPARE, add_config, configs_of, latency_rows, remove_config,
                                 rename_config)
from explorer.app.cache import compare_rows, highlighted_units_svg, unit_figure_svg
from explorer.app.display import show_svg
from explorer.labels import distinct_labels

DIFF_COLOUR = "background-color: #fff3bf"
BAR_METRICS = ("params", "macs", "activation_bytes")


def on_add(cfg: ArchConfig) -> None:
    st.session_state.compare_msg = add_config(st.session_state.compare, cfg)


def on_remove(i: int) -> None:
    remove_config(st.session_state.compare, i)


def on_rename(i: int) -> None:
    st.session_state.compare_msg = rename_config(
        st.session_state.compare, i, st.session_state.get(f"compare_name_{i}", ""))


def entry_widgets(cfgs: list[ArchConfig]) -> None:
    for i, c in enumerate(cfgs):
        a, b = st.columns([4, 1])
        a.text_input(f"Config {i + 1}", value=c.name, key=f"compare_name_{i}", on_change=on_rename,
                     args=(i,), label_visibility="collapsed")
        b.button("Remove", key=f"compare_remove_{i}", on_click=on_remove, args=(i,))


def table(rows: list[dict], cfgs: list[ArchConfig]) -> None:
    diff = compare.differing_keys(cfgs) if len(cfgs) > 1 else []
    styled = compare.to_frame(rows).style.apply(
        lambda col: [DIFF_COLOUR if col.name in diff else ""] * len(col), axis=0)
    st.dataframe(styled, hide_index=True, key="compare_table")
    if diff:
        st.caption("Highlighted: settings that differ — " + ", ".join(diff))


def charts(rows: list[dict], cfgs: list[ArchConfig]) -> None:
    # one chart under another at the full width: horizontal bars, so each is short and the
    # config names on the y axis stay whole even at 1024 px
    for metric in BAR_METRICS:
        st.plotly_chart(compare.bar_figure(rows, metric), key=f"compare_chart_{metric}")
    lat_rows = latency_rows(st.session_state.latency_results, cfgs)
    if lat_rows:
        st.plotly_chart(compare.bar_figure(lat_rows, "median_ms"), key="compare_chart_latency")
    else:
        st.caption("Latency appears here once configs are measured in the Latency tab.")


def units(cfgs: list[ArchConfig]) -> None:
    st.markdown("**Units side by side** (first unit with a projection, else the first unit)")
    for col, c in zip(st.columns(len(cfgs)), cfgs):
        with col:
            st.caption(c.name)
            try:
                show_svg(unit_figure_svg(c, None), height=520, fit=True)
            except diagram.GraphvizMissing as exc:
                st.error(str(exc))


def pick_pair(cfgs: list[ArchConfig]) -> tuple[int, int]:
    """The two compared configs to diff: select boxes over their names, the first two by default."""
    labels = distinct_labels([c.name for c in cfgs])
    for key, default in (("diff_a", 0), ("diff_b", 1)):
        if st.session_state.get(key) not in labels:  # renamed or removed since
            st.session_state[key] = labels[default]
    left, right = st.columns(2)
    left.selectbox("Variant A", labels, key="diff_a")
    right.selectbox("Variant B", labels, key="diff_b")
    return labels.index(st.session_state.diff_a), labels.index(st.session_state.diff_b)


def diff_view(cfgs: list[ArchConfig]) -> None:
    """What changes from A to B, unit by unit, and both unit diagrams with the changes outlined."""
    st.markdown("**Diff two variants**")
    i, j = pick_pair(cfgs)
    a, b = cfgs[i], cfgs[j]
    changes = diff.diff_configs(a, b)
    if not changes:
        st.success("No structural differences: both configs build the same network.")
    else:
        rows = [{"unit": c.unit, "change": c.change, "params": f"{c.params:+,}", "MACs": f"{c.macs:+,}",
                 "kind": c.kind} for c in changes]
        st.dataframe(rows, hide_index=True, key="diff_table")
        st.caption(f"From A to B: {diff.count_line(changes)}; {diff.total_line(a, b)}. "
                   "Changed units are outlined in both diagrams.")
    for col, c, side in zip(st.columns(2), (a, b), "ab"):
        with col:
            st.caption(f"{side.upper()}: {c.name}")
            highlight = tuple(sorted(diff.highlights(changes, c, side).items()))
            try:
                show_svg(highlighted_units_svg(c, highlight), height=720, fit=True)
            except diagram.GraphvizMissing as exc:
                st.error(str(exc))


def draw(cfg: ArchConfig, summary: dict) -> None:
    entries = st.session_state.compare
    st.button(f"Add current config ({cfg.name})", on_click=on_add, args=(cfg,), type="primary",
              key="compare_add", disabled=len(entries) >= MAX_COMPARE)
    if st.session_state.get("compare_msg"):
        st.error(st.session_state.compare_msg)
    if not entries:
        st.info(f"Add up to {MAX_COMPARE} configs to compare them side by side.")
        return
    cfgs = configs_of(entries)
    entry_widgets(cfgs)
    rows = compare_rows(tuple(cfgs))
    table(rows, cfgs)
    charts(rows, cfgs)
    units(cfgs)
    d1, d2 = st.columns(2)
    d1.download_button("Download CSV", compare.to_csv_bytes(rows), file_name="comparison.csv", mime="text/csv",
                       key="compare_csv", on_click="ignore")
    d2.download_button("Download JSON", compare.to_json_bytes(rows), file_name="comparison.json",
                       mime="application/json", key="compare_json", on_click="ignore")
    if len(cfgs) > 1:
        diff_view(cfgs)
    else:
        st.caption("Add a second config to diff two variants unit by unit.")
