"""ResNet Explorer: Streamlit UI. Widgets -> ArchConfig -> explorer calls -> display.

Everything shown is computed by `explorer` from the one model builder; this script only wires
widgets to it. Widget keys: `cfg_<config key>` for the settings, `view` for the tabs.
"""
from __future__ import annotations

import base64
import json
import os

import pandas as pd
import plotly.express as px
import streamlit as st

import explorer
from explorer import ArchConfig, ConfigError, compare, lab
from explorer import lessons as learn
from explorer.diagram import graph
from explorer.facts import costs as cost, limits, summary as analysis
from explorer.timing import latency
from explorer.arch.config import INT_BOUNDS, MAX_SPAN, choices, field_names, format_int_list, parse_int_list

st.set_page_config(page_title="ResNet Explorer", page_icon="🧱", layout="wide")

DEFAULT_PRESET = "resnet50"
MAX_COMPARE = 6
MAX_UPLOAD_BYTES = 64 * 1024
LIST_KEYS = ("depths", "widths")
W = "cfg_"  # widget key prefix of the config settings
CACHE_TTL_S = 3600  # shared caches are bounded in entries and age, so memory returns after use
MAX_RESULTS = 20    # latency / lab results kept per session


def remember(store: dict, key, value) -> None:
    """Keep a result in a per-session store, dropping the oldest beyond MAX_RESULTS."""
    store.pop(key, None)
    store[key] = value
    while len(store) > MAX_RESULTS:
        store.pop(next(iter(store)))


# -- cached computations (shared by all sessions; nothing here is mutated) ------------------
@st.cache_data(max_entries=128, ttl=CACHE_TTL_S, show_spinner=False)
def summary_of(cfg: ArchConfig) -> dict:
    return analysis.measure_summary(cfg)


@st.cache_data(max_entries=128, ttl=CACHE_TTL_S, show_spinner=False)
def costs_of(cfg: ArchConfig, batch: int = 1) -> dict:
    return cost.measure_costs(cfg, batch)


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def layer_table_of(cfg: ArchConfig) -> str:
    return analysis.layer_table(cfg)


@st.cache_data(max_entries=64, ttl=CACHE_TTL_S, show_spinner="Laying out the diagram…")
def diagram_svg(cfg: ArchConfig, detail: str, direction: str, shapes: bool, fold: bool) -> str:
    return graph.to_bytes(graph.build_graph(cfg, detail, direction, shapes, fold), "svg").decode()


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def diagram_bytes(cfg: ArchConfig, detail: str, direction: str, shapes: bool, fold: bool, fmt: str) -> bytes:
    return graph.to_bytes(graph.build_graph(cfg, detail, direction, shapes, fold), fmt)


@st.cache_data(max_entries=64, ttl=CACHE_TTL_S, show_spinner=False)
def unit_figure_svg(cfg: ArchConfig, unit: str | None, direction: str = "TB") -> str:
    return graph.to_bytes(graph.build_unit_figure(cfg, unit, direction), "svg").decode()


@st.cache_data(max_entries=64, ttl=CACHE_TTL_S, show_spinner=False)
def unit_equation(cfg: ArchConfig, unit: str | None) -> str:
    return graph.equation(cfg, unit)


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def compare_rows(cfgs: tuple[ArchConfig, ...]) -> list[dict]:
    return compare.compare_table(list(cfgs))


# -- settings <-> widgets ------------------------------------------------------------------
def to_widgets(cfg: ArchConfig) -> None:
    """Put a config into the settings widgets (before they are drawn)."""
    for key, value in cfg.to_dict().items():
        st.session_state[W + key] = format_int_list(value) if key in LIST_KEYS else value
    st.session_state["unit_variant"] = learn.unit_variant_of(cfg.bn_position, cfg.relu_position) or "custom"


def from_widgets() -> ArchConfig:
    """The config the widgets describe; raises ConfigError naming the widget's key."""
    data = {}
    for key in field_names():
        value = st.session_state.get(W + key)
        data[key] = parse_int_list(key, value) if key in LIST_KEYS else value
    cfg = ArchConfig.from_dict(data)
    limits.check_limits(cfg)  # the server's size limits, applied where work starts
    return cfg


def on_preset() -> None:
    to_widgets(explorer.preset(st.session_state.preset))


def on_unit_variant() -> None:
    v = learn.UNIT_VARIANTS.get(st.session_state.unit_variant)
    if v is not None:
        st.session_state[W + "bn_position"] = v.bn_position
        st.session_state[W + "relu_position"] = v.relu_position


def on_position() -> None:
    st.session_state["unit_variant"] = learn.unit_variant_of(
        st.session_state[W + "bn_position"], st.session_state[W + "relu_position"]) or "custom"


def apply_lesson(lesson: learn.Lesson) -> None:
    cfg = explorer.preset(lesson.preset)
    if lesson.changes:
        cfg = cfg.replace(**lesson.changes, name=f"{cfg.name}_{lesson.key}")
    st.session_state.preset = lesson.preset
    to_widgets(cfg)
    st.session_state.view = lesson.look_at


def apply_uploaded() -> None:
    upload = st.session_state.get("upload_config")
    if upload is None:
        return
    try:
        if upload.size > MAX_UPLOAD_BYTES:
            raise ConfigError("file", upload.name, f"a JSON config of at most {MAX_UPLOAD_BYTES // 1024} KiB")
        to_widgets(ArchConfig.from_json(upload.getvalue()))
        st.session_state.upload_error = None
    except ConfigError as exc:
        st.session_state.upload_error = str(exc)


def init_state() -> None:
    """First run of a session: the config comes from the URL if it has one, else the default preset."""
    if st.session_state.get("initialised"):
        return
    st.session_state.initialised = True
    st.session_state.compare = []
    st.session_state.latency_results = {}
    st.session_state.lab_results = {}
    params = {k: st.query_params[k] for k in st.query_params}
    st.session_state.url_error = None
    cfg = base = explorer.preset(DEFAULT_PRESET)
    try:
        # ?preset=NAME starts from a preset; any config key in the link overrides it.
        if "preset" in params:
            base = cfg = explorer.preset(params.pop("preset"))
        if params:
            cfg = ArchConfig.from_query(params, base=base)
    except ConfigError as exc:
        st.session_state.url_error = f"The link's settings were not used: {exc}"
    st.session_state.preset = base.name if base.name in explorer.PRESETS else DEFAULT_PRESET
    to_widgets(cfg)


def settings_sidebar() -> dict[str, st.delta_generator.DeltaGenerator]:
    """Draw every setting; returns a message slot per config key (errors show next to their widget)."""
    sb = st.sidebar
    slots = {}
    sb.title("ResNet Explorer")
    sb.selectbox("Preset", list(explorer.PRESETS), key="preset", on_change=on_preset,
                 help="Start from a published network; every knob below stays live.")
    sb.selectbox("Unit variant (He et al. 2016, Fig. 4)", [*learn.UNIT_VARIANTS, "custom"], key="unit_variant",
                 format_func=lambda k: learn.UNIT_VARIANTS[k].label if k in learn.UNIT_VARIANTS else "custom",
                 on_change=on_unit_variant, help="Sets the BN and ReLU positions together.")

    def slot(key: str) -> None:
        slots[key] = sb.empty()

    sb.text_input("Name", key=W + "name", max_chars=200)
    slot("name")
    sb.subheader("Blocks and shortcuts")
    sb.selectbox("Block", choices("block"), key=W + "block",
                 help="basic = [3x3, 3x3]; bottleneck = [1x1 reduce, 3x3, 1x1 expand x4]")
    slot("block")
    sb.number_input("Skip span (weight layers per shortcut)", min_value=0, max_value=MAX_SPAN, step=1,
                    value=None, key=W + "skip_span", placeholder="block length",
                    help="Empty = the block's own length (2 basic, 3 bottleneck); 0 = plain network.")
    slot("skip_span")
    sb.selectbox("BatchNorm position", choices("bn_position"), key=W + "bn_position", on_change=on_position)
    slot("bn_position")
    sb.selectbox("ReLU position", choices("relu_position"), key=W + "relu_position", on_change=on_position)
    slot("relu_position")
    sb.selectbox("Shortcut option", choices("shortcut"), key=W + "shortcut",
                 help="A: identity, zero-padded channels (no parameters); B: 1x1 projection where the shape "
                      "changes; C: projection on every shortcut.")
    slot("shortcut")
    sb.selectbox("Stride on", choices("stride_on"), key=W + "stride_on",
                 help="3x3 = torchvision v1.5; first = the paper's first conv of the stage.")
    slot("stride_on")
    sb.subheader("Stages")
    sb.text_input("Depths (blocks per stage)", key=W + "depths", help="e.g. 3, 4, 6, 3")
    slot("depths")
    sb.text_input("Widths (per stage)", key=W + "widths", help="e.g. 64, 128, 256, 512")
    slot("widths")
    c1, c2 = sb.columns(2)
    c1.number_input("Groups", min_value=1, max_value=INT_BOUNDS["groups"][1], key=W + "groups")
    c2.number_input("Width per group", min_value=1, max_value=INT_BOUNDS["width_per_group"][1],
                    key=W + "width_per_group")
    slot("groups")
    slot("width_per_group")
    sb.subheader("Stem, input, head")
    sb.selectbox("Stem", choices("stem"), key=W + "stem",
                 help="imagenet: 7x7/2 conv + 3x3/2 max-pool; cifar: one 3x3/1 conv")
    slot("stem")
    c1, c2 = sb.columns(2)
    c1.number_input("Stem width", min_value=1, max_value=INT_BOUNDS["stem_width"][1], key=W + "stem_width")
    c2.number_input("Input size", min_value=1, max_value=INT_BOUNDS["input_size"][1], key=W + "input_size")
    slot("stem_width")
    slot("input_size")
    c1, c2 = sb.columns(2)
    c1.number_input("In channels", min_value=1, max_value=INT_BOUNDS["in_channels"][1], key=W + "in_channels")
    c2.number_input("Classes", min_value=1, max_value=INT_BOUNDS["num_classes"][1], key=W + "num_classes")
    slot("in_channels")
    slot("num_classes")
    sb.checkbox("Zero-init last BN of each branch", key=W + "zero_init_residual")
    slot("zero_init_residual")
    slot("config")
    return slots


def config_io(cfg: ArchConfig) -> None:
    with st.sidebar.expander("Import / export config"):
        st.download_button("Download config JSON", cfg.to_json(), file_name=f"{safe_name(cfg)}.json",
                           mime="application/json", key="download_config")
        st.file_uploader("Load a config JSON", type=["json"], key="upload_config", on_change=apply_uploaded,
                         max_upload_size=1)
        if st.session_state.get("upload_error"):
            st.error(st.session_state.upload_error)
        st.caption("The page address holds the settings: copy it to share this view.")


def safe_name(cfg: ArchConfig) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in cfg.name)
    return keep.strip("._") or "resnet"


def current_config(slots) -> tuple[ArchConfig, bool]:
    """The config to show: the widgets' if valid, else the last valid one (and the error by its widget)."""
    try:
        cfg = from_widgets()
    except ConfigError as exc:
        where = slots.get(exc.key, slots["config"])
        where.error(str(exc), icon="⚠️")
        return st.session_state.last_good, False
    st.session_state.last_good = cfg
    st.query_params.from_dict(cfg.to_query())
    return cfg, True


# -- views ---------------------------------------------------------------------------------
def plain_text(text: str) -> str:
    """User text shown through Markdown: every Markdown/HTML character escaped, one line."""
    text = " ".join(text.split())
    return "".join("\\" + ch if ch in "\\`*_{}[]()#+-.!|<>~&:$" else ch for ch in text)


def fmt_shape(shape) -> str:
    return "x".join(str(s) for s in shape)


def show_svg(svg: str, height: int, fit: bool = False) -> None:
    """An SVG in a scrolling frame, at natural size or fitted to the width (as an <img>: nothing in it runs)."""
    data = base64.b64encode(svg.encode()).decode()
    size = "max-width:100%" if fit else "max-width:none"
    with st.container(height=height, border=True):
        st.html(f'<div class="diagram" style="overflow-x:auto;width:100%;max-width:100%">'
                f'<img alt="diagram" style="{size}" src="data:image/svg+xml;base64,{data}"></div>')


def view_diagram(cfg: ArchConfig) -> None:
    c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
    detail = c1.radio("Detail", graph.DETAILS, index=1, horizontal=True, key="diagram_detail")
    direction = c2.radio("Direction", graph.DIRECTIONS, horizontal=True, key="diagram_direction",
                         format_func={"TB": "top-down", "LR": "left-right"}.get)
    shapes = c3.toggle("Shapes on edges", value=True, key="diagram_shapes")
    fit = c3.toggle("Fit to width", value=False, key="diagram_fit")
    fold = c4.toggle("Fold BN/ReLU", value=False, key="diagram_fold", disabled=detail != "layers",
                     help="At layer detail, draw BN and ReLU inside their conv")
    try:
        svg = diagram_svg(cfg, detail, direction, shapes, fold)
    except graph.GraphvizMissing as exc:
        st.error(str(exc))
        st.download_button("Download DOT", diagram_bytes(cfg, detail, direction, shapes, fold, "dot"),
                           file_name=f"{safe_name(cfg)}_{detail}.dot", key="download_dot")
        return
    show_svg(svg, height=760, fit=fit)
    st.caption("Blue dashed arcs: identity shortcuts · orange: zero-padding (option A) · red: 1x1 projections.")
    cols = st.columns(4)
    for col, fmt, mime in zip(cols, graph.FORMATS, ["text/vnd.graphviz", "image/svg+xml", "image/png",
                                                     "application/pdf"]):
        col.download_button(
            f"Download {fmt.upper()}",
            data=(lambda f=fmt: diagram_bytes(cfg, detail, direction, shapes, fold, f)),
            file_name=f"{safe_name(cfg)}_{detail}.{fmt}", mime=mime, key=f"download_{fmt}",
            use_container_width=True,
        )
    scale = graph.png_scale(svg)
    if scale < 1.0:
        st.caption(f"The PNG is shrunk to {scale:.0%} of {graph.PNG_DPI} dpi: a bitmap can be at most "
                   f"{graph.PNG_MAX_PX:,} pixels on a side. SVG and PDF keep this diagram at full size.")


def units_frame(units: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(units)
    df["in_shape"] = df["in_shape"].map(fmt_shape)
    df["out_shape"] = df["out_shape"].map(fmt_shape)
    return df[["name", "layers", "in_shape", "out_shape", "shortcut", "shortcut_params", "shortcut_macs",
               "reason"]]


def highlight_projection(row: pd.Series) -> list[str]:
    colour = {"projection": "background-color: #f9d6d2", "zero_pad": "background-color: #fde9d0"}
    return [colour.get(row["shortcut"], "")] * len(row)


def view_unit(cfg: ArchConfig, s: dict) -> None:
    if not s["units"]:
        st.info("A plain network (skip span 0): nothing is added back. The figure shows one plain block.")
    names = [u["name"] for u in s["units"]] or [None]
    default = next((u["name"] for u in s["units"] if u["shortcut"] != "identity"), names[0])
    if st.session_state.get("unit_pick") not in names:
        st.session_state.unit_pick = default
    left, right = st.columns([2, 3])
    with left:
        unit = st.selectbox("Unit", names, key="unit_pick", format_func=lambda n: n or "first block")
        st.markdown(f"**{unit_equation(cfg, unit)}**")
        try:
            show_svg(unit_figure_svg(cfg, unit), height=640, fit=True)
        except graph.GraphvizMissing as exc:
            st.error(str(exc))
    with right:
        st.markdown(
            "**x** is the unit's input feature map (`in_shape`); **F(x)** its stacked weight layers "
            "(`out_shape`). They are added element-wise, so their shapes must match: where they do not, "
            "the shortcut pads (option A) or projects with a 1x1 conv W_s (options B/C)."
        )
        if s["units"]:
            proj = s["shortcuts"]["projection"]
            m1, m2, m3 = st.columns(3)
            m1.metric("Residual units", s["residual_units"])
            m2.metric("Projections", proj)
            m3.metric("Projection params", f"{s['projection_params']:,}",
                      help=f"{100 * s['projection_params'] / max(s['params'], 1):.1f} % of all parameters")
            st.dataframe(units_frame(s["units"]).style.apply(highlight_projection, axis=1), hide_index=True,
                         height=min(560, 35 * (len(s["units"]) + 1) + 3), key="units_table")
        for warning in s["warnings"]:
            st.warning(warning)


def _num(value) -> str:
    """A published figure as text ('—' where the source gives none)."""
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def view_summary(cfg: ArchConfig, s: dict) -> None:
    c = costs_of(cfg, 1)
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
    if s["published"]:
        p = s["published"]
        gmacs = s["macs"] / 1e9
        rows = [{"figure": "parameters", "published": _num(p["params"]), "this model": f"{s['params']:,}"},
                {"figure": "GMACs", "published": _num(p["gmacs"]),
                 "this model": f"{gmacs:.4f}" if gmacs < 1 else f"{gmacs:.3f}"}]
        if p["error"] is not None:
            rows.append({"figure": p["error_metric"], "published": _num(p["error"]),
                         "this model": "not trained here (see the Lab tab)"})
        st.markdown(f"**Published ({p['preset']})** — {p['source']}")
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="published_table")
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
            *({"part": st_["name"], "params": st_["params"]} for st_ in s["stages"]),
            {"part": "head (fc)", "params": s["head_params"]},
            {"part": "of which projections", "params": s["projection_params"]},
        ]), hide_index=True, key="params_table")
    for warning in s["warnings"]:
        st.warning(warning)
    with st.expander("Per-layer table (torchinfo)"):
        st.code(layer_table_of(cfg), language=None)
    st.download_button("Download summary JSON", json.dumps(s, indent=2), file_name=f"{safe_name(cfg)}_summary.json",
                       mime="application/json", key="download_summary")


def view_latency(cfg: ArchConfig) -> None:
    devices = latency.available_devices()
    c1, c2, c3, c4, c5 = st.columns([2, 1, 1, 1, 1])
    device = c1.selectbox("Device", devices, key="lat_device", format_func=latency.device_label)
    batch = c2.number_input("Batch", min_value=1, max_value=4096, value=1, key="lat_batch")
    dtype = c3.selectbox("dtype", list(latency.DTYPES), key="lat_dtype",
                         help="bf16 on CPU where supported; fp16 needs a GPU")
    channels_last = c4.toggle("channels_last", key="lat_channels_last")
    compiled = c5.toggle("torch.compile", key="lat_compile", help="compile time is reported apart")
    threads = None
    if device == "cpu":
        threads = st.selectbox("CPU threads", [None, *range(1, (os.cpu_count() or 1) + 1)], key="lat_threads",
                               format_func=lambda n: "torch default" if n is None else str(n),
                               help="One thread gives steadier figures on a busy machine.")
    settings = dict(device=device, batch=int(batch), dtype=dtype, channels_last=channels_last, compile=compiled,
                    threads=threads)
    key = (cfg, tuple(sorted(settings.items())))
    results = st.session_state.latency_results
    b1, b2 = st.columns(2)
    if b1.button("Measure latency", type="primary", key="lat_run"):
        bar = st.progress(0.0, text="warming up…")
        try:
            remember(results, key, latency.measure_latency(
                cfg, budget_s=3.0, progress=lambda f: bar.progress(min(max(f, 0.0), 1.0), text="timing…"),
                **settings).to_dict())
        except (ConfigError, latency.LatencyError) as exc:
            st.error(str(exc))
        bar.empty()
    if b2.button("Batch sweep", key="lat_sweep"):
        bar = st.progress(0.0, text="sweeping batch sizes…")
        try:
            sweep = latency.batch_sweep(cfg, device=device, dtype=dtype, channels_last=channels_last,
                                        threads=threads, progress=lambda f: bar.progress(min(max(f, 0.0), 1.0)))
            remember(results, ("sweep",) + key, [dict(r) for r in sweep.rows])
        except (ConfigError, latency.LatencyError) as exc:
            st.error(str(exc))
        bar.empty()
    r = results.get(key)
    if r is None:
        st.info(f"Press **Measure latency** to time `{cfg.name}` on {latency.device_label(device)}.")
    else:
        st.caption(f"Measured on **{r['device_name']}** · torch {r['torch_version']} · {r['threads']} thread{'s' * (r['threads'] != 1)} · "
                   f"{r['samples']} samples · input {fmt_shape(r['input_shape'])} · {r['dtype']}")
        m = st.columns(4)
        m[0].metric("Median", f"{r['median_ms']:.3g} ms")
        m[1].metric("p10 – p90", f"{r['p10_ms']:.3g}–{r['p90_ms']:.3g} ms")
        m[2].metric("Throughput", f"{r['throughput']:,.0f} img/s")
        m[3].metric("Batch", r["batch"], help=f"requested {r['requested_batch']}")
        if r["compile_s"] is not None:
            st.caption(f"torch.compile took {r['compile_s']:.1f} s (not included above).")
        if r["noisy"]:
            st.warning("The measurement was noisy (IQR above 20 % of the median): other work on this machine "
                       "may have disturbed it. Measure again for a steadier figure.")
        for w in r["warnings"]:
            st.warning(w)
    rows = results.get(("sweep",) + key)
    if rows:
        st.plotly_chart(compare.sweep_figure(rows), key="sweep_chart")


def add_to_compare(cfg: ArchConfig) -> None:
    entries = st.session_state.compare
    if len(entries) >= MAX_COMPARE:
        st.session_state.compare_msg = f"The comparison holds at most {MAX_COMPARE} configs: remove one first."
        return
    entries.append(cfg.to_dict())
    st.session_state.compare_msg = None


def remove_from_compare(i: int) -> None:
    st.session_state.compare.pop(i)


def rename_in_compare(i: int) -> None:
    text = st.session_state.get(f"compare_name_{i}", "").strip()
    entries = st.session_state.compare
    try:
        entries[i] = ArchConfig.from_dict({**entries[i], "name": text}).to_dict()
        st.session_state.compare_msg = None
    except ConfigError as exc:
        st.session_state.compare_msg = str(exc)


def view_compare(cfg: ArchConfig) -> None:
    entries = st.session_state.compare
    st.button(f"Add current config ({cfg.name})", on_click=add_to_compare, args=(cfg,), type="primary",
              key="compare_add", disabled=len(entries) >= MAX_COMPARE)
    if st.session_state.get("compare_msg"):
        st.error(st.session_state.compare_msg)
    if not entries:
        st.info(f"Add up to {MAX_COMPARE} configs to compare them side by side.")
        return
    cfgs = [ArchConfig.from_dict(e) for e in entries]
    for i, c in enumerate(cfgs):
        a, b = st.columns([4, 1])
        a.text_input(f"Config {i + 1}", value=c.name, key=f"compare_name_{i}", on_change=rename_in_compare,
                     args=(i,), label_visibility="collapsed")
        b.button("Remove", key=f"compare_remove_{i}", on_click=remove_from_compare, args=(i,))
    rows = compare_rows(tuple(cfgs))
    df = compare.to_frame(rows)
    diff = compare.differing_keys(cfgs) if len(cfgs) > 1 else []
    styled = df.style.apply(lambda col: ["background-color: #fff3bf"] * len(col) if col.name in diff else
                            [""] * len(col), axis=0)
    st.dataframe(styled, hide_index=True, key="compare_table")
    if diff:
        st.caption("Highlighted: settings that differ — " + ", ".join(diff))
    cols = st.columns(3)
    for col, metric in zip(cols, ["params", "macs", "activation_bytes"]):
        col.plotly_chart(compare.bar_figure(rows, metric), key=f"compare_chart_{metric}")
    lat_rows = []
    for c in cfgs:  # the latest measurement of each architecture, whatever it was called then
        timed = [r for k, r in st.session_state.latency_results.items()
                 if k[0] != "sweep" and k[0].to_dict() | {"name": c.name} == c.to_dict()]
        if timed:
            lat_rows.append({**timed[-1], "name": c.name})
    if lat_rows:
        st.plotly_chart(compare.bar_figure(lat_rows, "median_ms"), key="compare_chart_latency")
    else:
        st.caption("Latency appears here once configs are measured in the Latency tab.")
    st.markdown("**Units side by side** (first unit with a projection, else the first unit)")
    ucols = st.columns(len(cfgs))
    for col, c in zip(ucols, cfgs):
        with col:
            st.caption(c.name)
            try:
                show_svg(unit_figure_svg(c, None), height=520, fit=True)
            except graph.GraphvizMissing as exc:
                st.error(str(exc))
    d1, d2 = st.columns(2)
    d1.download_button("Download CSV", compare.to_csv_bytes(rows), file_name="comparison.csv", mime="text/csv",
                       key="compare_csv")
    d2.download_button("Download JSON", compare.to_json_bytes(rows), file_name="comparison.json",
                       mime="application/json", key="compare_json")


def view_lab() -> None:
    names = list(lab.EXPERIMENTS)
    exp_name = st.selectbox("Experiment", names, key="lab_experiment",
                            format_func=lambda n: lab.EXPERIMENTS[n].title)
    exp = lab.EXPERIMENTS[exp_name]
    st.markdown(exp.description)
    st.caption(f"Claim tested: {exp.claim} — {exp.source}")
    custom = [ArchConfig.from_dict(e) for e in st.session_state.compare] if exp_name == "custom" else None
    if exp_name == "custom" and not custom:
        st.info("The custom experiment trains the configs of the Compare tab: add some there first.")
        return
    c1, c2 = st.columns(2)
    epochs = c1.number_input("Epochs", min_value=1, max_value=50, value=exp.settings.epochs, key="lab_epochs")
    seed = c2.number_input("Seed", min_value=0, max_value=2**31 - 1, value=exp.settings.seed, key="lab_seed")
    est = lab.estimate_seconds(exp_name, configs=custom, epochs=int(epochs), seed=int(seed))
    limit = limits.Limits.from_env().max_lab_seconds
    st.caption(f"Expected to take about {est:.0f} s on a 2-core CPU (at most {limit} s are allowed; "
               "switching tabs or changing a setting cancels the run).")
    key = (exp_name, int(epochs), int(seed), tuple(custom or ()))
    results = st.session_state.lab_results
    too_long = est > limit
    if too_long:
        st.error(f"This run would take about {est:.0f} s, over the {limit} s limit of this server "
                 "(RESNET_EXPLORER_MAX_LAB_SECONDS): use fewer epochs or smaller networks.")
    if st.button("Start training", type="primary", key="lab_run", disabled=too_long):
        cancel = st.empty()
        cancel.button("Cancel", key="lab_cancel", help="Stops the run; the epochs finished so far are kept.")
        bar = st.progress(0.0, text="preparing…")
        live = st.empty()
        drawn = [0]

        def progress(done, total, epoch, run_name):
            frac = (done + epoch / max(int(epochs), 1)) / max(total, 1)
            bar.progress(min(frac, 1.0), text=f"{run_name}: epoch {epoch}/{int(epochs)}")

        def on_update(partial):
            remember(results, key, partial)  # kept if the run is cancelled
            rows = partial.history_rows()
            if len(rows) > drawn[0]:  # live curves, redrawn once per finished epoch
                drawn[0] = len(rows)
                with live.container():
                    lab_curves(pd.DataFrame(rows), keyed=False)

        try:
            res = lab.run_experiment(exp_name, epochs=int(epochs), seed=int(seed), configs=custom,
                                     progress=progress, on_update=on_update, time_limit_s=limit)
            remember(results, key, res)
            if res.timed_out:
                st.warning(f"Stopped at the {limit} s time limit; the finished runs are shown.")
        except ConfigError as exc:
            st.error(str(exc))
        bar.empty()
        live.empty()
        cancel.empty()
    res = results.get(key)
    if res is None:
        return
    hist = pd.DataFrame(res.history_rows())
    grads = pd.DataFrame(res.grad_norm_rows())
    if not hist.empty:
        lab_curves(hist, keyed=True)
    if not grads.empty:
        st.plotly_chart(px.line(grads, x="layer", y="grad_norm", color="run", log_y=True, markers=True,
                                title="Gradient norm per residual unit at initialisation"), key="lab_grads")
    st.dataframe(pd.DataFrame(res.to_rows()), hide_index=True, key="lab_table")
    d1, d2 = st.columns(2)
    d1.download_button("Download CSV", res.to_csv_bytes(), file_name=f"lab_{exp_name}.csv", mime="text/csv",
                       key="lab_csv")
    d2.download_button("Download JSON", res.to_json_bytes(), file_name=f"lab_{exp_name}.json",
                       mime="application/json", key="lab_json")


def lab_curves(hist: pd.DataFrame, keyed: bool) -> None:
    """Training loss and validation accuracy per epoch, one line per run."""
    a, b = st.columns(2)
    loss = px.line(hist, x="epoch", y="train_loss", color="run", markers=True, title="Training loss")
    acc = px.line(hist, x="epoch", y="val_acc", color="run", markers=True, title="Validation accuracy")
    a.plotly_chart(loss, key="lab_loss" if keyed else None)
    b.plotly_chart(acc, key="lab_acc" if keyed else None)


def view_learn() -> None:
    st.markdown("Each question below is answered by building the real model. **Show me** sets the knobs.")
    for lesson in learn.LESSONS:
        with st.expander(lesson.question, expanded=lesson.key == "two_layers"):
            st.markdown(lesson.answer)
            if lesson.key == "bn_position":
                st.dataframe(pd.DataFrame([
                    {"unit": v.label, "BN": v.bn_position, "ReLU": v.relu_position,
                     "ResNet-110 error %": v.error_110, "ResNet-164 error %": v.error_164}
                    for v in learn.UNIT_VARIANTS.values()]), hide_index=True, key="learn_units_table")
            st.button("Show me", key=f"learn_{lesson.key}", on_click=apply_lesson, args=(lesson,))


# -- page ----------------------------------------------------------------------------------
init_state()
slots = settings_sidebar()
cfg, valid = current_config(slots)
config_io(cfg)
if st.session_state.get("url_error"):
    st.warning(st.session_state.url_error)
if not valid:
    st.info(f"Showing the last valid configuration, `{cfg.name}`, until the setting is fixed.")

summary = summary_of(cfg)
st.subheader(plain_text(cfg.name), anchor=False)
st.caption(f"{summary['params'] / 1e6:.2f} M params · {summary['macs'] / 1e9:.2f} GMACs · "
           f"{summary['depth']} weight layers · skip span {summary['skip_span']} · "
           f"{summary['residual_units']} shortcuts ({summary['shortcuts']['projection']} projections)")
views = {
    "Diagram": lambda: view_diagram(cfg),
    "Unit": lambda: view_unit(cfg, summary),
    "Summary": lambda: view_summary(cfg, summary),
    "Latency": lambda: view_latency(cfg),
    "Compare": lambda: view_compare(cfg),
    "Lab": view_lab,
    "Learn": view_learn,
}
# Tabs track their state so only the open one computes (a hidden diagram costs nothing).
for tab, draw in zip(st.tabs(list(views), key="view", on_change="rerun"), views.values()):
    with tab:
        if tab.open:
            draw()
