"""Device-aware latency: how long one forward pass of a built network takes, and how it spreads.

Method (the same on every device, so numbers compare):
* the model is deep-copied onto the device in eval mode; the caller's model is never touched
  (the app shares cached models between users);
* a process-wide lock is held from copy to last sample, so two callers never time over each
  other nor steal each other's cores, and Lab training pauses between its steps meanwhile;
* warm-up passes first (cudnn.benchmark picks its kernels there on CUDA), then individual
  passes are timed one by one under `torch.inference_mode()` with the garbage collector off:
  on CUDA with events around the pass after a synchronize (no queued work overlaps a
  sample), on CPU with `time.perf_counter` around the pass at an explicit thread count;
* percentiles are taken over the individual samples; `noisy` flags a spread (IQR) above 20%
  of the median so a reader knows to distrust small differences.
"""
from __future__ import annotations

import copy
import gc
import math
import os
import platform
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

from explorer.arch.builder import build_model
from explorer.arch.config import ArchConfig
from explorer.facts.costs import check_batch, measure_costs, trace_memory
from explorer.errors import ConfigError, LatencyError

DEVICES = ("auto", "cpu", "cuda")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
NOISY_IQR = 0.20            # IQR / median above which a result is flagged noisy
FEW_SAMPLES = 10            # below this many samples the percentiles are rough
MAX_BUDGET_S = 600.0
MEMORY_SHARE = 0.5          # a CPU batch may use at most this share of the free memory
SWEEP_BATCHES = (1, 8, 32, 128, 512, 2048)

Progress = Callable[[float], Any]


class MeasurementCancelled(Exception):
    """Raised when the progress callback asks to stop (returns False or raises this)."""


_DEVICE_LOCK = threading.RLock()


def device_lock() -> threading.RLock:
    """The process-wide lock every timing (and memory measurement) holds."""
    return _DEVICE_LOCK


# Lab training shares the cores with timing. While a measurement runs, training waits between
# its steps; a measurement starts only once the training steps in flight have finished.
_GATE = threading.Condition()
_gate_state = {"measuring": 0, "training": 0}
STEP_WAIT_S = 60.0          # longest a measurement waits for training steps in flight


@contextmanager
def exclusive_measurement() -> Iterator[None]:
    """Hold the device lock and keep Lab training paused for the duration (re-entrant)."""
    with _DEVICE_LOCK:
        with _GATE:
            _gate_state["measuring"] += 1
            _GATE.wait_for(lambda: _gate_state["training"] == 0, timeout=STEP_WAIT_S)
        try:
            yield
        finally:
            with _GATE:
                _gate_state["measuring"] -= 1
                _GATE.notify_all()


def begin_training_step(should_stop: Callable[[], bool] | None = None, poll_s: float = 0.1) -> bool:
    """Wait until no measurement runs, then count one training step in flight.

    Returns False (nothing counted) when `should_stop` turns true while waiting. Every True
    must be matched by `end_training_step()`.
    """
    with _GATE:
        while _gate_state["measuring"]:
            if should_stop is not None and should_stop():
                return False
            _GATE.wait(poll_s)
        _gate_state["training"] += 1
        return True


def end_training_step() -> None:
    with _GATE:
        _gate_state["training"] -= 1
        _GATE.notify_all()


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


# -- devices -------------------------------------------------------------------------------
def available_devices() -> list[str]:
    """Devices this process can time on, best first: "cuda" (and "cuda:N" beyond the first), "cpu"."""
    devices = []
    if torch.cuda.is_available():
        devices.append("cuda")
        devices += [f"cuda:{i}" for i in range(1, torch.cuda.device_count())]
    devices.append("cpu")
    return devices


def resolve_device(device: str) -> torch.device:
    """`auto` -> CUDA when present, else CPU; raises ConfigError for a device that is not here."""
    if not isinstance(device, str):
        raise ConfigError("device", device, "one of " + ", ".join(DEVICES))
    if device == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError("device", device, "auto or cpu: no CUDA GPU is visible to torch here")
        index = device.partition(":")[2]
        if not index:
            return torch.device("cuda", torch.cuda.current_device())
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise ConfigError("device", device, "one of " + ", ".join(available_devices()))
        return torch.device("cuda", int(index))
    raise ConfigError("device", device, "one of " + ", ".join(DEVICES))


def cpu_model_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_label(device: str | torch.device, threads: int | None = None) -> str:
    """Human label: "NVIDIA H100 80GB HBM3, 79.1 GiB" or "AMD EPYC, 2 threads"."""
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"{props.name}, {props.total_memory / 2**30:.1f} GiB"
    n = threads if threads is not None else torch.get_num_threads()
    return f"{cpu_model_name()}, {n} thread{'s' if n != 1 else ''}"


def _cpu_has_native_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read(1 << 16)
    except OSError:
        return True  # unknown: do not warn
    return any(flag in text for flag in ("avx512_bf16", "amx_bf16", " bf16"))


# -- settings ------------------------------------------------------------------------------
def _check_dtype(dtype: Any, dev: torch.device) -> None:
    if dtype not in DTYPES:
        raise ConfigError("dtype", dtype, "one of " + ", ".join(DTYPES))
    if dev.type == "cpu" and dtype == "fp16":
        raise ConfigError("dtype", dtype, "fp32 or bf16 on the CPU", "fp16 needs a CUDA GPU")
    if dev.type == "cuda" and dtype == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("dtype", dtype, "fp32 or fp16 on this GPU", "it has no bf16 support")


def _check_number(key: str, value: Any, lo: float, hi: float, integer: bool = False) -> None:
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


def _free_memory_bytes(dev: torch.device) -> int | None:
    """Memory free for activations on `dev` (None when unknown)."""
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
        return free
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


# -- timing --------------------------------------------------------------------------------
def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of already sorted values."""
    if not sorted_values:
        raise ValueError("no values")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


class _Clock:
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


@contextmanager
def _timing_state(dev: torch.device, threads: int) -> Iterator[None]:
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


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _time_passes(model: Callable, x: torch.Tensor, dev: torch.device, clock: _Clock,
                 warmup: int, min_samples: int, max_samples: int) -> tuple[list[float], int]:
    """Warm-up passes, then individually timed passes until the budget or max_samples."""
    budget = clock.budget_s
    n_warm = 0
    # At least `warmup` passes, more while they take under a tenth of the budget (CUDA lazy
    # init and cudnn autotuning, CPU caches), never more than 50.
    while n_warm < warmup or (clock.elapsed() < 0.1 * budget and n_warm < 50):
        model(x)
        _sync(dev)
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
            clock.report(_fraction(clock, len(times)))
    else:
        perf = time.perf_counter
        while len(times) < max_samples and (len(times) < min_samples or clock.elapsed() < budget):
            t0 = perf()
            model(x)
            times.append((perf() - t0) * 1e3)
            clock.report(_fraction(clock, len(times)))
    return times, n_warm


def _fraction(clock: _Clock, n: int) -> float:
    done = max(clock.elapsed() / max(clock.budget_s, 1e-9), n / clock.max_samples)
    return 0.1 + 0.9 * min(done, 1.0)


def _prepare(model_or_cfg: Any, dev: torch.device, dtype: str, channels_last: bool) -> nn.Module:
    """A private eval-mode copy on `dev` in `dtype`; the caller's model is left as it is."""
    if isinstance(model_or_cfg, ArchConfig):
        with torch.device(dev):
            model = build_model(model_or_cfg)
    elif isinstance(model_or_cfg, nn.Module):
        if any(t.is_meta for t in _tensors_of(model_or_cfg)):
            raise ConfigError("model", "meta tensors", "a model with real weights (built off the meta device)")
        model = copy.deepcopy(model_or_cfg)
    else:
        raise ConfigError("model", type(model_or_cfg).__name__, "an ArchConfig or a torch.nn.Module")
    model = model.to(device=dev, dtype=DTYPES[dtype]).eval()
    model.requires_grad_(False)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _tensors_of(model: nn.Module) -> Iterator[torch.Tensor]:
    yield from model.parameters()
    yield from model.buffers()


def _oom_types() -> tuple[type[BaseException], ...]:
    return tuple({getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError), torch.cuda.OutOfMemoryError})


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
        model_or_cfg: an ArchConfig (built fresh on the device) or a module (deep-copied; the
            original keeps its weights, device, dtype and training flag).
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
        ConfigError for invalid settings, LatencyError when no measurement could be made,
        MeasurementCancelled when the progress callback stops it.
    """
    dev = resolve_device(device)
    check_batch(batch)
    _check_dtype(dtype, dev)
    _check_number("budget_s", budget_s, 0, MAX_BUDGET_S)
    _check_number("min_samples", min_samples, 1, 100_000, integer=True)
    _check_number("max_samples", max_samples, min_samples, 100_000, integer=True)
    if warmup is None:
        warmup = 5 if dev.type == "cuda" else 2
    _check_number("warmup", warmup, 0, 1000, integer=True)
    n_threads = torch.get_num_threads() if threads is None else threads
    _check_number("threads", n_threads, 1, max(os.cpu_count() or 1, 1) * 4, integer=True)
    for key, value in (("channels_last", channels_last), ("compile", compile)):
        if not isinstance(value, bool):
            raise ConfigError(key, value, "true or false")
    if not isinstance(model_or_cfg, (ArchConfig, nn.Module)):
        raise ConfigError("model", type(model_or_cfg).__name__, "an ArchConfig or a torch.nn.Module")
    shape = _input_shape(model_or_cfg, input_shape)

    warnings: list[str] = []
    if dtype == "bf16" and dev.type == "cpu" and not _cpu_has_native_bf16():
        warnings.append("this CPU has no native bf16 instructions: bf16 is emulated and usually slower than fp32")

    with exclusive_measurement():
        # A config at its own input size is checked before any weight exists; anything else once
        # its private copy does.
        planned = isinstance(model_or_cfg, ArchConfig) and shape == _input_shape(model_or_cfg, None)
        if dev.type == "cpu" and planned:
            _check_cpu_memory(None, model_or_cfg, shape, batch, dtype, dev)
        try:
            model = _prepare(model_or_cfg, dev, dtype, channels_last)
        except _oom_types():
            model = None
        if model is None:
            torch.cuda.empty_cache()
            raise LatencyError(f"{_model_name(model_or_cfg)}: the weights do not fit in the memory of "
                               f"{device_label(dev)}")
        if dev.type == "cpu" and not planned:
            _check_cpu_memory(model, model_or_cfg, shape, batch, dtype, dev)
        try:
            return _measure_with_retry(model, model_or_cfg, dev, batch, dtype, channels_last, compile,
                                       budget_s, warmup, min_samples, max_samples, n_threads, shape,
                                       progress, retry_smaller, warnings)
        finally:
            del model
            if dev.type == "cuda":
                torch.cuda.empty_cache()


def _check_cpu_memory(model: nn.Module | None, model_or_cfg: Any, shape: tuple[int, ...], batch: int,
                      dtype: str, dev: torch.device) -> None:
    """Refuse a CPU run whose weights and peak activations would crowd out the machine.

    For a config this runs before anything is built: weights and activations are estimated on
    the meta device. For a caller's model (`model` is its private copy) only the activations.
    """
    free = _free_memory_bytes(dev)
    if free is None or (model is not None and batch == 1):  # one image next to weights that exist
        return
    limit = int(free * MEMORY_SHARE)
    if model is None:
        costs = measure_costs(model_or_cfg, 1, dtype)
        per_image, weights = costs["peak_bytes"], costs["weight_bytes"]
    else:
        per_image, weights = trace_memory(model, (1, *shape), device=dev, dtype=DTYPES[dtype])["peak_bytes"], 0
    if weights > limit:
        raise LatencyError(f"{_model_name(model_or_cfg)}: its weights alone need {weights / 2**30:.1f} GiB, "
                           f"more than half of the {free / 2**30:.1f} GiB free on {device_label(dev)}")
    if weights + per_image * batch > limit:
        fits = max(1, (limit - weights) // max(per_image, 1))
        raise ConfigError("batch", batch, f"at most {fits} on this machine",
                          f"one pass would need about {(weights + per_image * batch) / 2**30:.1f} GiB "
                          f"(weights and activations) of {free / 2**30:.1f} GiB free")


def _fits_cpu_memory(model_or_cfg: Any, dev: torch.device, batch: int, dtype: str,
                     input_shape: Sequence[int] | None) -> bool:
    """Cheap pre-check for a config on the CPU (other cases are checked when measured)."""
    if dev.type != "cpu" or not isinstance(model_or_cfg, ArchConfig) or input_shape is not None:
        return True
    try:
        _check_cpu_memory(None, model_or_cfg, _input_shape(model_or_cfg, None), batch, dtype, dev)
    except (ConfigError, LatencyError):
        return False
    return True


def _measure_with_retry(model, model_or_cfg, dev, batch, dtype, channels_last, compile, budget_s,
                        warmup, min_samples, max_samples, threads, shape, progress, retry_smaller,
                        warnings) -> LatencyResult:
    """Measure at `batch`; on CUDA out-of-memory halve it and retry, saying so."""
    current = batch
    while True:
        oom = False
        try:
            with (torch.cuda.device(dev) if dev.type == "cuda" else nullcontext()):  # events on dev's stream
                return _measure_once(model, model_or_cfg, dev, current, batch, dtype, channels_last, compile,
                                     budget_s, warmup, min_samples, max_samples, threads, shape, progress,
                                     warnings)
        except _oom_types():
            oom = True  # leave the except block first so its frames (and tensors) are freed
        except LatencyError:
            raise
        except RuntimeError as exc:  # e.g. an input shape the module cannot take
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise LatencyError(f"{_model_name(model_or_cfg)}: the forward pass failed: {first[:200]}") from None
        if oom:
            gc.collect()
            torch.cuda.empty_cache()
            if current == 1 or not retry_smaller:
                raise LatencyError(f"{_model_name(model_or_cfg)}: batch {current} does not fit in the memory of "
                                   f"{device_label(dev)}" + ("" if current == 1 else "; try a smaller batch"))
            warnings.append(f"batch {current} ran out of GPU memory; measured at batch {current // 2} instead")
            current //= 2


def _measure_once(model, model_or_cfg, dev, batch, requested, dtype, channels_last, compile, budget_s,
                  warmup, min_samples, max_samples, threads, shape, progress, warnings) -> LatencyResult:
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn((batch, *shape), generator=gen).to(device=dev, dtype=DTYPES[dtype])  # (B, C, H, W)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    run: Callable = model
    compile_s = None
    with _timing_state(dev, threads), torch.inference_mode():
        if compile:
            run, compile_s = _compile(model, x, dev)
        clock = _Clock(budget_s, max_samples, progress)
        clock.report(0.0, force=True)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
        times, n_warm = _time_passes(run, x, dev, clock, warmup, min_samples, max_samples)
        elapsed = clock.elapsed()
        peak = torch.cuda.max_memory_allocated(dev) - base if dev.type == "cuda" else None
        clock.report(1.0, force=True)
    return _result(model_or_cfg, dev, batch, requested, (batch, *shape), times, n_warm, dtype, channels_last,
                   compile, compile_s, threads, peak, budget_s, elapsed, warnings)


def _compile(model: nn.Module, x: torch.Tensor, dev: torch.device) -> tuple[Callable, float]:
    """torch.compile the copy and run its first (compiling) pass; returns it and the seconds taken."""
    t0 = time.perf_counter()
    try:
        compiled = torch.compile(model, dynamic=False)
        compiled(x)
        _sync(dev)
    except _oom_types():
        raise
    except Exception as exc:  # the compiler stack raises many kinds; the user needs one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LatencyError(f"torch.compile failed: {first[:200]}") from None
    return compiled, time.perf_counter() - t0


def _result(model_or_cfg, dev, batch, requested, input_shape, times, n_warm, dtype, channels_last, compile,
            compile_s, threads, peak, budget_s, elapsed, warnings) -> LatencyResult:
    s = sorted(times)
    median = percentile(s, 50)
    iqr = percentile(s, 75) - percentile(s, 25)
    notes = list(warnings)
    if len(s) < FEW_SAMPLES:
        notes.append(f"only {len(s)} samples fit the {budget_s:g} s budget: the percentiles are rough")
    return LatencyResult(
        name=_model_name(model_or_cfg),
        device=str(dev) if dev.type == "cuda" and dev.index else dev.type,
        device_name=device_label(dev, threads),
        batch=batch, requested_batch=requested, input_shape=tuple(input_shape),
        median_ms=median, p10_ms=percentile(s, 10), p90_ms=percentile(s, 90), iqr_ms=iqr,
        min_ms=s[0], mean_ms=sum(s) / len(s),
        throughput=batch * 1e3 / median if median > 0 else float("inf"),
        samples=len(s), warmup=n_warm, noisy=iqr > NOISY_IQR * median,
        dtype=dtype, channels_last=channels_last, compile=compile, compile_s=compile_s,
        threads=threads, torch_version=torch.__version__, peak_memory_bytes=peak,
        budget_s=float(budget_s), elapsed_s=elapsed, warnings=tuple(notes), times_ms=tuple(times),
    )


# -- batch sweep ---------------------------------------------------------------------------
@dataclass
class SweepResult:
    """Latency and throughput per batch size; iterates over its rows (ready for a chart)."""

    rows: list[dict[str, Any]]
    stopped: str            # why the sweep ended: "done", "time", "memory"
    device: str
    device_name: str

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [dict(r) for r in self.rows], "stopped": self.stopped,
                "device": self.device, "device_name": self.device_name}


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
    `p10_ms`, `p90_ms`, `ms_per_image`, `throughput`, `samples`, `noisy`, ...
    """
    dev = resolve_device(device)
    _check_number("budget_s", budget_s, 0, MAX_BUDGET_S)
    _check_number("per_batch_s", per_batch_s, 0, MAX_BUDGET_S)
    sizes = list(batches)
    if not sizes:
        raise ConfigError("batches", batches, "one or more batch sizes")
    for b in sizes:
        check_batch(b)
    sizes = sorted(set(sizes))
    rows: list[dict[str, Any]] = []
    stopped = "done"
    start = time.perf_counter()
    with exclusive_measurement():  # one sweep is one measurement: nobody times in between its batches
        for i, b in enumerate(sizes):
            left = budget_s - (time.perf_counter() - start)
            if rows and not _fits_cpu_memory(model_or_cfg, dev, b, dtype, input_shape):
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
            rows.append(sweep_row(r))
    if progress is not None:
        progress(1.0)
    return SweepResult(rows, stopped, rows[0]["device"] if rows else dev.type,
                       rows[0]["device_name"] if rows else device_label(dev))


def _sub_progress(progress: Progress, i: int, n: int) -> Progress:
    def report(fraction: float) -> Any:
        return progress((i + fraction) / n)
    return report


def measure_cuda_peak(cfg: ArchConfig, batch: int, dtype: str) -> tuple[int | None, str]:
    """Peak CUDA memory above weights and input during one inference pass (None on OOM)."""
    dev = torch.device("cuda", torch.cuda.current_device())
    with exclusive_measurement():
        label = device_label(str(dev))
        model = x = None
        try:
            with torch.device(dev):
                model = build_model(cfg).eval().to(DTYPES[dtype])
            x = torch.randn(batch, cfg.in_channels, cfg.input_size, cfg.input_size,
                            device=dev, dtype=DTYPES[dtype])
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
            with torch.inference_mode():
                model(x)
            torch.cuda.synchronize(dev)
            peak = torch.cuda.max_memory_allocated(dev) - base
        except torch.cuda.OutOfMemoryError:
            peak = None
        finally:
            del model, x
            torch.cuda.empty_cache()
    return peak, label
