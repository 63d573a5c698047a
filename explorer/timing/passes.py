"""Timing the passes themselves: the budget clock, the quiet timed section, warm-up, one timed
pass, the sample loop and the spread of the samples.

Warm-up passes come first (cudnn.benchmark picks its kernels there on CUDA), then passes are
timed one by one: on CUDA with events around the pass after a synchronize (no queued work
overlaps a sample), on CPU with `time.perf_counter_ns` around the pass at an explicit thread
count. Latency, sweep and profile all time their passes here.
"""
from __future__ import annotations

import gc
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch

from explorer.limits import MAX_WARMUP
from explorer.timing.bounds import refuse_over_budget

Progress = Callable[[float], Any]   # called with the fraction done; False stops the measurement

WARMUP = {"cpu": 2, "cuda": 5}      # least untimed passes per device type
NOISY_IQR = 0.20                    # IQR / median above which samples are flagged noisy
WARMUP_SHARE = 0.5                  # the least warm-up count is cut short past this share of the budget
OVERRUN = 1.5                       # the least sample count is cut short past this many budgets


class MeasurementCancelled(Exception):
    """Raised when the progress callback asks to stop (returns False or raises this)."""


def default_warmup(dev: torch.device) -> int:
    """Least untimed passes before timing on `dev`."""
    return WARMUP["cuda" if dev.type == "cuda" else "cpu"]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of already sorted values."""
    if not sorted_values:
        raise ValueError("no values")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(frozen=True)
class Spread:
    """Percentiles of a list of timed passes, ms."""

    median: float
    p10: float
    p90: float
    iqr: float          # p75 - p25
    least: float
    mean: float

    @classmethod
    def of(cls, times: Sequence[float]) -> "Spread":
        s = sorted(times)
        return cls(median=percentile(s, 50), p10=percentile(s, 10), p90=percentile(s, 90),
                   iqr=percentile(s, 75) - percentile(s, 25), least=s[0], mean=sum(s) / len(s))

    @property
    def noisy(self) -> bool:
        """The spread (IQR) is over NOISY_IQR of the median: small differences mean little."""
        return self.iqr > NOISY_IQR * self.median


class Clock:
    """Wall-clock budget, sample bounds, progress reporting and cancellation for one measurement.

    The measurement stays near its budget: each decision to run another pass looks at how long
    the last one took (`lap`), so neither the least warm-up count nor the least sample count
    carries it past OVERRUN budgets, and a first pass over MAX_PASS_BUDGETS budgets stops it."""

    def __init__(self, budget_s: float, min_samples: int, max_samples: int, progress: Progress | None) -> None:
        self.budget_s, self.min_samples, self.max_samples = budget_s, min_samples, max_samples
        self.progress = progress
        self.start = time.perf_counter()
        self._last_report = -1.0
        self._lap_start: float | None = None
        self.pass_s = 0.0           # how long the last lap (one pass, or one round of passes) took

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def lap(self) -> float:
        """Note that a lap ends here (and the next begins); returns the seconds elapsed."""
        now = self.elapsed()
        if self._lap_start is not None:
            self.pass_s = now - self._lap_start
        self._lap_start = now
        return now

    def fits(self, share: float) -> bool:
        """Whether one more lap like the last ends within `share` budgets (always, for a budget of
        0 s: a measurement of the least counts only)."""
        return self.budget_s <= 0 or self.elapsed() + self.pass_s <= share * self.budget_s

    def more(self, n: int) -> bool:
        """Whether to time another pass after `n`: the first always; then within budget and maximum,
        or below the minimum while one more pass ends within OVERRUN budgets."""
        self.lap()
        if n >= self.max_samples:
            return False
        return n == 0 or self.elapsed() < self.budget_s or (n < self.min_samples and self.fits(OVERRUN))

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


def warm_up(run: Callable, x: torch.Tensor, dev: torch.device, clock: Clock, least: int) -> int:
    """Untimed passes: one (two on CUDA), then up to `least` while they end within WARMUP_SHARE of the budget,
    and more while they take under a tenth of it (CUDA lazy init and cudnn autotuning, CPU
    caches), never more than MAX_WARMUP. A first pass over MAX_PASS_BUDGETS budgets ends the
    measurement with LatencyError, saying how long it took. Returns how many ran."""
    first = 2 if dev.type == "cuda" else 1  # CUDA's first pass is its lazy start and cudnn's autotuning
    n = 0
    clock.lap()
    while n < first or (n < least and clock.fits(WARMUP_SHARE)) or (clock.elapsed() < 0.1 * clock.budget_s
                                                                    and n < MAX_WARMUP):
        run(x)
        sync(dev)
        n += 1
        clock.lap()
        if n == first:
            refuse_over_budget("", clock.pass_s, clock.budget_s, "(as measured) ")
        clock.report(0.1 * min(1.0, clock.elapsed() / max(clock.budget_s, 1e-9)))
    return n


def timed_pass(run: Callable, x: torch.Tensor, dev: torch.device) -> float:
    """One pass, ms: CUDA events around it after a synchronize (nothing queued overlaps it), or
    the CPU's clock."""
    if dev.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(dev)
        start.record()
        run(x)
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    t0 = time.perf_counter_ns()
    run(x)
    return (time.perf_counter_ns() - t0) / 1e6


def time_passes(run: Callable, x: torch.Tensor, dev: torch.device, clock: Clock,
                warmup: int) -> tuple[list[float], int]:
    """Warm-up passes, then individually timed passes while the clock allows; (times ms, warm-up count)."""
    n_warm = warm_up(run, x, dev, clock, warmup)
    times: list[float] = []
    while clock.more(len(times)):
        times.append(timed_pass(run, x, dev))
        clock.report(clock.fraction(len(times)))
    return times, n_warm
