"""Latency and throughput across batch sizes, within a time budget and the memory there is."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import torch
from torch import nn

from explorer.arch.config import ArchConfig
from explorer.errors import ConfigError, LatencyError
from explorer.facts.costs import check_batch
from explorer.limits import MAX_BUDGET_S, SWEEP_BUDGET_S
from explorer.timing.bounds import OverBudget
from explorer.timing.core import TimingSettings, check_device, check_number, settings_of
from explorer.timing.devices import device_label
from explorer.timing.gate import exclusive_measurement
from explorer.timing.measure import measure_latency
from explorer.timing.memory import fits_cpu_memory
from explorer.timing.passes import MeasurementCancelled, Progress
from explorer.timing.results import SkippedBatch, StopReason, SweepResult, SweepRow

SWEEP_BATCHES = (1, 8, 32, 128, 512, 2048)
PER_BATCH_S = 2.0           # most seconds of timing for one batch size
SWEEP_MIN_SAMPLES = 3       # least timed passes per batch size


@dataclass
class _Progressing:
    """What a sweep has so far."""

    rows: list[SweepRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stopped: StopReason = "done"


def batch_sweep(model_or_cfg: ArchConfig | nn.Module, settings: TimingSettings | None = None, *,
                batches: Sequence[int] = SWEEP_BATCHES, per_batch_s: float = PER_BATCH_S,
                progress: Progress | None = None, **options: Any) -> SweepResult:
    """Latency and throughput at growing batch sizes, bounded by time and memory.

    `settings` / `options` are measure_latency's; their `budget_s` is the whole sweep's
    (default SWEEP_BUDGET_S), each size is timed for at most `per_batch_s`, and the batch and
    compile settings are the sweep's own (every size of `batches`, never compiled).
    Stops before a batch whose predicted time (the last median scaled by the batch ratio,
    times the passes it needs) would overrun the budget, and at the first batch that does not
    fit in memory (estimated on CPU, out-of-memory on CUDA). Every planned size not measured is
    in `skipped` with the reason, so the rows and the skipped sizes together are the planned
    ones. A progress callback that cancels after the first row ends the sweep with
    `stopped == "cancelled"`; before it, it raises MeasurementCancelled.
    """
    s = settings_of(settings, options, budget_s=SWEEP_BUDGET_S, min_samples=SWEEP_MIN_SAMPLES)
    dev = check_device(s.device, s.dtype, s.budget_s)
    check_number("per_batch_s", per_batch_s, 0, MAX_BUDGET_S)
    sizes = list(batches)
    if not sizes:
        raise ConfigError("batches", batches, "one or more batch sizes")
    for b in sizes:
        check_batch(b)
    sizes = sorted(set(sizes))
    done = _Progressing()
    start = time.perf_counter()
    with exclusive_measurement():  # one sweep is one measurement: nobody times in between its batches
        for i, b in enumerate(sizes):
            left = s.budget_s - (time.perf_counter() - start)
            done.stopped = _stop_before(model_or_cfg, dev, s, done.rows, b, left)
            if done.stopped != "done":
                break
            step = replace(s, device=str(dev), batch=b, compile=False, retry_smaller=False,
                           budget_s=max(0.0, min(per_batch_s, left)))
            done.stopped = _measure_size(model_or_cfg, step, done, _sub_progress(progress, i, len(sizes)))
            if done.stopped != "done":
                break
    measured = {r.batch for r in done.rows}
    if progress is not None:
        progress(1.0)
    rows = done.rows
    return SweepResult(tuple(rows), done.stopped, rows[0].device if rows else dev.type,
                       rows[0].device_name if rows else device_label(dev, s.threads), tuple(done.warnings),
                       tuple(SkippedBatch(b, done.stopped) for b in sizes if b not in measured), float(s.budget_s))


def _stop_before(model_or_cfg: Any, dev: torch.device, s: TimingSettings, rows: list[SweepRow], batch: int,
                 left: float) -> StopReason:
    """Why not to measure `batch` after `rows` ("done": go ahead)."""
    if not rows:
        return "done"
    if not fits_cpu_memory(model_or_cfg, dev, batch, s.dtype, s.input_shape):
        return "memory"
    last = rows[-1]
    predicted = last.median_ms / 1e3 * (batch / last.batch) * (s.min_samples + 2)
    return "time" if predicted > left else "done"


def _measure_size(model_or_cfg: Any, step: TimingSettings, done: _Progressing, progress: Progress | None) -> StopReason:
    """Measure one batch size into `done`; why the sweep stops there ("done": it goes on). The
    first size's failures raise: there is no sweep without one row."""
    try:
        r = measure_latency(model_or_cfg, step, progress=progress)
    except ConfigError as exc:
        if exc.key != "batch" or not done.rows:
            raise
        return "memory"
    except OverBudget:  # one pass at this batch would far outlast what is left of the budget
        if not done.rows:
            raise
        return "time"
    except LatencyError:
        if not done.rows:
            raise
        return "memory"
    except MeasurementCancelled:
        if not done.rows:
            raise
        return "cancelled"
    if r.gate_timed_out:
        done.warnings.append(f"batch {step.batch} was timed while Lab training steps still ran: it may read slow")
    done.rows.append(SweepRow.of(r))
    return "done"


def _sub_progress(progress: Progress | None, i: int, n: int) -> Progress | None:
    if progress is None:
        return None

    def report(fraction: float) -> Any:
        return progress((i + fraction) / n)
    return report
