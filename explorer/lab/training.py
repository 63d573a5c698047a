"""One Lab run: train a config on the Lab's data (the digits or CIFAR), recording history and
gradient norms.

A run diverged when its training or validation loss is not finite, or a loss exceeds
DIVERGED_FACTOR x ln(classes): an untrained classifier's loss is about ln(classes) (2.3 for 10
classes), so a loss a thousand times that (2,303 for 10) means logits in the thousands, confidently
wrong, not a run still learning. The validation loss is held to it only after DIVERGED_MIN_STEPS
optimiser steps: it is measured in eval mode, with BatchNorm's running statistics (momentum 0.1),
which in a deep net's first few steps can still be far enough off to give a loss in the thousands
that training then brings down. The run stops there and says so.

On a CUDA GPU (`TrainSettings.device`) the steps run in bf16 autocast with channels_last
memory (fp32 weights and optimiser); on the CPU in fp32.
"""
from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import Callable, Iterator, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from explorer.arch.builder import build_model
from explorer.arch.config import ArchConfig
from explorer.errors import ConfigError
from explorer.facts.limits import check_limits
from explorer.lab.data import lab_config, load_data
from explorer.lab.gradients import measure_grad_norms
from explorer.lab.records import EpochRecord, GradNorm, RunResult, RunStatus
from explorer.lab.settings import TrainSettings
from explorer.timing.gate import begin_training_step, end_training_step

# Torch threads of each worker process (explorer.lab.workers): on a busy 2-core machine two
# threads per run spend their time waiting for each other (10x slower epochs were measured),
# and one thread makes a worker's losses independent of the machine's core count. A run in this
# process trains its steps at this count too, through the timing gate, which sets it while steps
# are in flight and restores the process's own before any latency measurement starts.
TRAIN_THREADS = 1
EVAL_BATCH = 512
DIVERGED_FACTOR = 1e3     # see the module's docstring
DIVERGED_MIN_STEPS = 100  # steps before the validation loss is held to DIVERGED_FACTOR

StopFn = Callable[[], bool]


class StepGate(Protocol):
    """Who may take a training step now: `begin` waits for leave (False: stopped while waiting),
    `end` reports the step done. The default is the in-process gate of `explorer.timing.gate`."""

    def begin(self, should_stop: StopFn | None) -> bool: ...
    def end(self) -> None: ...


@dataclass(frozen=True)
class RunHooks:
    """What a run tells its caller as it goes, and asks it. Every field is optional."""

    # the run once its model is built and its gradient norms measured (no epoch yet)
    on_start: Callable[[RunResult], None] | None = None
    on_epoch: Callable[[EpochRecord], None] | None = None   # each finished epoch
    # the final run however it ended, also when an exception (a callback's) ends it, before
    # that exception goes on: the cut-short run with its finished epochs and its true time
    on_end: Callable[[RunResult], None] | None = None
    # polled before every batch: True ends the run, `cancelled`, with the finished epochs kept
    # and `epoch_fraction` the share of the next one done
    should_stop: StopFn | None = None
    # what every training step passes (default: this process's gate, which pauses training
    # while a latency measurement runs; a worker gets one its parent opens and closes)
    step_gate: StepGate | None = None


class LiveRun:
    """A run being trained: its numbers so far, handed out as frozen RunResult snapshots."""

    def __init__(self, first: RunResult, start: float) -> None:
        self.first, self.start = first, start
        self.history: list[EpochRecord] = []
        self.status: RunStatus = "running"
        self.epoch_fraction = 0.0
        self.steps = 0     # optimiser steps taken
        self.lr = first.settings.resolved_lr  # of the latest step

    def lr_of(self, epoch: int) -> float:
        """The learning rate of the next step: by epoch, or by step where `iterations` is set."""
        s = self.first.settings
        return s.lr_at(epoch) if s.iterations is None else s.lr_at_step(self.steps + 1, self.first.depth)

    def out_of_steps(self) -> bool:
        iterations = self.first.settings.iterations
        return iterations is not None and self.steps >= iterations

    def add_epoch(self, epoch: int, train: tuple[float, float], val: tuple[float, float],
                  t0: float) -> EpochRecord:
        now, s = time.perf_counter(), self.first.settings
        record = EpochRecord(self.first.name, s.seed, epoch, self.lr, train[0], train[1], val[0], val[1],
                             seconds=round(now - t0, 4), elapsed=round(now - self.start, 4))
        self.history.append(record)
        self.epoch_fraction = 0.0
        return record

    def end_by_exception(self) -> None:
        """An exception ended the run: cut short unless every epoch had finished."""
        if self.status == "running":
            done = len(self.history) >= self.first.settings.epochs
            self.status = "complete" if done else "cancelled"

    def snapshot(self) -> RunResult:
        return replace(self.first, history=tuple(self.history), status=self.status,
                       seconds=round(time.perf_counter() - self.start, 3),
                       epoch_fraction=round(self.epoch_fraction, 3))


def train(cfg: ArchConfig, settings: TrainSettings | None = None, hooks: RunHooks | None = None) -> RunResult:
    """Train one config on the digits and record what happened.

    Args:
        cfg: any valid ArchConfig; its stem, in_channels, input_size and num_classes are
            replaced to fit the data (see `lab_config`).
        settings: how it trains (default `TrainSettings()`).
        hooks: callbacks as it goes, its stop and its step gate (see `RunHooks`). An exception
            from a callback cuts the run short (`on_end` hears it so) before it propagates.

    Returns:
        A RunResult. The same config and settings at the same torch thread count give the same
        losses (fixed seeds, fixed batch order); the thread count is never changed here.

    Raises:
        ConfigError: for an invalid config or setting, a config that cannot take the data's
            input, one over the server's size limits (`explorer.facts.limits`), or CIFAR data
            missing from `settings.data_dir`.
    """
    settings = TrainSettings() if settings is None else settings
    if not isinstance(settings, TrainSettings):
        raise ConfigError("settings", settings, "a TrainSettings")
    hooks = hooks or RunHooks()
    cfg = lab_config(cfg, settings.dataset)
    size = check_limits(cfg)  # before anything is built
    device = train_device(settings)
    data = load_data(settings.dataset, settings.data_dir)
    if settings.max_train is not None:
        data = replace(data, x_train=data.x_train[: settings.max_train], y_train=data.y_train[: settings.max_train])
    settings = settings.for_data(len(data.x_train))  # the passes an iteration budget takes
    start = time.perf_counter()
    with flush_denormals(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = build_model(cfg)
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        run = LiveRun(RunResult(cfg, settings, params, size.weight_layers, len(data.x_train), len(data.x_val),
                                grad_norms=_grad_norms(model, data, settings, cfg.name)), start)
        try:
            if hooks.on_start is not None:
                hooks.on_start(run.snapshot())
            _fit(_placed(model, device), run, data, hooks)
        except BaseException:  # a rerun of the app, Ctrl-C: the caller hears the true numbers
            run.end_by_exception()
            raise
        finally:
            final = run.snapshot()
            if hooks.on_end is not None:
                hooks.on_end(final)
    return final


def train_device(settings: TrainSettings) -> torch.device:
    """Where a run of `settings` trains (see `explorer.lab.settings.Device`)."""
    if settings.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "cuda", "cpu or auto: this machine has no CUDA GPU")
    gpu = settings.device == "cuda" or (settings.device == "auto" and settings.dataset != "digits"
                                        and torch.cuda.is_available())
    return torch.device("cuda" if gpu else "cpu")


def _placed(model: nn.Module, device: torch.device) -> nn.Module:
    """The model on `device`: channels_last on a GPU (faster convolutions under autocast)."""
    return model if device.type == "cpu" else model.to(device, memory_format=torch.channels_last)


def _on(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch moved to the model's device (its images channels_last on a GPU)."""
    device = next(model.parameters()).device
    if device.type == "cpu":
        return x, y
    return (x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last),
            y.to(device, non_blocking=True))


def _autocast(model: nn.Module):
    """bf16 autocast on a GPU; nothing on the CPU (fp32)."""
    device = next(model.parameters()).device
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else _nothing()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _grad_norms(model: nn.Module, data, settings: TrainSettings, name: str) -> tuple[GradNorm, ...]:
    """Gradient norms per residual unit on the first training batch, at initialisation."""
    x, y = data.probe_batch(min(settings.batch_size, len(data.x_train)))
    rows = measure_grad_norms(model, x, y)
    return tuple(GradNorm(run=name, seed=settings.seed, **row) for row in rows)


def diverged(train_loss: float, val_loss: float, num_classes: int, steps: int) -> bool:
    """The rule of the module's docstring: a loss not finite, or above DIVERGED_FACTOR x
    ln(classes) (the validation loss once `steps` reach DIVERGED_MIN_STEPS)."""
    if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
        return True
    bound = DIVERGED_FACTOR * math.log(max(num_classes, 2))
    return train_loss > bound or (steps >= DIVERGED_MIN_STEPS and val_loss > bound)


def _fit(model: nn.Module, run: LiveRun, data, hooks: RunHooks) -> None:
    """The epochs of `run`, until the last (or its last step), a stop or a diverged loss (its
    `status` says which)."""
    settings = run.first.settings
    opt = make_optimizer(model, settings)
    order = torch.Generator().manual_seed(settings.seed)  # batch order, then augmentation
    for epoch in range(1, settings.epochs + 1):
        t0 = time.perf_counter()
        stats = _train_epoch(model, opt, data, run, epoch, order, hooks)
        if stats is None:
            run.status = "cancelled"
            return
        enter, leave = _gate_of(hooks)
        if not enter(hooks.should_stop):  # validation waits for a measurement like a step does
            run.status = "cancelled"
            return
        try:
            val = evaluate_data(model, data)
        finally:
            leave()
        record = run.add_epoch(epoch, stats, val, t0)
        if hooks.on_epoch is not None:
            hooks.on_epoch(record)
        if diverged(stats[0], val[0], run.first.config.num_classes, run.steps):
            run.status = "diverged"
            return
        if run.out_of_steps():
            break
    run.status = "complete"


def make_optimizer(model: nn.Module, s: TrainSettings) -> torch.optim.Optimizer:
    if s.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=s.resolved_lr, weight_decay=s.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=s.resolved_lr, momentum=s.momentum,
                           weight_decay=s.weight_decay)


def _train_epoch(model: nn.Module, opt: torch.optim.Optimizer, data, run: LiveRun, epoch: int,
                 gen: torch.Generator, hooks: RunHooks) -> tuple[float, float] | None:
    """One pass in a seeded random order (augmented where the data is), ending early at the
    run's last step: (mean loss, accuracy), or None when stopped. The run's `epoch_fraction`
    follows the share of the pass done."""
    should_stop, batch_size = hooks.should_stop, run.first.settings.batch_size
    enter, leave = _gate_of(hooks)
    n = len(data.x_train)
    model.train()
    perm = torch.randperm(n, generator=gen)
    loss_sum, correct, seen = 0.0, 0, 0
    for begin in range(0, n, batch_size):
        if should_stop is not None and should_stop():
            return None
        idx = perm[begin: begin + batch_size]
        if len(idx) < 2 or run.out_of_steps():  # BatchNorm cannot normalise a batch of one
            continue
        x, y = data.train_batch(idx, gen)
        x, y = _on(model, x, y)
        run.lr = run.lr_of(epoch)
        for group in opt.param_groups:
            group["lr"] = run.lr
        if not enter(should_stop):  # waits while a latency measurement runs
            return None
        try:
            with _autocast(model):
                logits, loss = train_step(model, opt, x, y)
        finally:
            leave()
        run.steps += 1
        loss_sum += loss.item() * len(idx)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(idx)
        run.epoch_fraction = min(begin + batch_size, n) / n
        if not math.isfinite(loss_sum):
            break  # diverged: the caller records it and stops
    return loss_sum / max(seen, 1), correct / max(seen, 1)


def _gate_of(hooks: RunHooks) -> tuple[Callable[..., bool], Callable[[], None]]:
    """(begin, end) of a gated step: the worker's relay, or this process's gate at TRAIN_THREADS.
    Looked up per call, so the in-process gate functions can be replaced (tests do)."""
    if hooks.step_gate is not None:
        return hooks.step_gate.begin, hooks.step_gate.end
    return partial(begin_training_step, threads=TRAIN_THREADS), end_training_step


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on a batch: (logits, loss). The time estimate calibrates on this."""
    logits = model(x)  # (B, num_classes)
    loss = F.cross_entropy(logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return logits, loss


@torch.no_grad()
def evaluate_data(model: nn.Module, data) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) over the data's validation split, in eval mode."""
    model.eval()
    loss_sum, correct, n = 0.0, 0, 0
    for x, y in data.val_batches(EVAL_BATCH):
        x, y = _on(model, x, y)
        with _autocast(model):
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").item()
        correct += int((logits.argmax(1) == y).sum())
        n += len(y)
    return loss_sum / max(n, 1), correct / max(n, 1)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) in eval mode (BatchNorm running statistics)."""
    model.eval()
    loss_sum, correct = 0.0, 0
    for begin in range(0, len(x), EVAL_BATCH):
        logits = model(x[begin: begin + EVAL_BATCH])
        loss_sum += F.cross_entropy(logits, y[begin: begin + EVAL_BATCH], reduction="sum").item()
        correct += int((logits.argmax(1) == y[begin: begin + EVAL_BATCH]).sum())
    return loss_sum / len(x), correct / len(x)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """`n` torch threads, then the count before. The count is process-wide: only for code that
    holds the device lock (no measurement can run meanwhile) or owns the process (the `lab`
    command, a worker). A Lab run never calls it."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_DENORMAL_LOCK = threading.Lock()
_denormal_runs = 0  # runs in flight that want subnormal floats flushed


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Subnormal floats flushed to zero while training (tiny gradients of a diverging deep net
    otherwise slow the CPU down many times over; training is unaffected). The first run in
    sets it, the last one out clears it, so overlapping runs keep it throughout. The torch
    thread count is left alone."""
    global _denormal_runs
    with _DENORMAL_LOCK:
        if _denormal_runs == 0:
            torch.set_flush_denormal(True)
        _denormal_runs += 1
    try:
        yield
    finally:
        with _DENORMAL_LOCK:
            _denormal_runs -= 1
            if _denormal_runs == 0:
                torch.set_flush_denormal(False)
