"""Device-aware latency: how long one forward pass of a built network takes, and how it spreads.

Method (the same on every device, so numbers compare):
* the private device copy of core.py, under the device lock with Lab training paused; when
  training steps in flight outlast the gate's wait, the result says so;
* warm-up passes first, then individual passes are timed one by one under
  `torch.inference_mode()` with the garbage collector off (passes.py);
* percentiles are taken over the individual samples; `noisy` flags a spread (IQR) above 20%
  of the median so a reader knows to distrust small differences.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from explorer.arch.config import ArchConfig
from explorer.errors import LatencyError
from explorer.timing.core import (
    OOM_ERRORS, Run, TimingSettings, check_run, first_line, forward_failures, on_private_copy, out_of_memory,
    settings_of,
)
from explorer.timing.devices import cpu_has_native_bf16
from explorer.timing.gate import GateWait
from explorer.timing.passes import Clock, Progress, Spread, sync, time_passes, timing_state
from explorer.timing.results import LatencyResult

FEW_SAMPLES = 10            # below this many samples the percentiles are rough


@dataclass(frozen=True)
class Timed:
    """What the timed section of one attempt produced."""

    batch: int                  # images per pass in this attempt
    times_ms: list[float]
    warmup: int                 # untimed passes run
    compile_s: float | None
    peak_memory_bytes: int | None
    elapsed_s: float


def measure_latency(model_or_cfg: ArchConfig | nn.Module, settings: TimingSettings | None = None, *,
                    progress: Progress | None = None, **options: Any) -> LatencyResult:
    """Time forward passes of a network and report median, spread and throughput.

    Args:
        model_or_cfg: an ArchConfig (checked against the server's size limits, then built fresh
            on the device) or a module (deep-copied; the original keeps its weights, device,
            dtype and training flag).
        settings: a TimingSettings (default: TimingSettings()).
        progress: called with the fraction done (0..1); returning False or raising
            MeasurementCancelled stops the measurement with MeasurementCancelled.
        **options: TimingSettings fields to change: device ("auto", "cpu", "cuda", "cuda:N"),
            batch (1..MAX_BATCH), dtype, channels_last, compile, threads (None: torch's default
            count, resolved once per process), budget_s (warm-up plus timing; at least
            min_samples passes are timed even when they overrun it), warmup, min_samples,
            max_samples, input_shape ((C, H, W); read from the config of a ResNet),
            retry_smaller (on CUDA out-of-memory halve the batch and retry, with a warning).

    Raises:
        ConfigError for invalid settings or a config over the size limits, LatencyError when no
        measurement could be made, MeasurementCancelled when the progress callback stops it,
        TypeError for an option that is no TimingSettings field.
    """
    s = settings_of(settings, options)
    run = check_run(model_or_cfg, s)
    notes: list[str] = []
    if run.dtype == "bf16" and run.dev.type == "cpu" and not cpu_has_native_bf16():
        notes.append("this CPU has no native bf16 instructions: bf16 is emulated and usually slower than fp32")
    retries: list[str] = []
    timed, wait = on_private_copy(model_or_cfg, run, s.batch,
                                  lambda model: measure_with_retry(model, run, s, progress, retries))
    if wait.timed_out:
        notes.append(wait.note())
    return latency_result(run, s.batch, timed, notes + retries, wait)


def measure_with_retry(model: nn.Module, run: Run, s: TimingSettings, progress: Progress | None,
                       notes: list[str]) -> Timed:
    """Measure at the batch asked for; on CUDA out-of-memory halve it and retry (when the
    settings allow), saying so in `notes`."""
    current = s.batch
    while True:
        try:
            with forward_failures(run.name):
                return measure_once(model, run, current, progress)
        except OOM_ERRORS:
            pass  # handled below, once the except block has released its frames (and tensors)
        error = out_of_memory(run, current)
        if current == 1 or not s.retry_smaller:
            raise error
        notes.append(f"batch {current} ran out of GPU memory; measured at batch {current // 2} instead")
        current //= 2


def measure_once(model: nn.Module, run: Run, batch: int, progress: Progress | None) -> Timed:
    """Warm-up and timed passes of the copy at `batch` (compiled first when asked)."""
    dev = run.dev
    x = run.input(batch)  # (B, C, H, W)
    forward: Callable = model
    compile_s = None
    with timing_state(dev, run.threads), torch.inference_mode():
        if run.compile:
            forward, compile_s = compile_copy(model, x, dev)
        clock = Clock(run.budget_s, run.min_samples, run.max_samples, progress)
        clock.report(0.0, force=True)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
        times, n_warm = time_passes(forward, x, dev, clock, run.warmup)
        elapsed = clock.elapsed()
        peak = torch.cuda.max_memory_allocated(dev) - base if dev.type == "cuda" else None
        clock.report(1.0, force=True)
    return Timed(batch, times, n_warm, compile_s, peak, elapsed)


def compile_copy(model: nn.Module, x: torch.Tensor, dev: torch.device) -> tuple[Callable, float]:
    """torch.compile the copy and run its first (compiling) pass; returns it and the seconds taken."""
    t0 = time.perf_counter()
    try:
        compiled = torch.compile(model, dynamic=False)
        compiled(x)
        sync(dev)
    except OOM_ERRORS:
        raise
    except Exception as exc:  # the compiler stack raises many kinds; the user needs one line
        raise LatencyError(f"torch.compile failed: {first_line(exc)}") from None
    return compiled, time.perf_counter() - t0


def latency_result(run: Run, requested: int, t: Timed, notes: list[str], wait: GateWait) -> LatencyResult:
    """The result of one measurement from its run, timed passes and notes."""
    spread = Spread.of(t.times_ms)
    if len(t.times_ms) < FEW_SAMPLES:
        notes = [*notes, f"only {len(t.times_ms)} samples fit the {run.budget_s:g} s budget: the percentiles are rough"]
    return LatencyResult(
        name=run.name, device=run.device, device_name=run.label(),
        batch=t.batch, requested_batch=requested, input_shape=(t.batch, *run.shape),
        median_ms=spread.median, p10_ms=spread.p10, p90_ms=spread.p90, iqr_ms=spread.iqr,
        min_ms=spread.least, mean_ms=spread.mean,
        throughput=t.batch * 1e3 / spread.median if spread.median > 0 else float("inf"),
        samples=len(t.times_ms), warmup=t.warmup, noisy=spread.noisy,
        dtype=run.dtype, channels_last=run.channels_last, compile=run.compile, compile_s=t.compile_s,
        threads=run.threads, torch_version=torch.__version__, peak_memory_bytes=t.peak_memory_bytes,
        budget_s=run.budget_s, elapsed_s=t.elapsed_s, gate_timed_out=wait.timed_out,
        warnings=tuple(notes), times_ms=tuple(t.times_ms),
    )
