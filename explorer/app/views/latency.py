"""Latency tab: time the built model on the best device present, keep results per config and settings."""
from __future__ import annotations

import json
from typing import Callable

import streamlit as st

from explorer import ArchConfig, ConfigError, compare, timing
from explorer.app.display import metric_row
from explorer.app.text import error_text, inline_text, plain_text
from explorer.app.measuring import bar_progress, kept_results, kept_run, measure, settings_widgets
from explorer.app.store import latency_key, profile_key, remember, sweep_key
from explorer.arch.presets import display_stem
from explorer.labels import fmt_ms, fmt_num, fmt_rate, fmt_shape, fmt_share
from explorer.limits import PROFILE_BUDGET_S, SWEEP_BUDGET_S
from explorer.timing import NOISY_IQR, PROFILE_TOP, LatencyResult, ProfileResult, SweepResult


def result_caption(r: LatencyResult) -> str:
    """Where and how a measurement ran; the CPU label already gives the thread count."""
    threads = "" if r.device == "cpu" else f" · {r.threads} CPU thread{'s' * (r.threads != 1)}"
    return (f"Measured on **{inline_text(r.device_name)}** · torch {inline_text(r.torch_version)}{threads} · "
            f"{r.samples} samples "
            f"· input {fmt_shape(r.input_shape)} · {r.dtype}")


def result_metrics(r: LatencyResult) -> list[tuple[str, str, str | None]]:
    return [
        ("Median", fmt_ms(r.median_ms), "per forward pass of the whole batch"),
        ("p10 – p90", f"{fmt_ms(r.p10_ms)} – {fmt_ms(r.p90_ms)}", "the spread of the timed passes"),
        ("Throughput", fmt_rate(r.throughput, "img/s"), "images per second at this batch"),
        ("Batch", str(r.batch), f"requested {r.requested_batch}"),
    ]


def noisy_message(r: LatencyResult) -> str:
    """Why a noisy result may read slow, and what gives a steadier one."""
    text = (f"The measurement was noisy (IQR above {100 * NOISY_IQR:g} % of the median): other work on this "
            "machine may have disturbed it. Measure again for a steadier figure")
    if r.device == "cpu" and r.threads > 1:
        text += (f", or pick 1 CPU thread: at {r.threads} threads any other work on the machine (this page's "
                 "browser included) stalls the passes")
    return text + "."


def kept_note(when_where: str | None) -> None:
    """Say that a result shown was read back from the run store, and when and where it was measured."""
    if when_where:
        st.caption(f"Kept from an earlier session: {inline_text(when_where)}.")


def download(cfg: ArchConfig, result: LatencyResult | SweepResult | ProfileResult, kind: str) -> None:
    """The result as the command line's --json prints it (its config first), named after the network."""
    doc = {"config": cfg.to_dict(), **result.to_dict()}
    st.download_button(f"Download the {kind} (JSON)", json.dumps(doc, indent=2, ensure_ascii=False),
                       file_name=f"{display_stem(cfg)}_{kind}.json", mime="application/json",
                       key=f"lat_download_{kind}", on_click="ignore")


def show_result(r: LatencyResult, when_where: str | None = None) -> None:
    st.caption(result_caption(r))
    kept_note(when_where)
    metric_row(result_metrics(r), key="latency_metrics")
    if r.compile_s is not None:
        st.caption(f"torch.compile took {fmt_ms(1000 * r.compile_s)} (not included above).")
    if r.noisy:
        st.warning(noisy_message(r))
    for w in r.warnings:
        st.warning(w)


CANCEL = "lat_cancel"    # the Cancel button shown while the view measures


def cancel_button():
    """A Cancel button under the running measurement: its click reruns the page, which stops the
    measurement at its next progress update (kept as cancelled). Returns its slot, to clear."""
    slot = st.empty()
    slot.button("Cancel", key=CANCEL, help="Stops the measurement after the pass that is running; "
                                           "it is kept in History as cancelled.")
    return slot


def draw(cfg: ArchConfig, summary: dict) -> None:
    settings = settings_widgets()
    results = st.session_state.latency_results
    if st.session_state.get(CANCEL):
        st.info("The measurement was cancelled.")
    b1, b2, b3 = st.columns(3)
    if b1.button("Measure latency", type="primary", key="lat_run"):
        running("warming up…", "timing…", lambda p: measure(cfg, settings, p))
    if b2.button("Profile layers", key="lat_profile", help="time every layer of this model, and where the time goes"):
        running("profiling layers…", "profiling layers…", lambda p: remember(
            results, profile_key(cfg, settings),
            kept_run("profile", cfg, settings, PROFILE_BUDGET_S,
                     lambda q: timing.profile_latency(cfg, budget_s=PROFILE_BUDGET_S, progress=q,
                                                      **settings.profile_kwargs()), p)))
    if b3.button("Batch sweep", key="lat_sweep"):
        running("sweeping batch sizes…", None, lambda p: remember(
            results, sweep_key(cfg, settings),
            kept_run("sweep", cfg, settings, SWEEP_BUDGET_S,
                     lambda q: timing.batch_sweep(cfg, budget_s=SWEEP_BUDGET_S, progress=q,
                                                  **settings.sweep_kwargs()), p)))
    show_results(cfg, settings)


def running(text: str, progress_text: str | None, work: Callable[[Callable[[float], None]], None]) -> None:
    """`work(progress)` under a Cancel button and a progress bar reading `text` (then
    `progress_text` as it moves); a setting or measurement that fails is said in one message."""
    cancel = cancel_button()
    bar = st.progress(0.0, text=text)
    try:
        work(bar_progress(bar, progress_text))
    except (ConfigError, timing.LatencyError) as exc:
        st.error(error_text(exc))
    bar.empty()
    cancel.empty()


def show_results(cfg: ArchConfig, settings) -> None:
    """The latency, sweep and profile of `cfg` at `settings`: this session's own, else the newest
    kept ones measured on this device (marked with when and where)."""
    results = st.session_state.latency_results
    own = {"latency": results.get(latency_key(cfg, settings)), "sweep": results.get(sweep_key(cfg, settings)),
           "profile": results.get(profile_key(cfg, settings))}
    kept = kept_results(cfg, settings) if None in own.values() else {}
    shown = {kind: (r, None) if r is not None else kept.get(kind, (None, None)) for kind, r in own.items()}
    r, note = shown["latency"]
    if all(result is None for result, _ in shown.values()):  # gone once any result shows
        where = timing.device_label(settings.device, settings.threads)
        st.info(f"Press **Measure latency** to time {plain_text(cfg.name)} on {where}.")
    if r is not None:
        show_result(r, note)
        download(cfg, r, "latency")
    sweep, note = shown["sweep"]
    if sweep is not None:
        show_sweep(sweep, note)
        download(cfg, sweep, "sweep")
    profile, note = shown["profile"]
    if profile is not None:
        show_profile(profile, compiled=settings.compile, when_where=note, latency=r)
        download(cfg, profile, "profile")


def show_sweep(s: SweepResult, when_where: str | None = None) -> None:
    """The sweep's chart, and under it which planned batch sizes were not measured and why."""
    kept_note(when_where)
    if s.rows:
        st.plotly_chart(compare.sweep_figure(s.rows), key="sweep_chart")
    if s.skipped:
        st.caption(s.skipped_text().replace("\n", "  \n"))
    for w in s.warnings:
        st.warning(w)


def medians_note(p: ProfileResult, r: LatencyResult) -> str:
    """Why the profile's whole-model median and the measured Median above it differ."""
    return (f"Two medians, two measurements: the Median above ({fmt_ms(r.median_ms)}) is *Measure latency*'s "
            f"passes timed back to back; the whole-model median here ({fmt_ms(p.whole_ms)}) is the profile's "
            "own plain passes, each timed right after a hooked one, at another moment. Other work on the "
            "machine while one of them ran moves that one alone; on a quiet machine they agree within "
            "their spread.")


def show_profile(p: ProfileResult, compiled: bool, when_where: str | None = None,
                 latency: LatencyResult | None = None) -> None:
    import plotly.express as px

    st.subheader("Where the time goes")
    kept_note(when_where)
    st.caption(f"Per-layer profile on **{inline_text(p.device_name)}** · {p.method} · {p.passes} profiled passes "
               f"between as many plain ones · input {fmt_shape(p.input_shape)} · {p.dtype}"
               + (" · without torch.compile (hooks need the eager model)" if compiled else ""))
    st.dataframe([{"module": r.module, "kind": r.kind, "stage": r.stage, "time": fmt_ms(r.ms),
                   "share %": fmt_num(100 * r.share)} for r in p.top(PROFILE_TOP)], hide_index=True,
                 key="profile_table")
    fig = px.bar(x=[s.stage for s in p.stages], y=[100 * s.share for s in p.stages],
                 labels={"x": "stage", "y": "share of the layers' time, %"}, title="Share of time per stage")
    st.plotly_chart(fig, key="profile_stage_chart")
    st.caption(f"The {len(p.rows)} rows add up to {fmt_ms(p.total_ms)}, {fmt_share(p.coverage)} of the "
               f"whole-model median of {fmt_ms(p.whole_ms)} measured between them; "
               f"{fmt_ms(p.unattributed_ms)} per pass fell between modules; the hooks slowed a pass by "
               f"{fmt_share(p.overhead)}.")
    if latency is not None:
        st.caption(medians_note(p, latency))
    if p.note:
        st.warning(p.note)
    for w in p.warnings:
        st.warning(w)
