"""One Lab run: train a config on the digits, recording history and gradient norms."""
from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from explorer.arch.builder import build_model
from explorer.arch.config import ArchConfig
from explorer.arch.plan import effective_span
from explorer.errors import ConfigError
from explorer.facts.limits import check_limits
from explorer.lab.data import lab_config, load_digits
from explorer.lab.gradients import measure_grad_norms
from explorer.lab.settings import Optimizer, TrainSettings
from explorer.timing.gate import begin_training_step, end_training_step

# One torch thread while training: on a busy 2-core machine two threads spend their time
# waiting for each other (10x slower epochs were measured), and one thread makes the losses
# independent of the machine's core count.
TRAIN_THREADS = 1
EVAL_BATCH = 512

StopFn = Callable[[], bool]


class StepGate(Protocol):
    """Who may take a training step now: `begin` waits for leave (False: stopped while waiting),
    `end` reports the step done. The default is the in-process gate of `explorer.timing.gate`."""

    def begin(self, should_stop: StopFn | None) -> bool: ...
    def end(self) -> None: ...


@dataclass
class RunResult:
    """One trained config: per-epoch history, gradient norms at initialisation, final numbers."""

    config: ArchConfig                   # the config as trained (adapted to the data)
    settings: TrainSettings
    params: int                          # trainable parameters of the built model
    depth: int                           # weight layers on the main path (the papers' count)
    n_train: int
    n_val: int
    history: list[dict[str, Any]] = field(default_factory=list)     # one row per finished epoch
    grad_norms: list[dict[str, Any]] = field(default_factory=list)  # one row per residual unit
    seconds: float = 0.0                 # wall time of the run so far, initialisation included
    cancelled: bool = False              # cut short (should_stop, or a caller's exception) before the last epoch
    epoch_fraction: float = 0.0          # share of the epoch in progress that was done when cut short
    diverged: bool = False               # the training loss became inf / NaN (training stopped)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def final(self) -> dict[str, Any] | None:
        """The last finished epoch's row, or None when no epoch finished."""
        return self.history[-1] if self.history else None

    def summary_row(self) -> dict[str, Any]:
        """One row of the results table."""
        last = self.final or {}
        vals = [r["val_acc"] for r in self.history if _finite(r["val_acc"])]
        return {
            "run": self.name,
            "seed": self.settings.seed,
            "depth": self.depth,
            "skip_span": effective_span(self.config),
            "bn_position": self.config.bn_position,
            "relu_position": self.config.relu_position,
            "params": self.params,
            "epochs": len(self.history),
            "train_loss": last.get("train_loss"),
            "train_acc": last.get("train_acc"),
            "val_loss": last.get("val_loss"),
            "val_acc": last.get("val_acc"),
            "best_val_acc": max(vals) if vals else None,
            "seconds": round(self.seconds, 2),
            "cancelled": self.cancelled,
            "diverged": self.diverged,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "settings": self.settings.to_dict(),
            "params": self.params,
            "depth": self.depth,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "history": [dict(r) for r in self.history],
            "grad_norms": [dict(r) for r in self.grad_norms],
            "final": self.summary_row(),
            "seconds": round(self.seconds, 3),
            "cancelled": self.cancelled,
            "epoch_fraction": round(self.epoch_fraction, 3),
            "diverged": self.diverged,
        }


def train(
    cfg: ArchConfig,
    epochs: int = 10,
    seed: int = 0,
    lr: float | None = None,
    optimizer: Optimizer = "sgd",
    batch_size: int = 64,
    max_train: int | None = None,
    *,
    settings: TrainSettings | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    should_stop: StopFn | None = None,
    on_start: Callable[[RunResult], None] | None = None,
    step_gate: StepGate | None = None,
) -> RunResult:
    """Train one config on the digits and record what happened.

    Args:
        cfg: any valid ArchConfig; its stem, in_channels, input_size and num_classes are
            replaced to fit the data (see `lab_config`).
        epochs, seed, lr, optimizer, batch_size, max_train: see `TrainSettings`; ignored when
            `settings` is given.
        settings: all training settings at once (momentum, weight decay, schedule too).
        progress: called with each finished epoch's history row.
        should_stop: polled before every batch; returning True ends the run early, with
            `cancelled` set, the finished epochs kept and `epoch_fraction` the share of the
            next one done. An exception from any callback here cuts the run short the same way
            (the RunResult that `on_start` received says so) before it propagates.
        on_start: called once the model is built and its gradient norms measured, with the
            RunResult that the run then fills in epoch by epoch (for live views).
        step_gate: what every training step passes (default: this process's gate, which
            pauses training while a latency measurement runs; a worker process gets one
            that its parent opens and closes, see `explorer.lab.workers`).

    Returns:
        A RunResult. The same config and settings give the same losses (fixed seeds, fixed
        batch order, TRAIN_THREADS torch threads).

    Raises:
        ConfigError: for an invalid config or setting, a config that cannot take 8x8 input,
            or one over the server's size limits (`explorer.facts.limits`).
    """
    if settings is None:
        settings = TrainSettings(epochs=epochs, seed=seed, lr=lr, optimizer=optimizer,
                                 batch_size=batch_size, max_train=max_train)
    elif not isinstance(settings, TrainSettings):
        raise ConfigError("settings", settings, "a TrainSettings")
    cfg = lab_config(cfg)
    size = check_limits(cfg)  # before anything is built
    data = load_digits()
    x_train, y_train = data.x_train, data.y_train
    if settings.max_train is not None:
        x_train, y_train = x_train[: settings.max_train], y_train[: settings.max_train]

    start = time.perf_counter()
    with training_threads(TRAIN_THREADS), torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = build_model(cfg)
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        result = RunResult(cfg, settings, params, size.weight_layers, len(x_train), len(data.x_val))
        probe = slice(0, min(settings.batch_size, len(x_train)))
        result.grad_norms = [{"run": cfg.name, "seed": settings.seed, **row}
                             for row in measure_grad_norms(model, x_train[probe], y_train[probe])]
        try:
            if on_start is not None:
                on_start(result)
            opt = make_optimizer(model, settings)
            order = torch.Generator().manual_seed(settings.seed)
            for epoch in range(1, settings.epochs + 1):
                t0 = time.perf_counter()
                for group in opt.param_groups:
                    group["lr"] = settings.lr_at(epoch)
                stats = _train_epoch(model, opt, x_train, y_train, settings.batch_size, order, should_stop,
                                     step_gate, on_batch=lambda f: setattr(result, "epoch_fraction", f))
                if stats is None:
                    result.cancelled = True
                    break
                train_loss, train_acc = stats
                val_loss, val_acc = evaluate(model, data.x_val, data.y_val)
                now = time.perf_counter()
                row = {
                    "run": cfg.name, "seed": settings.seed, "epoch": epoch, "lr": settings.lr_at(epoch),
                    "train_loss": train_loss, "train_acc": train_acc,
                    "val_loss": val_loss, "val_acc": val_acc,
                    "seconds": round(now - t0, 4), "elapsed": round(now - start, 4),
                }
                result.history.append(row)
                result.epoch_fraction, result.seconds = 0.0, now - start
                if progress is not None:
                    progress(dict(row))
                if not math.isfinite(train_loss):
                    result.diverged = True
                    break
        except BaseException:
            # A callback ended the run (a rerun of the app, Ctrl-C): it was cut short unless every
            # epoch had finished; the caller keeps this result with its true numbers.
            result.cancelled = len(result.history) < settings.epochs and not result.diverged
            raise
        finally:
            result.seconds = time.perf_counter() - start
    return result


def make_optimizer(model: nn.Module, s: TrainSettings) -> torch.optim.Optimizer:
    if s.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=s.resolved_lr, weight_decay=s.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=s.resolved_lr, momentum=s.momentum,
                           weight_decay=s.weight_decay)


def _train_epoch(model, opt, x, y, batch_size, gen, should_stop, step_gate: StepGate | None = None,
                 on_batch: Callable[[float], None] | None = None) -> tuple[float, float] | None:
    """One pass in a seeded random order: (mean loss, accuracy), or None when stopped.
    `on_batch` hears the share of the pass done after each batch."""
    # Looked up per call, so the in-process gate functions can be replaced (tests do).
    enter = step_gate.begin if step_gate is not None else begin_training_step
    leave = step_gate.end if step_gate is not None else end_training_step
    model.train()
    perm = torch.randperm(len(x), generator=gen)
    loss_sum, correct, seen = 0.0, 0, 0
    for begin in range(0, len(x), batch_size):
        if should_stop is not None and should_stop():
            return None
        idx = perm[begin: begin + batch_size]
        if len(idx) < 2:  # BatchNorm cannot normalise a batch of one
            continue
        if not enter(should_stop):  # waits while a latency measurement runs
            return None
        try:
            logits, loss = train_step(model, opt, x[idx], y[idx])
        finally:
            leave()
        loss_sum += loss.item() * len(idx)
        correct += int((logits.argmax(1) == y[idx]).sum())
        seen += len(idx)
        if on_batch is not None:
            on_batch(min(begin + batch_size, len(x)) / len(x))
        if not math.isfinite(loss_sum):
            break  # diverged: the caller records it and stops
    return loss_sum / max(seen, 1), correct / max(seen, 1)


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
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) in eval mode (BatchNorm running statistics)."""
    model.eval()
    loss_sum, correct = 0.0, 0
    for begin in range(0, len(x), EVAL_BATCH):
        logits = model(x[begin: begin + EVAL_BATCH])
        loss_sum += F.cross_entropy(logits, y[begin: begin + EVAL_BATCH], reduction="sum").item()
        correct += int((logits.argmax(1) == y[begin: begin + EVAL_BATCH]).sum())
    return loss_sum / len(x), correct / len(x)


_THREADS_LOCK = threading.Lock()
_threads_state = {"depth": 0, "old": 1}  # runs in flight, and the thread count to restore


@contextmanager
def training_threads(n: int = TRAIN_THREADS) -> Iterator[None]:
    """`n` torch threads, and subnormal floats flushed to zero (tiny gradients of a diverging
    deep net otherwise slow the CPU down many times over; training is unaffected).

    Both settings are process-wide: the first run in sets them, the last one out restores
    them, so overlapping runs (two sessions, or a calibration inside a run) keep them throughout.
    """
    with _THREADS_LOCK:
        if _threads_state["depth"] == 0:
            _threads_state["old"] = torch.get_num_threads()
            torch.set_num_threads(n)
            torch.set_flush_denormal(True)
        _threads_state["depth"] += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _threads_state["depth"] -= 1
            if _threads_state["depth"] == 0:
                torch.set_flush_denormal(False)
                torch.set_num_threads(_threads_state["old"])


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
