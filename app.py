"""ResNet Explorer: Streamlit UI. Widgets -> ArchConfig -> explorer calls -> display."""
import pandas as pd
import streamlit as st

import explorer
from explorer.analysis import measure_summary

st.set_page_config(page_title="ResNet Explorer", layout="wide")


@st.cache_data(max_entries=64, show_spinner=False)
def summary_of(cfg: explorer.ArchConfig) -> dict:
    return measure_summary(cfg)


st.title("ResNet Explorer")
name = st.sidebar.selectbox("Preset", list(explorer.PRESETS), index=list(explorer.PRESETS).index("resnet50"),
                            key="preset")
cfg = explorer.preset(name)
s = summary_of(cfg)

cols = st.columns(4)
cols[0].metric("Parameters", f"{s['params'] / 1e6:.2f} M")
cols[1].metric("MACs", f"{s['macs'] / 1e9:.3f} G")
cols[2].metric("Depth (weight layers)", s["depth"])
cols[3].metric("Projections", s["shortcuts"]["projection"])
if s["published"]:
    p = s["published"]
    st.caption(f"Source: {p['source']}" + (f" · published {p['error_metric']}: {p['error']}" if p["error"] else ""))

st.subheader("Stages")
st.dataframe(pd.DataFrame(s["stages"]), hide_index=True, key="stages_table")
st.subheader("Shape checks per residual unit")
if s["units"]:
    units = pd.DataFrame(s["units"])
    units["in_shape"] = units["in_shape"].map(lambda v: "x".join(map(str, v)))
    units["out_shape"] = units["out_shape"].map(lambda v: "x".join(map(str, v)))
    st.dataframe(units[["name", "layers", "in_shape", "out_shape", "shortcut", "shortcut_params", "reason"]],
                 hide_index=True, key="units_table")
else:
    st.info("A plain network (skip_span 0): no shortcuts, nothing is added back.")
for warning in s["warnings"]:
    st.warning(warning)
