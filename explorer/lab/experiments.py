"""Lab experiments: ready comparisons that test the papers' claims, run one config at a time.

Results are plain dicts and row lists, ready for pandas and plotly:

    result = run_experiment("degradation", progress=print)
    result.to_rows()           # one row per run: final loss, accuracies, wall time
    result.history_rows()      # one row per run and epoch
    result.grad_norm_rows()    # one row per run and residual unit, at initialisation
"""
from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal, Sequence

from explorer.arch.config import ArchConfig
from explorer.arch.presets import preset
from explorer.labels import distinct_labels
from explorer.errors import ConfigError
from explorer.facts.limits import Estimate, check_limits
from explorer.lab.data import DATASET, lab_config
from explorer.lab.settings import Optimizer, TrainSettings
from explorer.lab.training import RunResult, StopFn, train

ProgressFn = Callable[[int, int, int, str], None]   # (done_runs, total_runs, epoch, run_name)


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
    # Wall time of the default run measured by benchmarks/bench_lab.py on the 2-core reference
    # machine: a record to compare against, not the estimate (see explorer.lab.estimate).
    expected_seconds: float | None = None

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
        ConfigError: unknown experiment, no configs, an invalid config or setting, or a
            config over the server's size limits (every config is checked before any trains).
    """
    runs = prepare_runs(experiment, configs=configs, epochs=epochs, seed=seed, lr=lr,
                        optimizer=optimizer, batch_size=batch_size, max_train=max_train)
    exp, settings, cfgs = runs.experiment, runs.settings, list(runs.configs)
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


@dataclass(frozen=True)
class PreparedRuns:
    """What an experiment will train, validated and checked against the limits, nothing built."""

    experiment: Experiment
    settings: TrainSettings
    configs: tuple[ArchConfig, ...]      # adapted to the data, names made distinct
    sizes: tuple[Estimate, ...]          # per config: weight layers, params, MACs (plan arithmetic)


def prepare_runs(
    experiment: str | Experiment | Sequence[ArchConfig],
    *,
    configs: Sequence[ArchConfig] | None = None,
    settings: TrainSettings | None = None,
    **overrides: Any,
) -> PreparedRuns:
    """The runs `run_experiment` would make: settings (`overrides` apply unless `settings` is
    given), and every config adapted to the data and checked against the server's limits.

    Raises:
        ConfigError: as `run_experiment`, before anything is built.
    """
    exp = get_experiment(experiment)
    if configs is not None:
        exp = replace(exp, configs=tuple(configs))
    if not exp.configs:
        raise ConfigError("configs", [], f"at least one config for the {exp.name!r} experiment")
    if settings is None:
        settings = exp.settings.with_overrides(**overrides)
    elif not isinstance(settings, TrainSettings):
        raise ConfigError("settings", settings, "a TrainSettings")
    cfgs = _unique_names([lab_config(c) for c in exp.configs])
    sizes = tuple(check_limits(c) for c in cfgs)
    return PreparedRuns(exp, settings, tuple(cfgs), sizes)


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
