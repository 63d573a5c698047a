"""How a Lab run trains: one frozen settings record, validated once on entry."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal, Mapping, get_args

from explorer.errors import ConfigError, check_choice, check_int
from explorer.limits import MAX_EPOCHS, MAX_SEEDS

Optimizer = Literal["sgd", "adam"]
Schedule = Literal["step", "constant"]

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
        return cls().with_overrides(**data)

    def with_overrides(self, **changes: Any) -> "TrainSettings":
        """A copy with the non-None `changes` applied (validated)."""
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            key = sorted(unknown)[0]
            raise ConfigError(key, changes[key], "one of " + ", ".join(self.__dataclass_fields__))
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


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
