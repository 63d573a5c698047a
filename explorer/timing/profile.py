"""Where the time goes: a per-layer latency profile of the same model `measure_latency` times.

The copy is prepared as for a latency measurement (core.py: private, eval mode, on the device,
in the dtype and memory format, under the device lock and the Lab gate). Forward pre/post hooks on
each leaf module stamp entry and exit: `time.perf_counter_ns` on the CPU, `torch.cuda.Event`s on
CUDA, read after a synchronize at the end of the pass. A module's time is exit minus entry.
A tensor op the trace places between two modules (the residual addition, the flatten) is credited
with the gap between them ("layer1.0.add"); every other gap (Python calling the next module, the
hooks themselves) is in no row and reported as `unattributed_ms`.
Profiled passes alternate with plain ones (no hooks) on the same copy: `whole_ms` is the plain
median, `coverage` the rows' sum over it, `overhead` how much slower a profiled pass ran. Hooks
live for one pass on the private copy; nothing global is patched. torch.profiler, measured as the
alternative (benchmarks/bench_profile.py), records process-wide (other threads' ops too), gives
aten ops, not module paths, and takes tens of ms per pass to tabulate.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from explorer.arch.config import ArchConfig
from explorer.errors import ConfigError
from explorer.limits import PROFILE_BUDGET_S
from explorer.records import Trace
from explorer.timing.core import (
    OOM_ERRORS, Run, TimingSettings, check_number, check_run, config_of, forward_failures, on_private_copy,
    out_of_memory, settings_of,
)
from explorer.timing.passes import Clock, Progress, Spread, percentile, timed_pass, timing_state, warm_up
from explorer.timing.results import ProfileResult, ProfileRow, StageTime
from explorer.trace import trace

COVERAGE_TOLERANCE = 0.15   # rows' sum within this share of the whole-model median needs no note
# trace kinds that are tensor ops, not modules (SE / ECA: the squeeze's mean and the product x * s)
_FUNCTIONAL = ("add", "flatten", "squeeze", "mul")


def profile_latency(cfg_or_model: ArchConfig | nn.Module, settings: TimingSettings | None = None, *,
                    min_passes: int = 5, max_passes: int = 200, progress: Progress | None = None,
                    **options: Any) -> ProfileResult:
    """Time every leaf module and traced tensor op of one forward pass, on the latency view's device.

    Args:
        cfg_or_model: an ArchConfig (checked against the size limits, built on the device) or a
            module (deep-copied; the original is never hooked nor moved).
        settings, options: as for `measure_latency` (device, batch, dtype, channels_last,
            threads, input_shape, ...); `budget_s` (default PROFILE_BUDGET_S) is wall-clock
            seconds for warm-up plus the interleaved plain and profiled passes, at least
            `min_passes` of each run even when they overrun it. Never compiled: the hooks
            need the eager model.
        min_passes, max_passes: bounds on the profiled passes.
        progress: called with the fraction done; returning False stops with MeasurementCancelled.

    Raises:
        ConfigError for invalid settings, LatencyError when the model cannot run,
        MeasurementCancelled when the progress callback stops it.
    """
    s = settings_of(settings, options, budget_s=PROFILE_BUDGET_S)
    if s.compile:
        raise ConfigError("compile", True, "false for a profile", "its hooks need the eager (uncompiled) model")
    check_number("min_passes", min_passes, 1, 10_000, integer=True)
    check_number("max_passes", max_passes, min_passes, 10_000, integer=True)
    run = check_run(cfg_or_model, s.with_options(min_samples=min_passes, max_samples=max_passes))
    cfg = config_of(cfg_or_model)
    tr = trace(cfg) if cfg is not None else None  # names the ops of a ResNet
    runs, wait = on_private_copy(cfg_or_model, run, s.batch, lambda model: _profile_copy(model, run, s.batch, progress))
    return _result(run, s.batch, tr, runs, [wait.note()] if wait.timed_out else [])


def _profile_copy(model: nn.Module, run: Run, batch: int, progress: Progress | None) -> "_Runs":
    """The profile's passes on the copy; no retry at a smaller batch: it is of the batch asked for."""
    try:
        with forward_failures(run.name):
            return _run(model, run, batch, progress)
    except OOM_ERRORS:
        pass  # raised below, once the except block has released its frames (and tensors)
    raise out_of_memory(run, batch)


@dataclass
class _Runs:
    """Raw material of one profile: per pass, the leaf calls and gaps; the plain passes' times."""

    leaves: list[str]                       # leaf module paths, hook slot order
    kinds: dict[str, str]                   # leaf path -> class name, lower case
    calls: list[list[tuple[int, float, float]]] = field(default_factory=list)  # per pass: (slot, enter, exit) ms
    spans: list[float] = field(default_factory=list)    # per profiled pass: first enter .. last exit, ms
    whole: list[float] = field(default_factory=list)    # plain passes, ms
    elapsed_s: float = 0.0


class _Stamps:
    """Hook callbacks stamping (slot, time) on entry to and exit from each leaf of one copy."""

    def __init__(self, dev: torch.device) -> None:
        self.cuda = dev.type == "cuda"
        self.marks: list[tuple[int, Any]] = []
        self.pool: list[torch.cuda.Event] = []  # CUDA events, reused pass after pass

    def stamp(self, slot: int) -> None:
        if not self.cuda:
            self.marks.append((slot, time.perf_counter_ns()))
            return
        if len(self.marks) == len(self.pool):
            self.pool.append(torch.cuda.Event(enable_timing=True))
        ev = self.pool[len(self.marks)]
        ev.record()
        self.marks.append((slot, ev))

    def hooks(self, slot: int) -> tuple[Callable, Callable]:
        stamp = self.stamp
        return (lambda _mod, _args: stamp(slot)), (lambda _mod, _args, _out: stamp(slot))

    def read(self) -> list[tuple[int, float]]:
        """(slot, ms since the first mark) of the pass just run (after a CUDA synchronize)."""
        marks, self.marks = self.marks, []
        if not marks:
            return []
        first = marks[0][1]
        if self.cuda:
            return [(slot, first.elapsed_time(ev)) for slot, ev in marks]
        return [(slot, (ns - first) / 1e6) for slot, ns in marks]


def _run(model: nn.Module, run: Run, batch: int, progress: Progress | None) -> _Runs:
    """Warm-up, then plain and hooked passes in turn until the budget or max_passes."""
    dev = run.dev
    x = run.input(batch)  # (B, C, H, W), as the latency measurement times
    leaves = [(path, m) for path, m in model.named_modules() if path and not any(True for _ in m.children())]
    runs = _Runs(leaves=[p for p, _ in leaves], kinds={p: type(m).__name__.lower() for p, m in leaves})
    stamps = _Stamps(dev)
    with timing_state(dev, run.threads), torch.inference_mode():
        clock = Clock(run.budget_s, run.min_samples, run.max_samples, progress)
        clock.report(0.0, force=True)
        warm_up(model, x, dev, clock, run.warmup)
        _hooked_pass(model, x, dev, leaves, stamps)  # the hooks' own first call, untimed
        t0 = clock.elapsed()
        while clock.more(len(runs.calls)):
            runs.whole.append(timed_pass(model, x, dev))
            marks = _hooked_pass(model, x, dev, leaves, stamps)
            runs.calls.append(_calls(marks))
            runs.spans.append(marks[-1][1] - marks[0][1] if marks else 0.0)
            clock.report(clock.fraction(len(runs.calls)))
        runs.elapsed_s = clock.elapsed() - t0
        clock.report(1.0, force=True)
    return runs


def _hooked_pass(model: nn.Module, x: torch.Tensor, dev: torch.device, leaves: list[tuple[str, nn.Module]],
                 stamps: _Stamps) -> list[tuple[int, float]]:
    """One pass with entry/exit hooks on every leaf; the hooks are gone when it returns."""
    handles = []
    try:
        for slot, (_path, mod) in enumerate(leaves):
            enter, leave = stamps.hooks(slot)
            handles.append(mod.register_forward_pre_hook(enter))
            handles.append(mod.register_forward_hook(leave))
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        model(x)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
    finally:
        for h in handles:
            h.remove()
    return stamps.read()


def _calls(marks: list[tuple[int, float]]) -> list[tuple[int, float, float]]:
    """Pair entry and exit marks into (slot, enter ms, exit ms); a leaf has no children, so no nesting."""
    return [(slot, enter, leave) for (slot, enter), (_same, leave) in zip(marks[::2], marks[1::2])]


def _result(run: Run, batch: int, tr: Trace | None, runs: _Runs, notes: list[str]) -> ProfileResult:
    per_pass, unattributed, where = _attribute(runs, tr)
    rows_ms = {key: percentile(sorted(p.get(key, 0.0) for p in per_pass), 50) for key in where}
    total = sum(rows_ms.values())
    rows = tuple(ProfileRow(module=key, kind=where[key][0], stage=where[key][1], unit=where[key][2],
                            ms=ms, share=ms / total if total > 0 else 0.0) for key, ms in rows_ms.items())
    whole = Spread.of(runs.whole)
    spans = percentile(sorted(runs.spans), 50)
    gap = percentile(sorted(unattributed), 50)
    stages: dict[str, float] = {}
    for r in rows:  # in execution order, so the stages come in network order
        stages[r.stage] = stages.get(r.stage, 0.0) + r.ms
    return ProfileResult(
        name=run.name, device=run.device, device_name=run.label(),
        method="forward hooks, CUDA events" if run.dev.type == "cuda" else "forward hooks, perf_counter_ns",
        batch=batch, input_shape=(batch, *run.shape), dtype=run.dtype, channels_last=run.channels_last,
        threads=run.threads, rows=rows, total_ms=total, whole_ms=whole.median, instrumented_ms=spans,
        unattributed_ms=gap, coverage=total / whole.median if whole.median > 0 else float("nan"),
        overhead=spans / whole.median - 1 if whole.median > 0 else float("nan"), passes=len(runs.calls),
        noisy=whole.noisy, note=_note(total, whole.median, gap, spans, whole.noisy),
        torch_version=torch.__version__, budget_s=run.budget_s, elapsed_s=runs.elapsed_s, warnings=tuple(notes),
        stages=tuple(StageTime(st, ms, ms / total if total > 0 else 0.0) for st, ms in stages.items()),
    )


def _attribute(runs: _Runs, tr: Trace | None) -> tuple[list[dict[str, float]], list[float], dict[str, tuple]]:
    """Per pass: ms per row key; the unattributed gaps; each row key's (kind, stage, unit) in order.

    A gap between two leaf calls goes to the traced tensor ops between those modules (split
    evenly when there are several); gaps with none between them stay unattributed.
    """
    pos: dict[str, int] = {}
    functional: list[tuple[int, str]] = []      # (trace position, node id) of tensor ops
    info: dict[str, tuple[str, str, str]] = {}  # trace node id -> (kind, stage, unit)
    if tr is not None:
        for i, n in enumerate(tr.nodes):
            pos.setdefault(n.id, i)
            info[n.id] = (n.kind, n.stage or n.role, n.unit)
            if n.kind in _FUNCTIONAL:
                functional.append((i, n.id))
    between: dict[tuple[int, int], list[str]] = {}
    where: dict[str, tuple[str, str, str]] = {}
    per_pass, unattributed = [], []
    for calls in runs.calls:
        ms: dict[str, float] = {}
        gaps = 0.0
        for k, (slot, enter, leave) in enumerate(calls):
            path = runs.leaves[slot]
            where.setdefault(path, info.get(path) or (runs.kinds[path], path.split(".")[0], ""))
            ms[path] = ms.get(path, 0.0) + leave - enter
            if k + 1 == len(calls):
                break
            nxt = calls[k + 1][0]
            ops = between.get((slot, nxt))
            if ops is None:
                a, b = pos.get(path), pos.get(runs.leaves[nxt])
                ops = between[(slot, nxt)] = ([op for i, op in functional if a < i < b]
                                              if a is not None and b is not None else [])
            gap = calls[k + 1][1] - leave
            if not ops:
                gaps += gap
            for op in ops:
                where.setdefault(op, info[op])
                ms[op] = ms.get(op, 0.0) + gap / len(ops)
        per_pass.append(ms)
        unattributed.append(gaps)
    order = {key: pos.get(key, len(pos)) for key in where}
    where = dict(sorted(where.items(), key=lambda kv: order[kv[0]]))  # execution order (stable for others)
    return per_pass, unattributed or [0.0], where


def _note(total: float, whole: float, gap: float, spans: float, noisy: bool) -> str:
    """Why the rows' sum is more than COVERAGE_TOLERANCE off the whole-model median ("" if it is not).

    whole - total = gap + (spans - total - gap) - (spans - whole): time in no row, time the
    per-module medians leave out, and the hooks' overhead; each part is named when it matters.
    """
    if whole <= 0 or abs(total / whole - 1) <= COVERAGE_TOLERANCE:
        return ""
    off, rest, slow = total / whole - 1, spans - total - gap, spans / whole - 1
    why = [f"{gap:.3g} ms per pass went between modules outside any traced op (Python calling the next "
           f"module, the hooks themselves) and is in no row"] if gap > 0.01 * whole else []
    if rest > 0.05 * whole:
        why.append(f"{rest:.3g} ms per profiled pass landed on different modules in different passes "
                   f"(other work on the machine interrupting this one{', the passes were noisy' if noisy else ''}): "
                   f"a median per module leaves it out, the median of whole passes keeps it")
    elif rest < -0.05 * whole:
        why.append(f"the per-module medians add up to {-rest:.3g} ms more than a typical profiled pass"
                   f"{' (the passes were noisy)' if noisy else ''}")
    if abs(slow) > 0.05:
        cause = "the hooks' overhead" if slow > 0 else "the load on the machine changed"
        why.append(f"a profiled pass ran {abs(slow):.0%} {'slower' if slow > 0 else 'faster'} than a plain one "
                   f"({spans:.3g} ms: {cause})")
    return (f"the per-module times add up to {total:.3g} ms, {abs(off):.0%} {'below' if off < 0 else 'above'} "
            f"the whole-model median of {whole:.3g} ms: " + "; ".join(why or ["the passes varied"]))
