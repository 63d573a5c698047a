"""Timing the passes themselves: the budget clock, the quiet timed section, the sample loop.

Warm-up passes come first (cudnn.benchmark picks its kernels there on CUDA), then passes are
timed one by one: on CUDA with events around the pass after a synchronize (no queued work
overlaps a sample), on CPU with `time.perf_counter` around the pass at an explicit thread count.
"""
from __future__ import annotations

import gc
import math
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import torch

Progress = Callable[[float], Any]   # called with the fraction done; False stops the measurement


class MeasurementCancelled(Exception):
    """Raised when the progress callback asks to stop (returns False or raises this)."""


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of already sorted values."""
    if not sorted_values:
        raise ValueError("no values")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


class Clock:
    """Wall-clock budget, progress reporting and cancellation for one measurement."""

    def __init__(self, budget_s: float, max_samples: int, progress: Progress | None) -> None:
        self.budget_s, self.max_samples, self.progress = budget_s, max_samples, progress
        self.start = time.perf_counter()
        self._last_report = -1.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def report(self, fraction: float, force: bool = False) -> None:
        """Tell the callback how far along we are (at most every 50 ms); stop if it says so."""
        if self.progress is None:
            return
        now = time.perf_counter()
        if not force and now - self._last_report < 0.05:
            return
        self._last_report = now
        if self.progress(min(max(fraction, 0.0), 1.0)) is False:
            raise MeasurementCancelled("latency measurement cancelled")

    def fraction(self, n: int) -> float:
        """Progress after `n` timed samples: the first tenth is the warm-up."""
        done = max(self.elapsed() / max(self.budget_s, 1e-9), n / self.max_samples)
        return 0.1 + 0.9 * min(done, 1.0)


@contextmanager
def timing_state(dev: torch.device, threads: int) -> Iterator[None]:
    """Thread count, cudnn autotuning and a quiet garbage collector for the timed section."""
    old_threads = torch.get_num_threads()
    old_bench = torch.backends.cudnn.benchmark
    gc_was_on = gc.isenabled()
    torch.set_num_threads(threads)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # pick the fastest kernels for these shapes
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if gc_was_on:
            gc.enable()
        torch.backends.cudnn.benchmark = old_bench
        torch.set_num_threads(old_threads)


def sync(dev: torch.device) -> None:
    """Wait for the work queued on `dev` (nothing to wait for on the CPU)."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def time_passes(model: Callable, x: torch.Tensor, dev: torch.device, clock: Clock,
                warmup: int, min_samples: int, max_samples: int) -> tuple[list[float], int]:
    """Warm-up passes, then individually timed passes until the budget or max_samples."""
    budget = clock.budget_s
    n_warm = 0
    # At least `warmup` passes, more while they take under a tenth of the budget (CUDA lazy
    # init and cudnn autotuning, CPU caches), never more than 50.
    while n_warm < warmup or (clock.elapsed() < 0.1 * budget and n_warm < 50):
        model(x)
        sync(dev)
        n_warm += 1
        clock.report(0.1 * min(1.0, clock.elapsed() / max(budget, 1e-9)))
    times: list[float] = []
    if dev.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        while len(times) < max_samples and (len(times) < min_samples or clock.elapsed() < budget):
            torch.cuda.synchronize(dev)  # nothing queued overlaps this sample
            start.record()
            model(x)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
            clock.report(clock.fraction(len(times)))
    else:
        perf = time.perf_counter
        while len(times) < max_samples and (len(times) < min_samples or clock.elapsed() < budget):
            t0 = perf()
            model(x)
            times.append((perf() - t0) * 1e3)
            clock.report(clock.fraction(len(times)))
    return times, n_warm
