"""What one Lab run records: an epoch's numbers, a unit's gradient norm, the run itself.

Frozen records; `to_dict` / `from_dict` only where they meet JSON (the command line's --json,
the downloads, the run store), and `from_dict(x.to_dict()) == x`.
"""
from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields
from typing import Any, Literal, Mapping, get_args

from explorer.arch.config import ArchConfig
from explorer.arch.plan import effective_span
from explorer.errors import ConfigError, check_choice
from explorer.lab.settings import TrainSettings

# How a run ended: all its epochs ("complete"), stopped ("cancelled"), its loss blew up
# ("diverged": not finite, or over 1000 x ln(classes); the rule is explorer.lab.training's),
# still training ("running"), or, for a planned run, never started.
RunStatus = Literal["running", "complete", "cancelled", "diverged", "not run"]


def _fields_of(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of `data` that are fields of `cls`; ConfigError naming a missing one."""
    if not isinstance(data, Mapping):
        raise ConfigError(cls.__name__, data, "a JSON object")
    names = [f.name for f in fields(cls)]
    missing = [f.name for f in fields(cls) if f.name not in data and f.default is MISSING]
    if missing:
        raise ConfigError(missing[0], None, f"a value (a {cls.__name__} has {', '.join(names)})")
    return {n: data[n] for n in names if n in data}


@dataclass(frozen=True)
class EpochRecord:
    """One finished epoch of one run."""

    run: str                     # the variant (config name)
    seed: int
    epoch: int                   # 1-based
    lr: float                    # learning rate of this epoch
    train_loss: float | None     # mean over the epoch's batches (None: not finite, from JSON)
    train_acc: float | None      # share of training images right, 0-1
    val_loss: float | None       # on the validation set, eval mode
    val_acc: float | None
    seconds: float               # this epoch's wall time
    elapsed: float               # the run's wall time at its end, initialisation included

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EpochRecord":
        return cls(**_fields_of(cls, data))


@dataclass(frozen=True)
class GradNorm:
    """Gradient norms of one residual unit at initialisation, on one batch."""

    run: str
    seed: int
    unit: str                    # module path, "layer1.0"
    unit_index: int
    stage: str                   # "layer1"
    layer: int                   # weight layer at the unit's end, counted from the input
    residual: bool               # whether the unit adds a shortcut
    grad_norm: float             # of the loss w.r.t. the unit's parameters
    output_grad_norm: float      # of the loss w.r.t. the unit's output

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GradNorm":
        return cls(**_fields_of(cls, data))


@dataclass(frozen=True)
class RunResult:
    """One trained config at one seed: per-epoch history, gradient norms at initialisation,
    how it ended. A run in progress is a series of these (status "running")."""

    config: ArchConfig                   # the config as trained (adapted to the data)
    settings: TrainSettings              # the learning rate resolved
    params: int                          # trainable parameters of the built model
    depth: int                           # weight layers on the main path (the papers' count)
    n_train: int
    n_val: int
    history: tuple[EpochRecord, ...] = ()   # one per finished epoch
    grad_norms: tuple[GradNorm, ...] = ()   # one per residual unit
    seconds: float = 0.0                 # wall time so far, initialisation included (ms precision)
    status: RunStatus = "running"
    epoch_fraction: float = 0.0          # share of the epoch in progress done when cut short

    def __post_init__(self) -> None:
        check_choice("status", self.status, tuple(s for s in get_args(RunStatus) if s != "not run"))
        object.__setattr__(self, "settings", self.settings.resolved())
        object.__setattr__(self, "history", tuple(self.history))
        object.__setattr__(self, "grad_norms", tuple(self.grad_norms))

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def seed(self) -> int:
        return self.settings.seed

    @property
    def cancelled(self) -> bool:
        """Cut short (a stop, or a caller's exception) before its last epoch."""
        return self.status == "cancelled"

    @property
    def diverged(self) -> bool:
        """A loss became inf / NaN or exceeded 1000 x ln(classes) (training stopped there; the
        rule: `explorer.lab.training.diverged`)."""
        return self.status == "diverged"

    @property
    def final(self) -> EpochRecord | None:
        """The last finished epoch, or None when no epoch finished."""
        return self.history[-1] if self.history else None

    def summary_row(self) -> dict[str, Any]:
        """One row of the results table: the final epoch's numbers."""
        last = self.final
        vals = [r.val_acc for r in self.history if _finite(r.val_acc)]
        return {
            "run": self.name,
            "seed": self.seed,
            "depth": self.depth,
            "skip_span": effective_span(self.config),
            "bn_position": self.config.bn_position,
            "relu_position": self.config.relu_position,
            "params": self.params,
            "epochs": len(self.history),
            "train_loss": last.train_loss if last else None,
            "train_acc": last.train_acc if last else None,
            "val_loss": last.val_loss if last else None,
            "val_acc": last.val_acc if last else None,
            "best_val_acc": max(vals) if vals else None,
            "seconds": round(self.seconds, 2),
            "cancelled": self.cancelled,
            "diverged": self.diverged,
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; `final` (the summary row) and the two flags are derived from the rest."""
        return {
            "config": self.config.to_dict(),
            "settings": self.settings.to_dict(),
            "params": self.params,
            "depth": self.depth,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "history": [r.to_dict() for r in self.history],
            "grad_norms": [g.to_dict() for g in self.grad_norms],
            "final": self.summary_row(),
            "seconds": self.seconds,
            "cancelled": self.cancelled,
            "epoch_fraction": self.epoch_fraction,
            "diverged": self.diverged,
            "status": self.status,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunResult":
        if not isinstance(data, Mapping):
            raise ConfigError("run", data, "a JSON object")
        status = data.get("status") or ("diverged" if data.get("diverged") else
                                         "cancelled" if data.get("cancelled") else "complete")
        return cls(
            config=ArchConfig.from_dict(data["config"]),
            settings=TrainSettings.from_dict(data["settings"]),
            params=data["params"], depth=data["depth"], n_train=data["n_train"], n_val=data["n_val"],
            history=tuple(EpochRecord.from_dict(r) for r in data.get("history", ())),
            grad_norms=tuple(GradNorm.from_dict(g) for g in data.get("grad_norms", ())),
            seconds=data.get("seconds", 0.0), status=status, epoch_fraction=data.get("epoch_fraction", 0.0),
        )


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
