"""Summary tab: counts, published figures, per-stage table, where the parameters are, torchinfo."""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from explorer import ArchConfig
from explorer.app.cache import costs_of, layer_table_of
from explorer.app.text import fmt_shape, published_figure, safe_name


def published_rows(s: dict) -> list[dict]:
    """This model's figures beside the published ones of the preset it is."""
    p = s["published"]
    gmacs = s["macs"] / 1e9
    rows = [{"figure": "parameters", "published": published_figure(p["params"]), "this model": f"{s['params']:,}"},
            {"figure": "GMACs", "published": published_figure(p["gmacs"]),
             "this model": f"{gmacs:.4f}" if gmacs < 1 else f"{gmacs:.3f}"}]
    if p["error"] is not None:
        rows.append({"figure": p["error_metric"], "published": published_figure(p["error"]),
                     "this model": "not trained here (see the Lab tab)"})
    return rows


def metrics(s: dict, c: dict) -> None:
    m = st.columns(6)
    m[0].metric("Parameters", f"{s['params'] / 1e6:.3f} M", help=f"{s['params']:,}")
    m[1].metric("MACs", f"{s['macs'] / 1e9:.3f} G", help=f"{s['macs']:,} multiply-adds at "
                f"{fmt_shape(s['input_shape'][1:])}, batch 1 (conv + fc)")
    m[2].metric("Depth", f"{s['depth']} layers", help="weight layers on the main path: convs + fc")
    m[3].metric("Shortcuts", f"{s['residual_units']}",
                help=", ".join(f"{v} {k}" for k, v in s["shortcuts"].items()))
    m[4].metric("Activation memory", f"{c['activation_bytes'] / 2**20:.1f} MiB",
                help="fp32, batch 1: all tensors one forward pass produces")
    m[5].metric("Receptive field", f"{c['receptive_field'][-1]['receptive_field']} px",
                help="of one output unit of the last stage, in input pixels")


def draw(cfg: ArchConfig, s: dict) -> None:
    c = costs_of(cfg, 1)
    metrics(s, c)
    if s["published"]:
        p = s["published"]
        st.markdown(f"**Published ({p['preset']})** — {p['source']}")
        st.dataframe(pd.DataFrame(published_rows(s)), hide_index=True, key="published_table")
    left, right = st.columns(2)
    with left:
        st.markdown("**Stages**")
        stages = pd.DataFrame(s["stages"])
        stages["out_shape"] = stages["out_shape"].map(fmt_shape)
        rf = {r["name"]: r["receptive_field"] for r in c["receptive_field"]}
        stages["receptive_field"] = stages["name"].map(rf)
        st.dataframe(stages, hide_index=True, key="stages_table")
    with right:
        st.markdown("**Where the parameters are**")
        st.dataframe(pd.DataFrame([
            {"part": "stem", "params": s["stem_params"]},
            *({"part": stage["name"], "params": stage["params"]} for stage in s["stages"]),
            {"part": "head (fc)", "params": s["head_params"]},
            {"part": "of which projections", "params": s["projection_params"]},
        ]), hide_index=True, key="params_table")
    for warning in s["warnings"]:
        st.warning(warning)
    with st.expander("Per-layer table (torchinfo)"):
        st.code(layer_table_of(cfg), language=None)
    st.download_button("Download summary JSON", json.dumps(s, indent=2), file_name=f"{safe_name(cfg)}_summary.json",
                       mime="application/json", key="download_summary")
