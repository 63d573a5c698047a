"""Device-aware latency: how long one forward pass of a built network takes, and how it spreads.

Method (the same on every device, so numbers compare):
* the model is deep-copied onto the device in eval mode; the caller's model is never touched
  (the app shares cached models between users);
* the device lock is held from copy to last sample and Lab training pauses meanwhile (gate.py);
  when training steps in flight outlast the gate's wait, the result says so;
* warm-up passes first, then individual passes are timed one by one under
  `torch.inference_mode()` with the garbage collector off (passes.py);
* percentiles are taken over the individual samples; `noisy` flags a spread (IQR) above 20%
  of the median so a reader knows to distrust small differences.
"""
from __future__ import annotations

import copy
import gc
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

from explorer.arch.builder import build_model
from explorer.arch.config import ArchConfig
from explorer.errors import ConfigError, LatencyError
from explorer.facts.costs import check_batch
from explorer.facts.limits import check_limits
from explorer.timing.devices import DTYPES, check_dtype, cpu_has_native_bf16, device_label, resolve_device
from explorer.timing.gate import GateWait, exclusive_measurement
from explorer.timing.memory import check_cpu_memory
from explorer.timing.passes import Clock, Progress, percentile, sync, time_passes, timing_state

NOISY_IQR = 0.20            # IQR / median above which a result is flagged noisy
FEW_SAMPLES = 10            # below this many samples the percentiles are rough
MAX_BUDGET_S = 600.0


@dataclass(frozen=True)
class LatencyResult:
    """One latency measurement: statistics over individual timed forward passes."""

    name: str                       # model label (config name or class name)
    device: str                     # "cpu" | "cuda" | "cuda:N"
    device_name: str                # GPU model and memory, or CPU model and thread count
    batch: int                      # images per pass actually measured
    requested_batch: int            # as asked; larger than `batch` after an out-of-memory retry
    input_shape: tuple[int, ...]    # (B, C, H, W) of the timed input
    median_ms: float                # per pass
    p10_ms: float
    p90_ms: float
    iqr_ms: float                   # p75 - p25
    min_ms: float
    mean_ms: float
    throughput: float               # images / s at the median
    samples: int                    # timed passes
    warmup: int                     # untimed passes before them (compile pass excluded)
    noisy: bool                     # IQR above NOISY_IQR of the median
    dtype: str                      # fp32 | bf16 | fp16
    channels_last: bool
    compile: bool
    compile_s: float | None         # first (compiling) pass, seconds; None without compile
    threads: int                    # CPU threads torch used
    torch_version: str
    peak_memory_bytes: int | None   # CUDA: peak allocated during timing above weights + input
    budget_s: float
    elapsed_s: float                # warm-up + timing wall time
    gate_timed_out: bool = False    # Lab training steps still ran when timing began (see warnings)
    warnings: tuple[str, ...] = ()
    times_ms: tuple[float, ...] = field(default=(), repr=False)

    def to_dict(self, include_times: bool = False) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["warnings"] = list(self.warnings)
        if include_times:
            d["times_ms"] = list(self.times_ms)
        else:
            del d["times_ms"]
        return d


@dataclass(frozen=True)
class _Settings:
    """One measurement's options, checked once on entry (the batch may shrink on retry)."""

    dev: torch.device
    dtype: str
    channels_last: bool
    compile: bool
    budget_s: float             # warm-up plus timing, seconds
    warmup: int                 # least untimed passes
    min_samples: int
    max_samples: int
    threads: int                # CPU threads during the timed section
    shape: tuple[int, ...]      # (C, H, W) of one input image

    def input(self, batch: int) -> torch.Tensor:
        """The fixed input of every timed pass: seeded noise (B, C, H, W) on the device, in the
        dtype and memory format asked for (the profile times the very same)."""
        gen = torch.Generator(device="cpu").manual_seed(0)
        x = torch.randn((batch, *self.shape), generator=gen).to(device=self.dev, dtype=DTYPES[self.dtype])
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x


@dataclass(frozen=True)
class _Timed:
    """What the timed section of one attempt produced."""

    batch: int                  # images per pass in this attempt
    times_ms: list[float]
    warmup: int                 # untimed passes run
    compile_s: float | None
    peak_memory_bytes: int | None
    elapsed_s: float


def check_number(key: str, value: Any, lo: float, hi: float, integer: bool = False) -> None:
    """ConfigError unless `value` is a number (an integer when asked) from lo to hi."""
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not lo <= value <= hi or value != value:
        kind = "an integer" if integer else "a number"
        raise ConfigError(key, value, f"{kind} from {lo:g} to {hi:g}")


def _input_shape(model_or_cfg: Any, input_shape: Sequence[int] | None) -> tuple[int, ...]:
    """(C, H, W) of one input image: given, or read from the config (or a built ResNet's)."""
    if input_shape is not None:
        shape = tuple(input_shape)
        if not shape or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape):
            raise ConfigError("input_shape", input_shape, "positive integers, e.g. (3, 224, 224)")
        return shape
    cfg = model_or_cfg if isinstance(model_or_cfg, ArchConfig) else getattr(model_or_cfg, "config", None)
    if isinstance(cfg, ArchConfig):
        return (cfg.in_channels, cfg.input_size, cfg.input_size)
    raise ConfigError("input_shape", None, "(C, H, W) of one image: this model carries no config")


def _model_name(model_or_cfg: Any) -> str:
    cfg = model_or_cfg if isinstance(model_or_cfg, ArchConfig) else getattr(model_or_cfg, "config", None)
    return cfg.name if isinstance(cfg, ArchConfig) else type(model_or_cfg).__name__


def measure_latency(
    model_or_cfg: ArchConfig | nn.Module,
    device: str = "auto",
    batch: int = 1,
    dtype: str = "fp32",
    channels_last: bool = False,
    compile: bool = False,
    budget_s: float = 3.0,
    warmup: int | None = None,
    min_samples: int = 5,
    max_samples: int = 500,
    threads: int | None = None,
    input_shape: Sequence[int] | None = None,
    progress: Progress | None = None,
    retry_smaller: bool = True,
) -> LatencyResult:
    """Time forward passes of a network and report median, spread and throughput.

    Args:
        model_or_cfg: an ArchConfig (checked against the server's size limits, then built fresh
            on the device) or a module (deep-copied; the original keeps its weights, device,
            dtype and training flag).
        device: "auto" (CUDA when present, else CPU), "cpu", "cuda" or "cuda:N".
        batch: images per pass (1..4096).
        dtype: "fp32"; "bf16" (CUDA where supported, CPU); "fp16" (CUDA only).
        channels_last: NHWC memory format for weights and input.
        compile: run `torch.compile` first; its time is reported apart as `compile_s`.
        budget_s: wall-clock seconds for warm-up plus timing (model copy and compile excluded).
            At least `min_samples` passes are timed even when they overrun it.
        warmup: untimed passes before timing (default 2 on CPU, 5 on CUDA; more while
            they fit in a tenth of the budget).
        min_samples, max_samples: bounds on the timed passes.
        threads: CPU threads for torch during the measurement (default: torch's current count).
        input_shape: (C, H, W) of one image; read from the config when the model is a ResNet.
        progress: called with the fraction done (0..1); returning False or raising
            MeasurementCancelled stops the measurement with MeasurementCancelled.
        retry_smaller: on CUDA out-of-memory, halve the batch and try again (with a warning).

    Raises:
        ConfigError for invalid settings or a config over the size limits, LatencyError when no
        measurement could be made, MeasurementCancelled when the progress callback stops it.
    """
    dev = check_run(device, batch, dtype, budget_s)
    check_number("min_samples", min_samples, 1, 100_000, integer=True)
    check_number("max_samples", max_samples, min_samples, 100_000, integer=True)
    if warmup is None:
        warmup = 5 if dev.type == "cuda" else 2
    check_number("warmup", warmup, 0, 1000, integer=True)
    n_threads = check_target(model_or_cfg, threads, channels_last=channels_last, compile=compile)
    s = _Settings(dev=dev, dtype=dtype, channels_last=channels_last, compile=compile, budget_s=float(budget_s),
                  warmup=warmup, min_samples=min_samples, max_samples=max_samples, threads=n_threads,
                  shape=_input_shape(model_or_cfg, input_shape))
    name = _model_name(model_or_cfg)

    notes: list[str] = []
    if dtype == "bf16" and dev.type == "cpu" and not cpu_has_native_bf16():
        notes.append("this CPU has no native bf16 instructions: bf16 is emulated and usually slower than fp32")

    with exclusive_measurement() as wait:
        if wait.timed_out:
            notes.append(wait.note())
        model = prepare_checked(model_or_cfg, name, s, batch)
        try:
            timed = _measure_with_retry(model, name, s, batch, progress, retry_smaller, notes)
        finally:
            del model
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    return _result(name, s, batch, timed, notes, wait)


def check_run(device: str, batch: int, dtype: str, budget_s: float) -> torch.device:
    """The device of a timed run, once its batch, dtype and budget are valid (ConfigError otherwise)."""
    dev = resolve_device(device)
    check_batch(batch)
    check_dtype(dtype, dev)
    check_number("budget_s", budget_s, 0, MAX_BUDGET_S)
    return dev


def check_target(model_or_cfg: Any, threads: int | None, **flags: bool) -> int:
    """The thread count of a timed run, once the flags and what is timed are valid; a config
    must also be within the server's size limits, which apply where work starts."""
    n_threads = torch.get_num_threads() if threads is None else threads
    check_number("threads", n_threads, 1, max(os.cpu_count() or 1, 1) * 4, integer=True)
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise ConfigError(key, value, "true or false")
    if not isinstance(model_or_cfg, (ArchConfig, nn.Module)):
        raise ConfigError("model", type(model_or_cfg).__name__, "an ArchConfig or a torch.nn.Module")
    if isinstance(model_or_cfg, ArchConfig):
        check_limits(model_or_cfg)
    return n_threads


def prepare_checked(model_or_cfg: ArchConfig | nn.Module, name: str, s: _Settings, batch: int) -> nn.Module:
    """The private device copy a measurement times, once it is known to fit.

    A config at its own input size is checked against free CPU memory before any weight exists;
    anything else once its private copy does. Call while holding `exclusive_measurement()`.
    """
    planned = isinstance(model_or_cfg, ArchConfig) and s.shape == _input_shape(model_or_cfg, None)
    if s.dev.type == "cpu" and planned:
        check_cpu_memory(model_or_cfg, name, s.shape, batch, s.dtype, s.dev)
    try:
        model = _prepare(model_or_cfg, s)
    except _oom_types():
        model = None
    if model is None:
        torch.cuda.empty_cache()
        raise LatencyError(f"{name}: the weights do not fit in the memory of {device_label(s.dev)}")
    if s.dev.type == "cpu" and not planned:
        check_cpu_memory(model, name, s.shape, batch, s.dtype, s.dev)
    return model


def _prepare(model_or_cfg: ArchConfig | nn.Module, s: _Settings) -> nn.Module:
    """A private eval-mode copy on the device in the dtype; the caller's model is left as it is."""
    if isinstance(model_or_cfg, ArchConfig):
        with torch.device(s.dev):
            model = build_model(model_or_cfg)
    elif any(t.is_meta for t in _tensors_of(model_or_cfg)):
        raise ConfigError("model", "meta tensors", "a model with real weights (built off the meta device)")
    else:
        model = copy.deepcopy(model_or_cfg)
    model = model.to(device=s.dev, dtype=DTYPES[s.dtype]).eval()
    model.requires_grad_(False)
    if s.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _tensors_of(model: nn.Module) -> Iterator[torch.Tensor]:
    yield from model.parameters()
    yield from model.buffers()


def _oom_types() -> tuple[type[BaseException], ...]:
    return tuple({getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError), torch.cuda.OutOfMemoryError})


def _measure_with_retry(model: nn.Module, name: str, s: _Settings, batch: int, progress: Progress | None,
                        retry_smaller: bool, notes: list[str]) -> _Timed:
    """Measure at `batch`; on CUDA out-of-memory halve it and retry, saying so in `notes`."""
    current = batch
    while True:
        oom = False
        try:
            with (torch.cuda.device(s.dev) if s.dev.type == "cuda" else nullcontext()):  # events on dev's stream
                return _measure_once(model, s, current, progress)
        except _oom_types():
            oom = True  # leave the except block first so its frames (and tensors) are freed
        except LatencyError:
            raise
        except RuntimeError as exc:  # e.g. an input shape the module cannot take
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise LatencyError(f"{name}: the forward pass failed: {first[:200]}") from None
        if oom:
            gc.collect()
            torch.cuda.empty_cache()
            if current == 1 or not retry_smaller:
                raise LatencyError(f"{name}: batch {current} does not fit in the memory of "
                                   f"{device_label(s.dev)}" + ("" if current == 1 else "; try a smaller batch"))
            notes.append(f"batch {current} ran out of GPU memory; measured at batch {current // 2} instead")
            current //= 2


def _measure_once(model: nn.Module, s: _Settings, batch: int, progress: Progress | None) -> _Timed:
    dev = s.dev
    x = s.input(batch)  # (B, C, H, W)
    run: Callable = model
    compile_s = None
    with timing_state(dev, s.threads), torch.inference_mode():
        if s.compile:
            run, compile_s = _compile(model, x, dev)
        clock = Clock(s.budget_s, s.max_samples, progress)
        clock.report(0.0, force=True)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
        times, n_warm = time_passes(run, x, dev, clock, s.warmup, s.min_samples, s.max_samples)
        elapsed = clock.elapsed()
        peak = torch.cuda.max_memory_allocated(dev) - base if dev.type == "cuda" else None
        clock.report(1.0, force=True)
    return _Timed(batch, times, n_warm, compile_s, peak, elapsed)


def _compile(model: nn.Module, x: torch.Tensor, dev: torch.device) -> tuple[Callable, float]:
    """torch.compile the copy and run its first (compiling) pass; returns it and the seconds taken."""
    t0 = time.perf_counter()
    try:
        compiled = torch.compile(model, dynamic=False)
        compiled(x)
        sync(dev)
    except _oom_types():
        raise
    except Exception as exc:  # the compiler stack raises many kinds; the user needs one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LatencyError(f"torch.compile failed: {first[:200]}") from None
    return compiled, time.perf_counter() - t0


def _result(name: str, s: _Settings, requested: int, t: _Timed, notes: list[str], wait: GateWait) -> LatencyResult:
    ordered = sorted(t.times_ms)
    median = percentile(ordered, 50)
    iqr = percentile(ordered, 75) - percentile(ordered, 25)
    notes = list(notes)
    if len(ordered) < FEW_SAMPLES:
        notes.append(f"only {len(ordered)} samples fit the {s.budget_s:g} s budget: the percentiles are rough")
    dev = s.dev
    return LatencyResult(
        name=name,
        device=str(dev) if dev.type == "cuda" and dev.index else dev.type,
        device_name=device_label(dev, s.threads),
        batch=t.batch, requested_batch=requested, input_shape=(t.batch, *s.shape),
        median_ms=median, p10_ms=percentile(ordered, 10), p90_ms=percentile(ordered, 90), iqr_ms=iqr,
        min_ms=ordered[0], mean_ms=sum(ordered) / len(ordered),
        throughput=t.batch * 1e3 / median if median > 0 else float("inf"),
        samples=len(ordered), warmup=t.warmup, noisy=iqr > NOISY_IQR * median,
        dtype=s.dtype, channels_last=s.channels_last, compile=s.compile, compile_s=t.compile_s,
        threads=s.threads, torch_version=torch.__version__, peak_memory_bytes=t.peak_memory_bytes,
        budget_s=s.budget_s, elapsed_s=t.elapsed_s, gate_timed_out=wait.timed_out,
        warnings=tuple(notes), times_ms=tuple(t.times_ms),
    )
