"""Latency and throughput across batch sizes, within a time budget and the memory there is."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from torch import nn

from explorer.arch.config import ArchConfig
from explorer.errors import ConfigError, LatencyError
from explorer.facts.costs import check_batch
from explorer.timing.devices import device_label, resolve_device
from explorer.timing.gate import exclusive_measurement
from explorer.timing.measure import MAX_BUDGET_S, LatencyResult, check_number, measure_latency
from explorer.timing.memory import fits_cpu_memory
from explorer.timing.passes import MeasurementCancelled, Progress

SWEEP_BATCHES = (1, 8, 32, 128, 512, 2048)
# Why a planned batch size was not measured, in words a chart caption can use.
SKIP_REASONS = {
    "memory": "did not fit in memory",
    "time": "out of the time budget",
    "cancelled": "cancelled",
}


@dataclass
class SweepResult:
    """Latency and throughput per batch size; iterates over its rows (ready for a chart)."""

    rows: list[dict[str, Any]]
    stopped: str            # why the sweep ended: "done", "time", "memory", "cancelled"
    device: str
    device_name: str
    warnings: list[str] = field(default_factory=list)   # about the sweep as a whole (e.g. the Lab gate)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {batch, reason}: planned, not measured
    budget_s: float | None = None   # the sweep's time budget, seconds (for the "ran out" message)

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [dict(r) for r in self.rows], "stopped": self.stopped,
                "device": self.device, "device_name": self.device_name, "warnings": list(self.warnings),
                "skipped": [dict(r) for r in self.skipped], "budget_s": self.budget_s}


def sweep_row(r: LatencyResult) -> dict[str, Any]:
    """One chart row of a latency result."""
    return {
        "name": r.name, "batch": r.batch, "median_ms": r.median_ms, "p10_ms": r.p10_ms,
        "p90_ms": r.p90_ms, "ms_per_image": r.median_ms / r.batch, "throughput": r.throughput,
        "samples": r.samples, "noisy": r.noisy, "dtype": r.dtype, "device": r.device,
        "device_name": r.device_name, "peak_memory_bytes": r.peak_memory_bytes,
    }


def batch_sweep(
    model_or_cfg: ArchConfig | nn.Module,
    device: str = "auto",
    batches: Sequence[int] = SWEEP_BATCHES,
    dtype: str = "fp32",
    channels_last: bool = False,
    budget_s: float = 20.0,
    per_batch_s: float = 2.0,
    min_samples: int = 3,
    threads: int | None = None,
    input_shape: Sequence[int] | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """Latency and throughput at growing batch sizes, bounded by time and memory.

    Stops before a batch whose predicted time (the last median scaled by the batch ratio,
    times the passes it needs) would overrun `budget_s`, and at the first batch that does not
    fit in memory (estimated on CPU, out-of-memory on CUDA). Rows: `batch`, `median_ms`,
    `p10_ms`, `p90_ms`, `ms_per_image`, `throughput`, `samples`, `noisy`, ... Every planned
    size not measured is in `skipped` as {batch, reason} (a key of SKIP_REASONS), so the rows
    and the skipped sizes together are the planned ones. A progress callback that cancels after
    the first row ends the sweep with `stopped == "cancelled"`; before it, it raises.
    """
    dev = resolve_device(device)
    check_number("budget_s", budget_s, 0, MAX_BUDGET_S)
    check_number("per_batch_s", per_batch_s, 0, MAX_BUDGET_S)
    sizes = list(batches)
    if not sizes:
        raise ConfigError("batches", batches, "one or more batch sizes")
    for b in sizes:
        check_batch(b)
    sizes = sorted(set(sizes))
    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    stopped = "done"
    start = time.perf_counter()
    with exclusive_measurement():  # one sweep is one measurement: nobody times in between its batches
        for i, b in enumerate(sizes):
            left = budget_s - (time.perf_counter() - start)
            if rows and not fits_cpu_memory(model_or_cfg, dev, b, dtype, input_shape):
                stopped = "memory"
                break
            if rows:
                last = rows[-1]
                predicted = last["median_ms"] / 1e3 * (b / last["batch"]) * (min_samples + 2)
                if predicted > left:
                    stopped = "time"
                    break
            step = None if progress is None else _sub_progress(progress, i, len(sizes))
            try:
                r = measure_latency(model_or_cfg, device=str(dev), batch=b, dtype=dtype,
                                    channels_last=channels_last, budget_s=max(0.0, min(per_batch_s, left)),
                                    min_samples=min_samples, threads=threads, input_shape=input_shape,
                                    progress=step, retry_smaller=False)
            except ConfigError as exc:
                if exc.key != "batch" or not rows:
                    raise
                stopped = "memory"
                break
            except LatencyError:
                if not rows:
                    raise
                stopped = "memory"
                break
            except MeasurementCancelled:
                if not rows:
                    raise
                stopped = "cancelled"
                break
            if r.gate_timed_out:
                warnings.append(f"batch {b} was timed while Lab training steps still ran: it may read slow")
            rows.append(sweep_row(r))
    measured = {r["batch"] for r in rows}
    skipped = [{"batch": b, "reason": stopped} for b in sizes if b not in measured]
    if progress is not None:
        progress(1.0)
    return SweepResult(rows, stopped, rows[0]["device"] if rows else dev.type,
                       rows[0]["device_name"] if rows else device_label(dev), warnings, skipped, float(budget_s))


def _sub_progress(progress: Progress, i: int, n: int) -> Progress:
    def report(fraction: float) -> Any:
        return progress((i + fraction) / n)
    return report


def skipped_text(skipped: Sequence[dict[str, Any]], budget_s: float | None = None) -> str:
    """One line per reason: "batch 512, 2048 not measured: the budget of 20 s ran out"."""
    by_reason: dict[str, list[int]] = {}
    for s in skipped:
        by_reason.setdefault(s["reason"], []).append(s["batch"])
    lines = []
    for reason, batches in by_reason.items():
        if reason == "time":
            why = f"the budget of {budget_s:g} s ran out" if budget_s is not None else SKIP_REASONS["time"]
        else:
            why = SKIP_REASONS.get(reason, reason)
        lines.append(f"batch {', '.join(map(str, sorted(batches)))} not measured: {why}")
    return "\n".join(lines)
