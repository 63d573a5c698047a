"""Summary tab: counts, published figures, per-stage table, where the parameters are, torchinfo."""
from __future__ import annotations

from dataclasses import replace

import json
import re

import pandas as pd
import streamlit as st

from explorer import ArchConfig
from explorer.arch.presets import named_for_changes
from explorer.app.cache import costs_of, layer_table_of
from explorer.app.display import metric_row
from explorer.app.text import published_figure, safe_name
from explorer.facts.results import Costs, Summary
from explorer.labels import fmt_bytes, fmt_count, fmt_num, fmt_shape


def published_rows(s: Summary) -> list[dict]:
    """This model's figures beside the published ones of the preset it is."""
    p = s.published.info
    gmacs = s.macs / 1e9
    rows = [{"figure": "parameters", "published": published_figure(p.params), "this model": fmt_count(s.params)},
            {"figure": "GMACs", "published": published_figure(p.gmacs),
             "this model": f"{gmacs:.4f}" if gmacs < 1 else f"{gmacs:.3f}"}]
    if p.error is not None:
        rows.append({"figure": p.error_metric, "published": published_figure(p.error),
                     "this model": "not trained here (see the Lab tab)"})
    return rows


def metric_values(s: Summary, c: Costs) -> list[tuple[str, str, str]]:
    """(label, short value, help with the full figure) of each headline metric."""
    return [
        ("Parameters", fmt_count(s.params, short=True), f"{fmt_count(s.params)} parameters"),
        ("MACs", fmt_count(s.macs, short=True),
         f"{fmt_count(s.macs)} multiply-adds at {fmt_shape(s.input_shape[1:])}, batch 1 (conv + fc)"),
        ("Weight layers", f"{s.depth}", "depth: weight layers on the main path, convs + fc"),
        ("Shortcuts", f"{s.residual_units}",
         f"{s.shortcuts.identity} identity, {s.shortcuts.zero_pad} zero_pad, {s.shortcuts.projection} projection"),
        ("Activations", fmt_bytes(c.activation_bytes),
         f"activation memory, fp32, batch 1: all tensors one forward pass produces "
         f"({fmt_count(c.activation_bytes)} bytes)"),
        ("Receptive field", f"{c.receptive_field[-1].receptive_field} px",
         "of one output unit of the last stage, in input pixels"),
    ]


def stages_frame(s: Summary, c: Costs) -> pd.DataFrame:
    rf = {r.name: r.receptive_field for r in c.receptive_field}
    return pd.DataFrame([{"stage": stage.name, "units": stage.units, "params": fmt_count(stage.params),
                          "MACs": fmt_count(stage.macs), "out shape": fmt_shape(stage.out_shape),
                          "receptive field": rf.get(stage.name)} for stage in s.stages])


def params_frame(s: Summary) -> pd.DataFrame:
    total = max(s.params, 1)
    parts = [("stem", s.stem_params), *((stage.name, stage.params) for stage in s.stages),
             ("head (fc)", s.head_params), ("of which projections", s.projection_params)]
    return pd.DataFrame([{"part": part, "params": fmt_count(n), "share %": fmt_num(100 * n / total)}
                         for part, n in parts])


# px: 518 fit in the expander at 1024 px beside the sidebar
LAYER_COLUMNS = {"layer": 220, "output shape": 110, "params": 84, "mult-adds": 104}
TORCHINFO_HEADERS = ("Output Shape", "Param #", "Mult-Adds")
# torchinfo names its multiply-add scale after byte units ("Units.GIGABYTES"): the count it means
TORCHINFO_UNITS = {"KILOBYTES": "thousands", "MEGABYTES": "millions", "GIGABYTES": "billions",
                   "TERABYTES": "trillions", "NONE": "total"}


def layer_frame(text: str) -> tuple[pd.DataFrame, list[str]]:
    """torchinfo's text table as rows (its tree drawn narrower) and the lines under it (totals)."""
    lines = [line for line in text.splitlines() if line.strip()]
    rules = [i for i, line in enumerate(lines) if set(line.strip()) == {"="}]
    header, body = lines[rules[0] + 1], lines[rules[1] + 1:rules[2]]
    cuts = [0, *(header.index(h) for h in TORCHINFO_HEADERS), None]
    rows = []
    for line in body:
        cells = [line[a:b].strip() for a, b in zip(cuts, cuts[1:])]
        cells[0] = cells[0].replace("│    ", "│ ")  # the tree's indent at a fifth of its width
        rows.append(dict(zip(LAYER_COLUMNS, cells)))
    totals = [re.sub(r"\(Units\.(\w+)\)", lambda m: f"({TORCHINFO_UNITS.get(m.group(1), m.group(1).lower())})", line)
              for line in lines[rules[2] + 1:] if set(line.strip()) != {"="}]
    return pd.DataFrame(rows), totals


def draw(cfg: ArchConfig, s: Summary) -> None:
    c = costs_of(cfg, 1)
    metric_row(metric_values(s, c), key="summary_metrics")
    if s.published:
        st.markdown(f"**Published ({s.published.preset})** — {s.published.info.source}")
        st.table(pd.DataFrame(published_rows(s)).set_index("figure"))
    # Side by side where the page is wide enough, one under the other where it is not (1024 px).
    with st.container(horizontal=True, gap="large", key="summary_tables"):
        with st.container(width="content"):
            st.markdown("**Stages**")
            st.table(stages_frame(s, c).set_index("stage"), width="content")
        with st.container(width="content"):
            st.markdown("**Where the parameters are**")
            st.table(params_frame(s).set_index("part"), width="content")
    for warning in s.warnings:
        st.warning(warning)
    with st.expander("Per-layer table (torchinfo)"):
        frame, totals = layer_frame(layer_table_of(cfg))
        st.dataframe(frame, hide_index=True, key="torchinfo_table",
                     column_config={k: st.column_config.Column(width=w) for k, w in LAYER_COLUMNS.items()})
        st.caption(" · ".join(totals))
    named = replace(s, config=named_for_changes(cfg))  # the file says what network it is: "resnet50 (skip_span 1)"
    st.download_button("Download summary JSON", json.dumps(named.to_dict(), indent=2),
                       file_name=f"{safe_name(cfg)}_summary.json", mime="application/json",
                       key="download_summary", on_click="ignore")
