"""Trainability lab: train variants on real data and test the papers' empirical claims.

The data is scikit-learn's bundled handwritten digits (1,797 8x8 grey images, 10 classes, no
download), split once into train and validation sets with a fixed seed. Every model comes from
`build_model`: the lab only adapts the config to the data (CIFAR-style stem, 1 input channel,
8x8 input, 10 classes) through `ArchConfig.replace`.

Results are plain dicts and row lists, ready for pandas and plotly:

    result = run_experiment("degradation", progress=print)
    result.to_rows()           # one row per run: final loss, accuracies, wall time
    result.history_rows()      # one row per run and epoch
    result.grad_norm_rows()    # one row per run and residual unit, at initialisation
"""
from __future__ import annotations

import copy
import csv
import io
import json
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Callable, Iterator, Literal, Sequence, get_args

import torch
import torch.nn.functional as F
from torch import nn

from explorer.facts.summary import count_params, weight_depth
from explorer.arch.builder import ResidualUnit, build_model
from explorer.arch.config import ArchConfig
from explorer.arch.plan import effective_span
from explorer.compare import distinct_labels
from explorer.errors import ConfigError, check_choice, check_int
from explorer.timing.latency import begin_training_step, end_training_step
from explorer.arch.presets import preset

Optimizer = Literal["sgd", "adam"]
Schedule = Literal["step", "constant"]

DATASET = "scikit-learn digits (1,797 8x8 grey images, 10 classes)"
VAL_FRACTION = 0.2      # share of each class held out for validation
SPLIT_SEED = 0          # the split never changes with the training seed: runs stay comparable
# One torch thread while training: on a busy 2-core machine two threads spend their time
# waiting for each other (10x slower epochs were measured), and one thread makes the losses
# independent of the machine's core count.
TRAIN_THREADS = 1
EVAL_BATCH = 512
MAX_EPOCHS = 1000
DEFAULT_LR = {"sgd": 0.1, "adam": 1e-3}  # SGD: He et al. 2015, Sec. 4.2; Adam: Kingma & Ba

ProgressFn = Callable[[int, int, int, str], None]   # (done_runs, total_runs, epoch, run_name)
StopFn = Callable[[], bool]


# -- data ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Digits:
    """The fixed split, normalised with the training set's mean and std. Never mutate."""

    x_train: torch.Tensor   # (N_train, 1, 8, 8) float32
    y_train: torch.Tensor   # (N_train,) int64
    x_val: torch.Tensor     # (N_val, 1, 8, 8)
    y_val: torch.Tensor     # (N_val,)
    mean: float
    std: float

    @property
    def in_channels(self) -> int:
        return self.x_train.shape[1]

    @property
    def input_size(self) -> int:
        return self.x_train.shape[-1]

    @property
    def num_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_val]).max()) + 1


@lru_cache(maxsize=1)
def load_digits() -> Digits:
    """scikit-learn's digits, stratified into train / validation with SPLIT_SEED."""
    from sklearn.datasets import load_digits as sk_digits

    raw = sk_digits()
    x = torch.tensor(raw.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8) in [0, 1]
    y = torch.tensor(raw.target, dtype=torch.int64)
    gen = torch.Generator().manual_seed(SPLIT_SEED)
    train_idx, val_idx = [], []
    for label in range(int(y.max()) + 1):
        idx = torch.nonzero(y == label).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_val = round(len(idx) * VAL_FRACTION)
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    train = torch.cat(train_idx)
    train = train[torch.randperm(len(train), generator=gen)]  # so any prefix is a random subset
    val = torch.sort(torch.cat(val_idx)).values
    mean, std = x[train].mean().item(), x[train].std().item()
    x = (x - mean) / std
    return Digits(x[train], y[train], x[val], y[val], mean, std)


def lab_config(cfg: ArchConfig) -> ArchConfig:
    """`cfg` adapted to the data: CIFAR-style stem, and channels, size and classes of the digits."""
    if not isinstance(cfg, ArchConfig):
        raise ConfigError("config", cfg, "an ArchConfig (e.g. explorer.preset('resnet20'))")
    data = load_digits()
    return cfg.replace(stem="cifar", in_channels=data.in_channels, input_size=data.input_size,
                       num_classes=data.num_classes)


# -- settings --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainSettings:
    """How a run trains. Frozen and hashable: with the configs, the cache key of a result."""

    epochs: int = 10                     # passes over the training set
    seed: int = 0                        # initialisation and batch order
    optimizer: Optimizer = "sgd"         # SGD with momentum, or Adam
    lr: float | None = None              # None = DEFAULT_LR of the optimizer
    batch_size: int = 64
    max_train: int | None = None         # use only the first N training images (None = all)
    momentum: float = 0.9                # SGD only
    weight_decay: float = 1e-4           # L2 penalty (He et al. 2015, Sec. 3.4)
    schedule: Schedule = "step"          # step: lr / 10 at 50% and 75% of epochs (Sec. 4.2)

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, 1, MAX_EPOCHS)
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_choice("optimizer", self.optimizer, get_args(Optimizer))
        check_choice("schedule", self.schedule, get_args(Schedule))
        if self.lr is not None:
            _check_float("lr", self.lr, 0.0, 10.0)
        check_int("batch_size", self.batch_size, 2, 4096)
        if self.max_train is not None:
            check_int("max_train", self.max_train, 2, 10**9)
        _check_float("momentum", self.momentum, 0.0, 1.0, lo_open=False, hi_open=True)
        _check_float("weight_decay", self.weight_decay, 0.0, 1.0, lo_open=False)

    @property
    def resolved_lr(self) -> float:
        return DEFAULT_LR[self.optimizer] if self.lr is None else float(self.lr)

    def lr_at(self, epoch: int) -> float:
        """Learning rate of 1-based `epoch`."""
        lr = self.resolved_lr
        if self.schedule == "step":
            lr *= 0.1 ** sum(epoch > m for m in (self.epochs * 0.5, self.epochs * 0.75))
        return lr

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__} | {"lr": self.resolved_lr}

    def with_overrides(self, **changes: Any) -> "TrainSettings":
        """A copy with the non-None `changes` applied (validated)."""
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            key = sorted(unknown)[0]
            raise ConfigError(key, changes[key], "one of " + ", ".join(self.__dataclass_fields__))
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _check_float(key: str, value: Any, lo: float, hi: float, lo_open: bool = True,
                 hi_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        raise ConfigError(key, value, f"a number in {left}{lo}, {hi}{right}")


# -- one run ---------------------------------------------------------------------------------
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
    seconds: float = 0.0                 # wall time of the whole run, initialisation included
    cancelled: bool = False              # stopped by should_stop before the last epoch
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
            `cancelled` set and the finished epochs kept.
        on_start: called once the model is built and its gradient norms measured, with the
            RunResult that the run then fills in epoch by epoch (for live views).

    Returns:
        A RunResult. The same config and settings give the same losses (fixed seeds, fixed
        batch order, TRAIN_THREADS torch threads).

    Raises:
        ConfigError: for an invalid config or setting, or a config that cannot take 8x8 input.
    """
    if settings is None:
        settings = TrainSettings(epochs=epochs, seed=seed, lr=lr, optimizer=optimizer,
                                 batch_size=batch_size, max_train=max_train)
    elif not isinstance(settings, TrainSettings):
        raise ConfigError("settings", settings, "a TrainSettings")
    cfg = lab_config(cfg)
    data = load_digits()
    x_train, y_train = data.x_train, data.y_train
    if settings.max_train is not None:
        x_train, y_train = x_train[: settings.max_train], y_train[: settings.max_train]

    start = time.perf_counter()
    with _training_threads(TRAIN_THREADS), torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = build_model(cfg)
        result = RunResult(cfg, settings, count_params(model, trainable_only=True),
                           weight_depth(model), len(x_train), len(data.x_val))
        probe = slice(0, min(settings.batch_size, len(x_train)))
        result.grad_norms = [{"run": cfg.name, **row}
                             for row in measure_grad_norms(model, x_train[probe], y_train[probe])]
        if on_start is not None:
            on_start(result)
        opt = _make_optimizer(model, settings)
        order = torch.Generator().manual_seed(settings.seed)
        for epoch in range(1, settings.epochs + 1):
            t0 = time.perf_counter()
            for group in opt.param_groups:
                group["lr"] = settings.lr_at(epoch)
            stats = _train_epoch(model, opt, x_train, y_train, settings.batch_size, order, should_stop)
            if stats is None:
                result.cancelled = True
                break
            train_loss, train_acc = stats
            val_loss, val_acc = evaluate(model, data.x_val, data.y_val)
            now = time.perf_counter()
            row = {
                "run": cfg.name, "epoch": epoch, "lr": settings.lr_at(epoch),
                "train_loss": train_loss, "train_acc": train_acc,
                "val_loss": val_loss, "val_acc": val_acc,
                "seconds": round(now - t0, 4), "elapsed": round(now - start, 4),
            }
            result.history.append(row)
            if progress is not None:
                progress(dict(row))
            if not math.isfinite(train_loss):
                result.diverged = True
                break
    result.seconds = time.perf_counter() - start
    return result


def _make_optimizer(model: nn.Module, s: TrainSettings) -> torch.optim.Optimizer:
    if s.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=s.resolved_lr, weight_decay=s.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=s.resolved_lr, momentum=s.momentum,
                           weight_decay=s.weight_decay)


def _train_epoch(model, opt, x, y, batch_size, gen, should_stop) -> tuple[float, float] | None:
    """One pass in a seeded random order: (mean loss, accuracy), or None when stopped."""
    model.train()
    perm = torch.randperm(len(x), generator=gen)
    loss_sum, correct, seen = 0.0, 0, 0
    for begin in range(0, len(x), batch_size):
        if should_stop is not None and should_stop():
            return None
        idx = perm[begin: begin + batch_size]
        if len(idx) < 2:  # BatchNorm cannot normalise a batch of one
            continue
        if not begin_training_step(should_stop):  # waits while a latency measurement runs
            return None
        try:
            logits = model(x[idx])  # (B, num_classes)
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        finally:
            end_training_step()
        loss_sum += loss.item() * len(idx)
        correct += int((logits.argmax(1) == y[idx]).sum())
        seen += len(idx)
        if not math.isfinite(loss_sum):
            break  # diverged: the caller records it and stops
    return loss_sum / max(seen, 1), correct / max(seen, 1)


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


def measure_grad_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[dict[str, Any]]:
    """Per residual unit, on one batch at the current weights: the L2 norm of the loss's
    gradient w.r.t. the unit's parameters (`grad_norm`) and w.r.t. its output
    (`output_grad_norm`, the signal that reaches that depth). Works on a copy in train mode.

    Plain nets (skip_span 0) report their blocks, the units that would carry the shortcut.
    """
    probe = copy.deepcopy(model)
    probe.train()
    units = [(name, mod) for name, mod in probe.named_modules() if isinstance(mod, ResidualUnit)]
    out_norms: dict[str, float] = {}
    hooks = []
    for name, unit in units:
        hooks.append(unit.register_forward_hook(_grad_probe(name, out_norms)))
    loss = F.cross_entropy(probe(x), y)
    probe.zero_grad(set_to_none=True)
    loss.backward()
    for h in hooks:
        h.remove()
    rows, layer = [], 1  # the stem conv is weight layer 1
    for unit_idx, (name, unit) in enumerate(units):
        layer += sum(1 for n, m in unit.named_modules()
                     if isinstance(m, nn.Conv2d) and not n.startswith("downsample"))
        grads = [p.grad.flatten() for p in unit.parameters() if p.grad is not None]
        rows.append({
            "unit": name,
            "unit_index": unit_idx,
            "stage": name.split(".")[0],
            "layer": layer,  # weight layer at the unit's end, counted from the input
            "residual": unit.residual,
            "grad_norm": torch.cat(grads).norm().item() if grads else 0.0,
            "output_grad_norm": out_norms.get(name, 0.0),
        })
    return rows


def _grad_probe(name: str, store: dict[str, float]):
    def hook(_mod, _args, out):
        out.register_hook(lambda g: store.__setitem__(name, g.norm().item()))
        # Hand on a copy: a later in-place op (a final ReLU) must not alter the hooked tensor.
        return out.clone()
    return hook


@contextmanager
def _training_threads(n: int) -> Iterator[None]:
    """`n` torch threads, and subnormal floats flushed to zero (tiny gradients of a diverging
    deep net otherwise slow the CPU down many times over; training is unaffected)."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(old)


# -- experiments -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Experiment:
    """A ready comparison: which configs, how they train, and which published claim it tests."""

    name: str
    title: str
    description: str
    claim: str                           # what the papers report, in their words' substance
    source: str                          # where the claim is made
    configs: tuple[ArchConfig, ...]      # empty for `custom` (the caller gives them)
    settings: TrainSettings
    expected_seconds: float | None = None  # measured wall time of the default run, 2-core CPU

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "description": self.description,
            "claim": self.claim, "source": self.source,
            "configs": [c.to_dict() for c in self.configs],
            "settings": self.settings.to_dict(), "expected_seconds": self.expected_seconds,
        }


@dataclass
class ExperimentResult:
    """All runs of an experiment (the finished ones, and a partial last one if cancelled)."""

    experiment: str
    title: str
    settings: TrainSettings
    runs: list[RunResult] = field(default_factory=list)
    total_runs: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    timed_out: bool = False             # stopped by `time_limit_s`

    def to_rows(self) -> list[dict[str, Any]]:
        """The results table: one row per run."""
        return [r.summary_row() for r in self.runs]

    def history_rows(self) -> list[dict[str, Any]]:
        """Long-format curves: one row per run and epoch (train_loss, val_acc, ...)."""
        return [dict(row) for r in self.runs for row in r.history]

    def grad_norm_rows(self) -> list[dict[str, Any]]:
        """Long-format gradient norms at initialisation: one row per run and residual unit."""
        return [dict(row) for r in self.runs for row in r.grad_norms]

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment, "title": self.title, "dataset": DATASET,
            "settings": self.settings.to_dict(), "total_runs": self.total_runs,
            "seconds": round(self.seconds, 3), "cancelled": self.cancelled, "timed_out": self.timed_out,
            "results": self.to_rows(), "runs": [r.to_dict() for r in self.runs],
        }

    def to_json_bytes(self) -> bytes:
        """The whole result as UTF-8 JSON (non-finite numbers as null)."""
        return json.dumps(_json_safe(self.to_dict()), indent=2, ensure_ascii=False).encode()

    def to_csv_bytes(self, table: Literal["results", "history", "grad_norms"] = "results") -> bytes:
        """One table as UTF-8 CSV."""
        rows = {"results": self.to_rows, "history": self.history_rows,
                "grad_norms": self.grad_norm_rows}
        if table not in rows:
            raise ConfigError("table", table, "one of " + ", ".join(rows))
        return _csv_bytes(rows[table]())


def run_experiment(
    experiment: str | Experiment | Sequence[ArchConfig],
    *,
    epochs: int | None = None,
    seed: int | None = None,
    lr: float | None = None,
    optimizer: Optimizer | None = None,
    batch_size: int | None = None,
    max_train: int | None = None,
    configs: Sequence[ArchConfig] | None = None,
    progress: ProgressFn | None = None,
    on_update: Callable[[ExperimentResult], None] | None = None,
    should_stop: StopFn | None = None,
    time_limit_s: float | None = None,
) -> ExperimentResult:
    """Train every config of an experiment in turn, with the same settings.

    Args:
        experiment: a name in EXPERIMENTS, an Experiment, or a list of configs (run as `custom`).
        epochs, seed, lr, optimizer, batch_size, max_train: override the experiment's defaults
            (None keeps the default).
        configs: the configs for `custom` (or to replace an experiment's own).
        progress: called as progress(done_runs, total_runs, epoch, run_name) when a run starts
            (epoch 0, after its gradient norms are measured) and after each of its epochs.
        on_update: called with the partial ExperimentResult at the same moments (live curves);
            the current run is its last entry.
        should_stop: polled before every batch; True ends the experiment, keeping what finished.
        time_limit_s: wall-time bound; past it the experiment ends as if stopped (`timed_out`).

    Raises:
        ConfigError: unknown experiment, no configs, an invalid config or setting.
    """
    exp = get_experiment(experiment)
    if configs is not None:
        exp = replace(exp, configs=tuple(configs))
    if not exp.configs:
        raise ConfigError("configs", [], f"at least one config for the {exp.name!r} experiment")
    settings = exp.settings.with_overrides(epochs=epochs, seed=seed, lr=lr, optimizer=optimizer,
                                           batch_size=batch_size, max_train=max_train)
    cfgs = _unique_names([lab_config(c) for c in exp.configs])  # validate all before training
    result = ExperimentResult(exp.name, exp.title, settings, total_runs=len(cfgs))
    start = time.perf_counter()
    if time_limit_s is not None:
        deadline, asked = time.monotonic() + time_limit_s, should_stop

        def should_stop() -> bool:
            if time.monotonic() > deadline:
                result.timed_out = True
                return True
            return bool(asked is not None and asked())

    def notify(done_runs: int, epoch: int, name: str) -> None:
        result.seconds = time.perf_counter() - start
        if progress is not None:
            progress(done_runs, len(cfgs), epoch, name)
        if on_update is not None:
            on_update(result)

    for done, cfg in enumerate(cfgs):
        if should_stop is not None and should_stop():
            result.cancelled = True
            break
        run = train(
            cfg, settings=settings, should_stop=should_stop,
            on_start=lambda run, done=done: (result.runs.append(run), notify(done, 0, run.name)),
            progress=lambda row, done=done: notify(done, row["epoch"], row["run"]),
        )
        if run.cancelled:
            result.cancelled = True
            break
    result.seconds = time.perf_counter() - start
    if not result.cancelled:
        notify(len(cfgs), settings.epochs, cfgs[-1].name)
    return result


# Wall-time model of one run on one CPU thread, fitted by benchmarks/bench_lab.py on the
# 2-core reference machine: per epoch, SECONDS_PER_MAC for every multiply-add (a training
# sample costs about 3 forward passes, a validation sample 1) plus SECONDS_PER_LAYER_STEP for
# every weight layer in every optimiser step (per-op overhead, which dominates small nets).
SECONDS_PER_MAC = 2.5e-11
SECONDS_PER_LAYER_STEP = 5.6e-4
SECONDS_PER_RUN = 0.3   # build, gradient norms, first-step warm-up


def estimate_seconds(
    experiment: str | Experiment | Sequence[ArchConfig],
    *,
    settings: TrainSettings | None = None,
    configs: Sequence[ArchConfig] | None = None,
    **overrides: Any,
) -> float:
    """Expected wall time of `run_experiment` with these arguments, before starting it.

    The measured `expected_seconds` for a ready experiment at its defaults; otherwise a
    model from each network's multiply-adds and depth (see SECONDS_PER_MAC). Machines and
    load vary: treat it as a guide to the order of magnitude.
    """
    exp = get_experiment(experiment)
    if configs is not None:
        exp = replace(exp, configs=tuple(configs))
    if settings is None:
        settings = exp.settings.with_overrides(**overrides)
    if exp.expected_seconds is not None and configs is None and \
            replace(settings, seed=exp.settings.seed) == exp.settings:
        return exp.expected_seconds
    from explorer.facts.summary import measure_summary

    data = load_digits()
    n_train = len(data.x_train) if settings.max_train is None else min(settings.max_train, len(data.x_train))
    steps = math.ceil(n_train / settings.batch_size)
    total = 0.0
    for cfg in exp.configs:
        info = measure_summary(lab_config(cfg))
        per_epoch = (SECONDS_PER_MAC * info["macs"] * (3 * n_train + len(data.x_val))
                     + SECONDS_PER_LAYER_STEP * info["depth"] * steps)
        total += SECONDS_PER_RUN + settings.epochs * per_epoch
    return total


def get_experiment(experiment: str | Experiment | Sequence[ArchConfig]) -> Experiment:
    """The Experiment a name, an Experiment or a list of configs (as `custom`) stands for."""
    if isinstance(experiment, Experiment):
        return experiment
    if isinstance(experiment, str):
        if experiment not in EXPERIMENTS:
            raise ConfigError("experiment", experiment, "one of " + ", ".join(EXPERIMENTS))
        return EXPERIMENTS[experiment]
    if isinstance(experiment, ArchConfig):
        experiment = [experiment]
    if isinstance(experiment, (list, tuple)) and all(isinstance(c, ArchConfig) for c in experiment):
        return replace(EXPERIMENTS["custom"], configs=tuple(experiment))
    raise ConfigError("experiment", experiment,
                      "an experiment name (" + ", ".join(EXPERIMENTS) + ") or a list of ArchConfigs")


def _unique_names(cfgs: list[ArchConfig]) -> list[ArchConfig]:
    """Runs are told apart by name: a repeated name gets a ' (2)', ' (3)' suffix."""
    names = distinct_labels([c.name for c in cfgs], repeat="{name} ({n})")
    return [c if c.name == name else c.replace(name=name) for c, name in zip(cfgs, names)]


# -- helpers -----------------------------------------------------------------------------------
def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue().encode()


# -- the ready experiments -----------------------------------------------------------------------
def _digits_cfg(name: str, base: str, **changes: Any) -> ArchConfig:
    """A CIFAR preset of He et al. 2015 (widths 16/32/64, option A) sized for the digits:
    3 stages take the 8x8 input to 8, 4 and 2 pixels."""
    return lab_config(preset(base).replace(name=name, **changes))


_HE15 = "He et al. 2015, Deep Residual Learning (arXiv 1512.03385)"
_HE16 = "He et al. 2016, Identity Mappings in Deep Residual Networks (arXiv 1603.05027)"

EXPERIMENTS: dict[str, Experiment] = {}


def _register(exp: Experiment) -> None:
    EXPERIMENTS[exp.name] = exp


_DEFAULTS = TrainSettings(epochs=10, seed=0, optimizer="sgd", batch_size=64)

_register(Experiment(
    name="degradation",
    title="Degradation: plain vs residual at 20 and 56 layers",
    description=(
        "Four CIFAR-style networks (3 stages, widths 16/32/64, option A shortcuts): plain and "
        "residual at 20 and 56 weight layers. The residual nets are the papers' resnet20/56; the "
        "plain nets are the same stacks without shortcuts."
    ),
    claim=(
        "A deeper plain network has higher training error than a shallower one (degradation), "
        "while the deeper residual network trains at least as well as the shallower one."
    ),
    source=_HE15 + ", Sec. 4.2 and Fig. 6",
    configs=(
        _digits_cfg("plain20", "plain20"),
        _digits_cfg("resnet20", "resnet20"),
        _digits_cfg("plain56", "plain56"),
        _digits_cfg("resnet56", "resnet56"),
    ),
    settings=_DEFAULTS,
    expected_seconds=50.0,  # measured: python benchmarks/bench_lab.py
))

_register(Experiment(
    name="skip_span",
    title="Skip span: shortcuts over 0, 1, 2 or 3 weight layers at equal depth",
    description=(
        "A 38-layer CIFAR-style network (6 basic blocks a stage, widths 16/32/64, option A) "
        "with the shortcut spanning 0 (plain), 1, 2 (the paper's basic block) or 3 weight "
        "layers; each stage's 12 layers divide evenly for every span, so no unit is cut short."
    ),
    claim=(
        "A shortcut over a single layer (y = W1 x + x, close to a linear layer) showed no "
        "advantage; the papers span two or three layers. In He et al. 2016 a 1-layer skip "
        "ResNet-110 reached 9.90% CIFAR-10 error against 6.61% for the 2-layer original."
    ),
    source=_HE15 + ", Sec. 3.1; " + _HE16 + ", Table 3",
    configs=tuple(_digits_cfg(f"span{k}", "resnet20", depths=[6, 6, 6], skip_span=k)
                  for k in range(4)),
    settings=_DEFAULTS,
    expected_seconds=44.0,  # measured: python benchmarks/bench_lab.py
))

_UNITS = [
    ("(a) original", "after_conv", "after_add"),
    ("(b) BN after addition", "after_add", "after_add"),
    ("(c) ReLU before addition", "after_conv", "before_add"),
    ("(d) ReLU-only pre-activation", "after_conv", "before_conv"),
    ("(e) full pre-activation", "before_conv", "before_conv"),
]

_register(Experiment(
    name="units",
    title="Residual units (a)-(e): where BN and ReLU sit",
    description=(
        "The five units of He et al. 2016 Fig. 4 in the 32-layer CIFAR network (widths "
        "16/32/64, option A), from the original post-activation unit (a) to full "
        "pre-activation (e)."
    ),
    claim=(
        "On CIFAR-10 with ResNet-110: (a) 6.61%, (b) BN after addition 8.17%, (c) ReLU before "
        "addition 7.84%, (d) ReLU-only pre-activation 6.71%, (e) full pre-activation 6.37% "
        "error: (e) is best, (b) and (c) are worse than the original."
    ),
    source=_HE16 + ", Table 2 and Fig. 4",
    configs=tuple(_digits_cfg(label, "resnet32", bn_position=bn, relu_position=relu)
                  for label, bn, relu in _UNITS),
    settings=_DEFAULTS,
    expected_seconds=50.0,  # measured: python benchmarks/bench_lab.py
))

_register(Experiment(
    name="custom",
    title="Your comparison set",
    description="The configs you are comparing, each adapted to the digits (CIFAR-style stem, 8x8 input).",
    claim="",
    source="",
    configs=(),
    settings=_DEFAULTS,
))
