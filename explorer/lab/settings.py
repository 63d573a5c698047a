"""How a Lab run trains: one frozen settings record, validated once on entry."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal, Mapping, get_args

from explorer.errors import ConfigError, check_choice, check_int
from explorer.lab.data import DATASETS, Dataset
from explorer.limits import MAX_EPOCHS, MAX_SEEDS

Optimizer = Literal["sgd", "adam"]
Schedule = Literal["step", "constant"]
# quick: the Lab's live demonstration (epochs, lr / 10 at 50% and 75% of them); paper: He et al.
# 2015, Sec. 4.2 (iterations, the same milestones: 32k and 48k of 64k).
Recipe = Literal["quick", "paper"]
RECIPES: tuple[str, ...] = get_args(Recipe)
# Where a run trains. auto: a CUDA GPU for CIFAR when there is one (bf16 autocast, channels_last),
# else the CPU in fp32; the digits always train on the CPU, where their tiny steps are fastest.
Device = Literal["auto", "cpu", "cuda"]

MAX_ITERATIONS = 10_000_000
MAX_DATA_DIR = 4096                  # characters of a data directory path
# The paper recipe: SGD with momentum 0.9, weight decay 1e-4, batch 128, lr 0.1 divided by 10 at
# 32k and 48k iterations, 64k iterations in all.
PAPER: dict[str, Any] = dict(optimizer="sgd", lr=0.1, batch_size=128, momentum=0.9, weight_decay=1e-4,
                             schedule="step", iterations=64_000)
# "For the 110-layer ResNet, we find that the initial learning rate of 0.1 is slightly too large
# to start converging. So we use 0.01 to warm up the training until the training error is below
# 80% (about 400 iterations), and then go back to 0.1" (Sec. 4.2): applied by the paper recipe to
# every network deeper than WARMUP_DEPTH weight layers, for WARMUP_STEPS steps.
WARMUP_DEPTH = 100
WARMUP_STEPS = 400
WARMUP_FACTOR = 0.1
_OPTIONAL = ("lr", "max_train", "data_dir", "iterations")  # fields whose None means something

DEFAULT_SEEDS = 3   # seeds per variant: enough for a mean and a spread
DEFAULT_LR = {"sgd": 0.1, "adam": 1e-3}  # SGD: He et al. 2015, Sec. 4.2; Adam: Kingma & Ba


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
    schedule: Schedule = "step"          # step: lr / 10 at 50% and 75% of epochs (or iterations; Sec. 4.2)
    dataset: Dataset = "digits"          # the embedded digits, or CIFAR-10 / CIFAR-100 from data_dir
    data_dir: str | None = None          # where CIFAR's archive or extracted folder lies
    recipe: Recipe = "quick"             # which training the other fields were set from (see PAPER)
    iterations: int | None = None        # optimiser steps in all (the schedule counts them); None: epochs
    device: Device = "auto"

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
        check_choice("dataset", self.dataset, DATASETS)
        if self.data_dir is not None and (not isinstance(self.data_dir, str) or len(self.data_dir) > MAX_DATA_DIR):
            raise ConfigError("data_dir", self.data_dir, f"a directory path of at most {MAX_DATA_DIR} characters")
        check_choice("recipe", self.recipe, get_args(Recipe))
        if self.iterations is not None:
            check_int("iterations", self.iterations, 1, MAX_ITERATIONS)
        check_choice("device", self.device, get_args(Device))

    @property
    def resolved_lr(self) -> float:
        return DEFAULT_LR[self.optimizer] if self.lr is None else float(self.lr)

    def lr_at(self, epoch: int) -> float:
        """Learning rate of 1-based `epoch` (a schedule by epochs: `iterations` None)."""
        lr = self.resolved_lr
        if self.schedule == "step":
            lr *= 0.1 ** sum(epoch > m for m in (self.epochs * 0.5, self.epochs * 0.75))
        return lr

    def lr_at_step(self, step: int, depth: int = 0) -> float:
        """Learning rate of 1-based optimiser step `step` of a network `depth` weight layers deep,
        under a schedule by iterations (or by epochs, where `iterations` is None: see `lr_at`)."""
        lr = self.resolved_lr
        if self.recipe == "paper" and depth > WARMUP_DEPTH and step <= WARMUP_STEPS:
            return lr * WARMUP_FACTOR
        if self.schedule == "step" and self.iterations is not None:
            lr *= 0.1 ** sum(step > m for m in (self.iterations * 0.5, self.iterations * 0.75))
        return lr

    def steps_per_epoch(self, n_train: int) -> int:
        """Optimiser steps in one pass over `n_train` images (a last batch of one is skipped:
        BatchNorm cannot normalise it)."""
        return n_train // self.batch_size + (1 if n_train % self.batch_size >= 2 else 0)

    def for_data(self, n_train: int) -> "TrainSettings":
        """With `iterations` set: `epochs` made the passes those steps take over `n_train` images
        (the last one cut short at the last step). Unchanged otherwise."""
        if self.iterations is None:
            return self
        epochs = math.ceil(self.iterations / max(self.steps_per_epoch(n_train), 1))
        if epochs > MAX_EPOCHS:
            raise ConfigError("iterations", self.iterations,
                              f"at most {MAX_EPOCHS} passes over the {n_train} training images "
                              f"({MAX_EPOCHS * self.steps_per_epoch(n_train)} iterations at batch {self.batch_size})")
        return self if epochs == self.epochs else replace(self, epochs=epochs)

    def resolved(self) -> "TrainSettings":
        """The same settings with the optimizer's default learning rate written out."""
        return self if self.lr is not None else replace(self, lr=self.resolved_lr)

    def to_dict(self) -> dict[str, Any]:
        """Every field, the learning rate resolved (`from_dict` gives back `resolved()`)."""
        return {f: getattr(self, f) for f in self.__dataclass_fields__} | {"lr": self.resolved_lr}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainSettings":
        """Validated settings from a JSON object; missing keys take defaults."""
        if not isinstance(data, Mapping):
            raise ConfigError("settings", data, "a JSON object of training settings")
        settings = cls().with_overrides(**data)
        unset = {k: None for k in _OPTIONAL if k in data and data[k] is None}  # a None said so stays None
        return replace(settings, **unset) if unset else settings

    def with_overrides(self, **changes: Any) -> "TrainSettings":
        """A copy with the non-None `changes` applied (validated). A change of `recipe` first
        sets the recipe's own values (PAPER, or the quick defaults), then the other changes."""
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            key = sorted(unknown)[0]
            raise ConfigError(key, changes[key], "one of " + ", ".join(self.__dataclass_fields__))
        base = self
        recipe = changes.get("recipe")
        if recipe is not None and recipe != self.recipe:
            base = self.with_recipe(recipe)
        return replace(base, **{k: v for k, v in changes.items() if v is not None})

    def with_recipe(self, recipe: str) -> "TrainSettings":
        """These settings trained by `recipe`: PAPER's values, or the quick defaults (the data,
        seed and device kept)."""
        check_choice("recipe", recipe, get_args(Recipe))
        values = PAPER if recipe == "paper" else {k: getattr(TrainSettings(), k) for k in PAPER}
        return replace(self, recipe=recipe, **values)


def check_seeds(seeds: Any) -> int:
    """The number of seeds per variant (None: DEFAULT_SEEDS), validated."""
    if seeds is None:
        return DEFAULT_SEEDS
    check_int("seeds", seeds, 1, MAX_SEEDS)
    return int(seeds)


def _check_float(key: str, value: Any, lo: float, hi: float, lo_open: bool = True,
                 hi_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        raise ConfigError(key, value, f"a number in {left}{lo}, {hi}{right}")
