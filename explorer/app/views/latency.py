"""Latency tab: time the built model on the best device present, keep results per config and settings."""
from __future__ import annotations

import os

import streamlit as st

from explorer import ArchConfig, ConfigError, compare, timing
from explorer.app.store import LatencySettings, latency_key, remember, sweep_key
from explorer.app.text import fmt_shape
from explorer.facts.costs import MAX_BATCH

BUDGET_S = 3.0  # seconds of timing per measurement


def thread_label(n: int | None) -> str:
    return "torch default" if n is None else str(n)


def settings_widgets() -> LatencySettings:
    c1, c2, c3, c4, c5 = st.columns([2, 1, 1, 1, 1])
    device = c1.selectbox("Device", timing.available_devices(), key="lat_device", format_func=timing.device_label)
    batch = c2.number_input("Batch", min_value=1, max_value=MAX_BATCH, value=1, key="lat_batch")
    dtype = c3.selectbox("dtype", list(timing.DTYPES), key="lat_dtype",
                         help="bf16 on CPU where supported; fp16 needs a GPU")
    channels_last = c4.toggle("channels_last", key="lat_channels_last")
    compiled = c5.toggle("torch.compile", key="lat_compile", help="compile time is reported apart")
    threads = None
    if device == "cpu":
        threads = st.selectbox("CPU threads", [None, *range(1, (os.cpu_count() or 1) + 1)], key="lat_threads",
                               format_func=thread_label, help="One thread gives steadier figures on a busy machine.")
    return LatencySettings(device=device, batch=int(batch), dtype=dtype, channels_last=channels_last,
                           compile=compiled, threads=threads)


def fraction(f: float) -> float:
    return min(max(f, 0.0), 1.0)


def show_result(r: dict) -> None:
    st.caption(f"Measured on **{r['device_name']}** · torch {r['torch_version']} · {r['threads']} "
               f"thread{'s' * (r['threads'] != 1)} · {r['samples']} samples · input {fmt_shape(r['input_shape'])} "
               f"· {r['dtype']}")
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


def draw(cfg: ArchConfig, summary: dict) -> None:
    settings = settings_widgets()
    results = st.session_state.latency_results
    b1, b2 = st.columns(2)
    if b1.button("Measure latency", type="primary", key="lat_run"):
        bar = st.progress(0.0, text="warming up…")
        try:
            result = timing.measure_latency(
                cfg, budget_s=BUDGET_S, progress=lambda f: bar.progress(fraction(f), text="timing…"),
                **settings.kwargs())
            remember(results, latency_key(cfg, settings), result.to_dict())
        except (ConfigError, timing.LatencyError) as exc:
            st.error(str(exc))
        bar.empty()
    if b2.button("Batch sweep", key="lat_sweep"):
        bar = st.progress(0.0, text="sweeping batch sizes…")
        try:
            sweep = timing.batch_sweep(cfg, progress=lambda f: bar.progress(fraction(f)), **settings.sweep_kwargs())
            remember(results, sweep_key(cfg, settings), [dict(r) for r in sweep.rows])
        except (ConfigError, timing.LatencyError) as exc:
            st.error(str(exc))
        bar.empty()
    r = results.get(latency_key(cfg, settings))
    if r is None:
        st.info(f"Press **Measure latency** to time `{cfg.name}` on {timing.device_label(settings.device)}.")
    else:
        show_result(r)
    rows = results.get(sweep_key(cfg, settings))
    if rows:
        st.plotly_chart(compare.sweep_figure(rows), key="sweep_chart")
