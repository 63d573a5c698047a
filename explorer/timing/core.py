"""What every timed run shares: its settings, checked once; the private device copy it times;
the fixed input; how a failed pass reads. Latency, sweep and profile all start here.

The copy is the caller's model deep-copied (or a config built fresh) onto the device in eval
mode, in the dtype and memory format asked for; the caller's model is never touched (the app
shares cached models between users). The device lock is held from copy to last sample and Lab
training pauses meanwhile (gate.py).
"""
from __future__ import annotations

import copy
import gc
import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Iterator, Sequence, TypeVar

import torch
from torch import nn

from explorer.arch.builder import build_model
from explorer.arch.config import ArchConfig
from explorer.errors import ConfigError, LatencyError
from explorer.facts.costs import check_batch
from explorer.facts.limits import check_limits
from explorer.limits import LATENCY_BUDGET_S, MAX_BUDGET_S, MAX_SAMPLES
from explorer.timing.bounds import check_pass_budget
from explorer.timing.devices import DTYPES, check_dtype, default_threads, device_label, resolve_device
from explorer.timing.gate import GateWait, exclusive_measurement
from explorer.timing.memory import check_cpu_memory
from explorer.timing.passes import default_warmup
from explorer.vocab import Dtype

T = TypeVar("T")


@dataclass(frozen=True)
class TimingSettings:
    """How to time a network. Every field has the default the command line and the app use."""

    device: str = "auto"                    # "auto" (CUDA when present), "cpu", "cuda" or "cuda:N"
    batch: int = 1                          # images per pass
    dtype: Dtype = "fp32"                   # fp32 | bf16 | fp16 (CUDA only)
    channels_last: bool = False             # NHWC memory format for weights and input
    compile: bool = False                   # torch.compile first; its time is reported apart
    threads: int | None = None              # CPU threads; None: torch's default (devices.default_threads)
    budget_s: float = LATENCY_BUDGET_S      # warm-up plus timing, seconds (copy and compile excluded)
    warmup: int | None = None               # least untimed passes; None: 2 on CPU, 5 on CUDA
    min_samples: int = 5                    # least timed passes, even past the budget
    max_samples: int = 500                  # most timed passes
    input_shape: tuple[int, ...] | None = None  # (C, H, W) of one image; None: the config's
    retry_smaller: bool = True              # on CUDA out-of-memory, halve the batch and try again

    def with_options(self, **options: Any) -> "TimingSettings":
        """These settings with some fields changed; a name that is no field is a TypeError, as a
        misspelt keyword argument would be."""
        names = [f.name for f in fields(self)]
        unknown = [k for k in options if k not in names]
        if unknown:
            raise TypeError(f"unknown timing option {unknown[0]!r}; the options are " + ", ".join(names))
        return replace(self, **options)


def settings_of(settings: TimingSettings | None, options: dict[str, Any], **defaults: Any) -> TimingSettings:
    """`settings` (or TimingSettings with `defaults`) with `options` applied."""
    if settings is not None and not isinstance(settings, TimingSettings):
        raise ConfigError("settings", type(settings).__name__, "a TimingSettings (or keyword options)")
    return (settings or TimingSettings().with_options(**defaults)).with_options(**options)


@dataclass(frozen=True)
class Run:
    """One timed run's settings once checked: device resolved, thread and warm-up counts known."""

    name: str                   # model label (config name or class name)
    dev: torch.device
    dtype: Dtype
    channels_last: bool
    compile: bool
    budget_s: float             # warm-up plus timing, seconds
    warmup: int                 # least untimed passes
    min_samples: int
    max_samples: int
    threads: int                # CPU threads during the timed section
    shape: tuple[int, ...]      # (C, H, W) of one input image

    @property
    def device(self) -> str:
        """"cpu", "cuda" or "cuda:N" (N > 0), as results report it."""
        return str(self.dev) if self.dev.type == "cuda" and self.dev.index else self.dev.type

    def label(self) -> str:
        return device_label(self.dev, self.threads)

    def input(self, batch: int) -> torch.Tensor:
        """The fixed input of every timed pass: seeded noise (B, C, H, W) on the device, in the
        dtype and memory format asked for (latency and profile time the very same)."""
        gen = torch.Generator(device="cpu").manual_seed(0)
        x = torch.randn((batch, *self.shape), generator=gen).to(device=self.dev, dtype=DTYPES[self.dtype])
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x


def check_number(key: str, value: Any, lo: float, hi: float, integer: bool = False) -> None:
    """ConfigError unless `value` is a number (an integer when asked) from lo to hi."""
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not lo <= value <= hi or value != value:
        kind = "an integer" if integer else "a number"
        raise ConfigError(key, value, f"{kind} from {lo:g} to {hi:g}")


def check_device(device: str, dtype: str, budget_s: float) -> torch.device:
    """The device of a timed run, once its dtype and budget are valid (ConfigError otherwise)."""
    dev = resolve_device(device)
    check_dtype(dtype, dev)
    check_number("budget_s", budget_s, 0, MAX_BUDGET_S)
    return dev


def check_run(model_or_cfg: Any, s: TimingSettings) -> Run:
    """The checked run of `s` on `model_or_cfg`; a config must also be within the server's size
    limits, which apply where work starts. Raises ConfigError naming the setting at fault."""
    dev = check_device(s.device, s.dtype, s.budget_s)
    check_batch(s.batch)
    check_number("min_samples", s.min_samples, 1, MAX_SAMPLES, integer=True)
    check_number("max_samples", s.max_samples, s.min_samples, MAX_SAMPLES, integer=True)
    warmup = default_warmup(dev) if s.warmup is None else s.warmup
    check_number("warmup", warmup, 0, 1000, integer=True)
    threads = default_threads() if s.threads is None else s.threads
    check_number("threads", threads, 1, max(os.cpu_count() or 1, 1) * 4, integer=True)
    for key in ("channels_last", "compile", "retry_smaller"):
        if not isinstance(getattr(s, key), bool):
            raise ConfigError(key, getattr(s, key), "true or false")
    if not isinstance(model_or_cfg, (ArchConfig, nn.Module)):
        raise ConfigError("model", type(model_or_cfg).__name__, "an ArchConfig or a torch.nn.Module")
    if isinstance(model_or_cfg, ArchConfig):
        check_limits(model_or_cfg)
    run = Run(name=model_name(model_or_cfg), dev=dev, dtype=s.dtype, channels_last=s.channels_last,
              compile=s.compile, budget_s=float(s.budget_s), warmup=warmup, min_samples=s.min_samples,
              max_samples=s.max_samples, threads=threads, shape=input_shape_of(model_or_cfg, s.input_shape))
    return run


def config_of(model_or_cfg: Any) -> ArchConfig | None:
    """The config of a config, or of a built ResNet (which carries it); None for other modules."""
    cfg = model_or_cfg if isinstance(model_or_cfg, ArchConfig) else getattr(model_or_cfg, "config", None)
    return cfg if isinstance(cfg, ArchConfig) else None


def model_name(model_or_cfg: Any) -> str:
    cfg = config_of(model_or_cfg)
    return cfg.name if cfg is not None else type(model_or_cfg).__name__


def input_shape_of(model_or_cfg: Any, input_shape: Sequence[int] | None) -> tuple[int, ...]:
    """(C, H, W) of one input image: given, or read from the config (or a built ResNet's)."""
    if input_shape is not None:
        shape = tuple(input_shape)
        if not shape or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape):
            raise ConfigError("input_shape", input_shape, "positive integers, e.g. (3, 224, 224)")
        return shape
    cfg = config_of(model_or_cfg)
    if cfg is not None:
        return (cfg.in_channels, cfg.input_size, cfg.input_size)
    raise ConfigError("input_shape", None, "(C, H, W) of one image: this model carries no config")


# -- the private copy ---------------------------------------------------------------------------
def on_private_copy(model_or_cfg: ArchConfig | nn.Module, run: Run, batch: int,
                    work: Callable[[nn.Module], T]) -> tuple[T, GateWait]:
    """`work(copy)` on the private device copy, holding the device (Lab training paused) from
    the copy to its end; the copy is freed before the device is released. Returns what `work`
    returned and how the wait for Lab training ended."""
    with exclusive_measurement() as wait:
        model = prepare_copy(model_or_cfg, run, batch)
        try:
            with torch.cuda.device(run.dev) if run.dev.type == "cuda" else nullcontext():  # events on its stream
                return work(model), wait
        finally:
            del model
            if run.dev.type == "cuda":
                torch.cuda.empty_cache()


def prepare_copy(model_or_cfg: ArchConfig | nn.Module, run: Run, batch: int) -> nn.Module:
    """The private device copy a run times, once it is known to fit.

    A config at its own input size is checked against free CPU memory before any weight exists;
    anything else once its private copy does. A pass whose multiply-adds put it far over the
    budget is refused before the copy is made (bounds.py). Call while holding `exclusive_measurement()`.
    """
    planned = isinstance(model_or_cfg, ArchConfig) and run.shape == input_shape_of(model_or_cfg, None)
    if run.dev.type == "cpu" and planned:
        check_cpu_memory(model_or_cfg, run.name, run.shape, batch, run.dtype, run.dev)
    check_pass_budget(run, config_of(model_or_cfg), batch)  # one pass far over the budget: before a weight exists
    try:
        model = _copy_on_device(model_or_cfg, run)
    except OOM_ERRORS:
        model = None
    if model is None:
        torch.cuda.empty_cache()
        raise LatencyError(f"{run.name}: the weights do not fit in the memory of {device_label(run.dev)}")
    if run.dev.type == "cpu" and not planned:
        check_cpu_memory(model, run.name, run.shape, batch, run.dtype, run.dev)
    return model


def _copy_on_device(model_or_cfg: ArchConfig | nn.Module, run: Run) -> nn.Module:
    """A private eval-mode copy on the device in the dtype; the caller's model is left as it is."""
    if isinstance(model_or_cfg, ArchConfig):
        with torch.device(run.dev):
            model = build_model(model_or_cfg)
    elif any(t.is_meta for t in (*model_or_cfg.parameters(), *model_or_cfg.buffers())):
        raise ConfigError("model", "meta tensors", "a model with real weights (built off the meta device)")
    else:
        model = copy.deepcopy(model_or_cfg)
    model = model.to(device=run.dev, dtype=DTYPES[run.dtype]).eval()
    model.requires_grad_(False)
    if run.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


# -- how a failed pass reads --------------------------------------------------------------------
OOM_ERRORS: tuple[type[BaseException], ...] = tuple(
    {getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError), torch.cuda.OutOfMemoryError})


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none), at most 200 characters."""
    return ((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:200]


@contextmanager
def forward_failures(name: str) -> Iterator[None]:
    """A pass that fails for a reason other than memory (e.g. an input shape the module cannot
    take) reads as one LatencyError line; out-of-memory passes through for the caller to handle."""
    try:
        yield
    except OOM_ERRORS:
        raise
    except LatencyError:
        raise
    except RuntimeError as exc:
        raise LatencyError(f"{name}: the forward pass failed: {first_line(exc)}") from None


def out_of_memory(run: Run, batch: int) -> LatencyError:
    """The error for a batch that does not fit, once the device's cache is released."""
    gc.collect()
    torch.cuda.empty_cache()
    return LatencyError(f"{run.name}: batch {batch} does not fit in the memory of {device_label(run.dev)}"
                        + ("" if batch == 1 else "; try a smaller batch"))
