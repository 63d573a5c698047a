"""Compare tab: up to MAX_COMPARE configs side by side, renamed or removed in place; every
setting that differs, the figures, latency of them all at one set of settings, units at one scale."""
from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Callable

import pandas as pd
import streamlit as st

from explorer import ArchConfig, ConfigError, compare, diagram, diff, timing
from explorer.app.store import (MAX_COMPARE, LatencySettings, add_config, configs_of, latest_latency,
                                 measured_key, remember, remove_config, rename_config)
from explorer.app.cache import compare_rows, highlighted_units_svg, unit_figure_svg
from explorer.app.inputs import distinct_name
from explorer.app.display import figure_row
from explorer.app.measuring import bar_progress, kept_latencies, measure, settings_widgets
from explorer.app.text import error_text, plain_lines, plain_text
from explorer.labels import distinct_labels, file_stem, fmt_count, fmt_ms, fmt_rate
from explorer.runs.timing_runs import when_where
from explorer.limits import LATENCY_BUDGET_S

DIFF_COLOUR = "background-color: #fff3bf"
# exact counts shown with thousands separators ("25,557,032"), as everywhere in the app
COUNT_COLUMNS = ("params", "macs", "projection_params", "activation_bytes", "peak_bytes")
BAR_METRICS = ("params", "macs", "activation_bytes")
RUNNING = "compare_measuring"  # session key: (config index, count, name) while Measure all runs


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


# The main area is about 560 px wide at 1024 px beside the sidebar: the table has a row per setting
# and figure and a column per config, so it fits there for up to MAX_COMPARE configs.
TABLE_WIDTH, SETTING_WIDTH = 560, 130
DIFF_WIDTHS = {"unit": 72, "kind": 80, "params": 88, "MACs": 104, "change": 200}  # "change" wraps
WRAP_ROW_HEIGHT = 66    # px: above 64 px Streamlit's grid wraps a cell's text


def settings_frame(rows: list[dict]):
    """The comparison turned on its side: a row per setting or figure ("setting"), a column per config."""
    frame = compare.to_frame(rows)
    frame["name"] = distinct_labels([str(n) for n in frame["name"]])
    side = frame.set_index("name").T
    for row in COUNT_COLUMNS:
        if row in side.index:
            side.loc[row] = side.loc[row].map(fmt_count)
    side = side.astype(str)
    side.index.name = "setting"
    return side.reset_index()


def table(rows: list[dict], cfgs: list[ArchConfig]) -> None:
    diff = compare.differing_keys(cfgs) if len(cfgs) > 1 else []
    frame = settings_frame(rows)
    styled = frame.style.apply(lambda row: [DIFF_COLOUR if row["setting"] in diff else ""] * len(row), axis=1)
    width = max(60, (TABLE_WIDTH - SETTING_WIDTH) // max(len(frame.columns) - 1, 1))
    columns = {name: st.column_config.Column(width=width) for name in frame.columns[1:]}
    st.dataframe(styled, hide_index=True, key="compare_table", height=35 * len(frame) + 38,
                 column_config={"setting": st.column_config.Column(width=SETTING_WIDTH, pinned=True), **columns})
    if diff:
        st.caption("Highlighted: settings that differ — " + ", ".join(diff))


def charts(rows: list[dict]) -> None:
    # one chart under another at the full width: horizontal bars, so each is short and the
    # config names on the y axis stay whole even at 1024 px
    for metric in BAR_METRICS:
        st.plotly_chart(compare.bar_figure(rows, metric), key=f"compare_chart_{metric}")


def names(items: list[str]) -> str:
    """Config names in a Markdown sentence: bold, their own Markdown characters escaped."""
    return ", ".join(f"**{plain_text(n)}**" for n in items)


def measure_all(cfgs: list[ArchConfig], settings: LatencySettings, cancel) -> None:
    """Time every config at `settings`, one after another, with a progress bar and a Cancel button
    (in the slot `cancel`); a config measured at these settings before (under any name) is reused,
    not timed again. Cancel reruns the page, which stops the loop at its next progress update."""
    results = st.session_state.latency_results
    cancel.button("Cancel", key="compare_measure_cancel",
                  help="Stops within the config being timed; the configs measured before it are kept.")
    bar = st.progress(0.0, text="starting…")
    n, t0 = len(cfgs), time.perf_counter()
    measured, reused, failed = [], [], []
    for i, cfg in enumerate(cfgs):
        st.session_state[RUNNING] = (i, n, cfg.name)  # left behind when a rerun stops the loop
        key = measured_key(results, cfg, settings)
        if key is not None:
            remember(results, key, results[key])  # the newest again: the chart shows these settings
            reused.append(cfg.name)
            continue
        text = f"{i + 1} of {n}: timing {cfg.name}…"
        bar.progress(i / n, text=text)
        report = bar_progress(bar, text)
        try:
            measure(cfg, settings, lambda f, i=i: report((i + f) / n), kind="compare")
            measured.append(cfg.name)
        except (ConfigError, timing.LatencyError) as exc:
            failed.append((cfg.name, error_text(exc)))
    del st.session_state[RUNNING]
    bar.empty()
    cancel.empty()
    if measured:
        st.success(f"Measured {names(measured)} in {fmt_ms(1000 * (time.perf_counter() - t0))}.")
    if reused:
        st.info(f"Reused the earlier measurement{'s' * (len(reused) != 1)} of {names(reused)} at these settings.")
    for name, message in failed:
        st.error(f"{names([name])} was not measured: {message}")


THIS_SESSION = "in this session"


def timed_latencies(cfgs: list[ArchConfig]) -> list[tuple[int, timing.LatencyResult, str]]:
    """(config index, latency under the config's name, when and where) per config and device: this
    session's newest measurement, and the newest kept one on every other device (this machine's
    earlier runs and runs imported from others, e.g. a GPU box)."""
    results = st.session_state.latency_results
    timed = []
    for i, cfg in enumerate(cfgs):
        own = latest_latency(results, cfg)
        devices = set()
        if own is not None:
            timed.append((i, replace(own, name=cfg.name), THIS_SESSION))
            devices.add(own.device_name)
        for r, record in kept_latencies(cfg):
            if r.device_name not in devices:
                timed.append((i, replace(r, name=cfg.name), when_where(record)))
                devices.add(r.device_name)
    return timed


def latency_table(timed: list[tuple[int, timing.LatencyResult, str]]) -> None:
    """One row per config and device, the device named, so figures from different machines sit side by side.
    A static table: it wraps long device names and notes instead of scrolling sideways at 1024 px."""
    rows = [{"config": r.name, "device": r.device_name, "batch": r.batch, "dtype": r.dtype,
             "median": fmt_ms(r.median_ms), "p10 – p90": f"{fmt_ms(r.p10_ms)} – {fmt_ms(r.p90_ms)}",
             "throughput": fmt_rate(r.throughput, "img/s"), "measured": note}
            for _i, r, note in sorted(timed, key=lambda t: t[0])]
    st.table(pd.DataFrame(rows).set_index("config"))


def latency(cfgs: list[ArchConfig]) -> list[tuple[int, timing.LatencyResult, str]]:
    """Latency of every compared config at one set of settings (the Latency tab's), its chart and
    its table per device; returns what they show (timed_latencies)."""
    st.markdown("**Latency**")
    settings = settings_widgets()
    results = st.session_state.latency_results
    stopped = st.session_state.pop(RUNNING, None)  # a run cut short by this rerun or an earlier one
    if stopped is not None and st.session_state.get("compare_measure_cancel"):
        i, n, name = stopped
        st.warning(f"Measure all stopped while timing {names([name])} ({i + 1} of {n}): the configs measured "
                   "before it are kept.")
    known = [c.name for c in cfgs if measured_key(results, c, settings) is not None]
    buttons = st.container(horizontal=True)
    if buttons.button("Measure all", type="primary", key="compare_measure_all",
                      help=f"Times each config for about {LATENCY_BUDGET_S:.0f} s at the settings above, one after another"):
        measure_all(cfgs, settings, buttons.empty())
    else:
        where = timing.device_label(settings.device, settings.threads)
        todo = len(cfgs) - len(known)
        text = (f"**Measure all** times {'the other ' if known else ''}{todo} config{'s' * (todo != 1)} on "
                f"{where}, about {LATENCY_BUDGET_S:.0f} s each" if todo else "Every config is measured at these settings")
        if known:
            text += f"; {names(known)} {'was' if len(known) == 1 else 'were'} measured at these settings and " \
                    f"{'is' if len(known) == 1 else 'are'} reused"
        st.caption(text + ".")
    timed = timed_latencies(cfgs)
    if timed:
        st.plotly_chart(compare.bar_figure([r for _i, r, _note in timed], "median_ms"), key="compare_chart_latency")
        latency_table(timed)
    return timed


def downloads(slot, cfgs: list[ArchConfig], rows: list[dict], timed: list[tuple[int, timing.LatencyResult, str]]) -> None:
    """The table's CSV and JSON, with the latency of each config on each device it was measured on."""
    by_config: dict[int, list[timing.LatencyResult]] = {}
    for i, r, _note in timed:
        by_config.setdefault(i, []).append(r)
    full = compare.with_latency(cfgs, rows, by_config)
    d1, d2 = slot.columns(2)
    d1.download_button("Download CSV", compare.to_csv_bytes(full), file_name="comparison.csv", mime="text/csv",
                       key="compare_csv", on_click="ignore")
    d2.download_button("Download JSON", compare.to_json_bytes(full), file_name="comparison.json",
                       mime="application/json", key="compare_json", on_click="ignore")


def side_by_side(figures: list[tuple[str, Callable[[], str]]], height: int | None) -> None:
    """SVG figures (caption, maker) side by side at one readable scale, wrapping onto more rows
    where the page is narrow, so a layer is drawn as large in each. Frames scroll beyond `height` (None: whole)."""
    shown = []
    for caption, make in figures:
        try:
            shown.append((caption, make()))
        except diagram.GraphvizMissing as exc:
            st.error(error_text(exc))
    figure_row(shown, height)


def units(cfgs: list[ArchConfig]) -> None:
    st.markdown("**Units side by side** (first unit with a projection, else the first unit), at one scale")
    # one unit is short: each frame is as tall as its figure, so none cuts the caption under it
    side_by_side([(c.name, lambda c=c: unit_figure_svg(c, None)) for c in cfgs], height=None)


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
        rows = [{"unit": c.unit, "kind": c.kind, "params": f"{c.params:+,}", "MACs": f"{c.macs:+,}",
                 "change": c.change} for c in changes]
        st.dataframe(rows, hide_index=True, key="diff_table", row_height=WRAP_ROW_HEIGHT,
                     column_config={k: st.column_config.Column(width=w) for k, w in DIFF_WIDTHS.items()})
        st.caption(f"From A to B: {diff.count_line(changes)}; {diff.total_line(a, b)}. "
                   "Changed units are outlined in both diagrams.")
        st.download_button("Download the diff (JSON)", json.dumps(diff.diff_document(a, b, changes), indent=2,
                                                                  ensure_ascii=False),
                           file_name=f"diff_{file_stem(a.name)}_{file_stem(b.name)}.json", mime="application/json",
                           key="diff_download", on_click="ignore")
    def outlined(c: ArchConfig, side: str) -> str:
        return highlighted_units_svg(c, tuple(sorted(diff.highlights(changes, c, side).items())))

    side_by_side([(f"{side.upper()}: {c.name}", lambda c=c, side=side: outlined(c, side))
                  for c, side in ((a, "a"), (b, "b"))], height=720)


def draw(cfg: ArchConfig, summary: dict) -> None:
    entries = st.session_state.compare
    name = distinct_name(cfg, {e["name"] for e in entries})  # the name it will be added under
    st.button(f"Add current config ({name})", on_click=on_add, args=(cfg,), type="primary",
              key="compare_add", disabled=len(entries) >= MAX_COMPARE)
    if st.session_state.get("compare_msg"):
        st.error(plain_lines(st.session_state.compare_msg))
    if not entries:
        st.info(f"Add up to {MAX_COMPARE} configs to compare them side by side.")
        return
    cfgs = configs_of(entries)
    entry_widgets(cfgs)
    rows = compare_rows(tuple(cfgs))
    table(rows, cfgs)
    slot = st.container()  # the table's own downloads, under it, once the latency below is known
    charts(rows)
    downloads(slot, cfgs, rows, latency(cfgs))
    units(cfgs)
    if len(cfgs) > 1:
        diff_view(cfgs)
    else:
        st.caption("Add a second config to diff two variants unit by unit.")
