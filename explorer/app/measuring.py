"""What the Latency and Compare views share to time a model: the settings widgets (the same keys
in both, so a setting made in one holds in the other) and a progress bar that moves sparingly."""
from __future__ import annotations

import os
import time
from typing import Callable

import streamlit as st

from explorer import timing
from explorer.app.store import LatencySettings, latency_key, remember
from explorer.limits import LATENCY_BUDGET_S, MAX_BATCH
# Least seconds between progress bar updates while timing. Each update is work for the server
# and the browser; on a machine whose cores all run the timed passes (torch's default thread
# count) that work stalls them: at 20 updates a second resnet50 read 1.6x slower than the CLI.
PROGRESS_EVERY_S = 1.0


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


def measure(cfg, settings: LatencySettings, progress: Callable[[float], None]) -> None:
    """Time `cfg` at `settings` for about LATENCY_BUDGET_S and keep the result where the Latency
    and Compare views both read it. Raises ConfigError or timing.LatencyError."""
    r = timing.measure_latency(cfg, budget_s=LATENCY_BUDGET_S, progress=progress, **settings.kwargs())
    remember(st.session_state.latency_results, latency_key(cfg, settings), r)


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
