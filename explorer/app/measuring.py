"""What the Latency and Compare views share to time a model: the settings widgets (the same keys
in both, so a setting made in one holds in the other), a progress bar that moves sparingly, and
the run store: every measurement kept as it ends, and kept ones read back after a reload."""
from __future__ import annotations

import os
import time
from typing import Any, Callable, TypeVar

import streamlit as st
from streamlit.runtime.scriptrunner import RerunException, StopException

from explorer import ArchConfig, ConfigError, timing
from explorer.app.kept import keeper, store_notice
from explorer.app.store import LatencySettings, latency_key, remember
from explorer.limits import LATENCY_BUDGET_S, MAX_BATCH
from explorer.runs import RunKind, RunRecord
from explorer.runs.record import LATENCY_KINDS
from explorer.runs.timing_runs import (
    TimingResult, kept_measurement, latest_per_device, run_settings, stored_result, when_where,
)
# Least seconds between progress bar updates while timing. Each update is work for the server
# and the browser (a headless Chromium spent a third of its CPU time during a measurement on
# them); on a machine whose cores all run the timed passes (torch's default thread count) that
# work stalls them: at 20 updates a second resnet50 read 1.6x slower than the CLI. An update is
# also where a Cancel is noticed, so a measurement stops within this many seconds.
PROGRESS_EVERY_S = 2.0


def thread_label(n: int | None) -> str:
    return "torch default" if n is None else str(n)


def settings_widgets() -> LatencySettings:
    # Two rows of at most three: at 1024 px a row of five cut the device label short.
    c1, c2, c3 = st.columns([3, 1, 1])
    device = c1.selectbox("Device", timing.available_devices(), key="lat_device", format_func=timing.device_label)
    batch = c2.number_input("Batch", min_value=1, max_value=MAX_BATCH, value=1, key="lat_batch")
    dtype = c3.selectbox("dtype", list(timing.DTYPES), key="lat_dtype",
                         help="bf16 on CPU where supported; fp16 needs a GPU")
    c4, c5, c6 = st.columns([2, 2, 3], vertical_alignment="bottom")
    channels_last = c4.toggle("channels_last", key="lat_channels_last")
    compiled = c5.toggle("torch.compile", key="lat_compile", help="compile time is reported apart")
    threads = None
    if device == "cpu":
        threads = c6.selectbox("CPU threads", [None, *range(1, (os.cpu_count() or 1) + 1)], key="lat_threads",
                               format_func=thread_label, help="One thread gives steadier figures on a busy machine.")
    return LatencySettings(device=device, batch=int(batch), dtype=dtype, channels_last=channels_last,
                           compile=compiled, threads=threads)


R = TypeVar("R")
# A rerun (Cancel, a changed widget) or the session's end stops a measurement at its next progress
# update by raising one of these: the run is kept as cancelled.
STOPPED_BY = (RerunException, StopException)
STORED_LOOKUP = 100     # newest kept runs of a network read to find one at the settings shown


def record_settings(kind: RunKind, settings: LatencySettings, budget_s: float) -> dict[str, Any]:
    """`settings` as a kept run of `kind` holds them (the command line's shape)."""
    return run_settings(kind, {**settings.kwargs(), "budget_s": budget_s})


def kept_run(kind: RunKind, cfg: ArchConfig, settings: LatencySettings, budget_s: float,
             work: Callable[[Callable[[float], Any]], R], progress: Callable[[float], Any]) -> R:
    """`work(progress)`, a measurement of `cfg`, kept in the run store as it ends (complete,
    cancelled or failed); a store that fails is said once in this session (not while a rerun stops
    the page: that drawing would be lost)."""
    try:
        result = kept_measurement(keeper(), kind, cfg, record_settings(kind, settings, budget_s), work, progress,
                                  STOPPED_BY)
    except (ConfigError, timing.LatencyError):
        store_notice()
        raise
    store_notice()
    return result


def measure(cfg, settings: LatencySettings, progress: Callable[[float], None], kind: RunKind = "latency") -> None:
    """Time `cfg` at `settings` for about LATENCY_BUDGET_S, keep the run (as `kind`: "latency" from
    the Latency view, "compare" from Compare) and the result where both views read it. Raises
    ConfigError or timing.LatencyError."""
    r = kept_run(kind, cfg, settings, LATENCY_BUDGET_S,
                 lambda p: timing.measure_latency(cfg, budget_s=LATENCY_BUDGET_S, progress=p, **settings.kwargs()),
                 progress)
    remember(st.session_state.latency_results, latency_key(cfg, settings), r)


def kept_results(cfg: ArchConfig, settings: LatencySettings) -> dict[str, tuple[TimingResult, str]]:
    """The newest kept latency, sweep and profile of `cfg`'s network measured on this device at
    `settings` (kind -> result, when and where it was measured)."""
    device = timing.device_label(settings.device, settings.threads)
    records = keeper().records(network=cfg.arch_key(), device=device, limit=STORED_LOOKUP)
    store_notice()
    found = {}
    for kind in ("latency", "sweep", "profile"):
        hit = stored_result(records, kind, record_settings(kind, settings, 0.0), device)
        if hit is not None:
            found[kind] = (hit[0], when_where(hit[1]))
    return found


def kept_latencies(cfg: ArchConfig) -> list[tuple[timing.LatencyResult, RunRecord]]:
    """The newest kept latency of `cfg`'s network on each device (this machine's and imported ones)."""
    records = [r for kind in LATENCY_KINDS
               for r in keeper().records(kind=kind, network=cfg.arch_key(), limit=STORED_LOOKUP)]
    store_notice()
    return latest_per_device(sorted(records, key=lambda r: r.started, reverse=True))


def fraction(f: float) -> float:
    return min(max(f, 0.0), 1.0)


def bar_progress(bar, text: str | None = None) -> Callable[[float], None]:
    """A progress callback that moves `bar` at most every PROGRESS_EVERY_S seconds."""
    last = [time.perf_counter()]

    def report(f: float) -> None:
        now = time.perf_counter()
        if now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            bar.progress(fraction(f), text=text)
    return report
