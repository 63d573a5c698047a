"""Lab experiments: ready comparisons that test the papers' claims, each variant at several seeds,
and `prepare_runs`, which turns a request into the validated runs `run_experiment`
(explorer.lab.running) trains.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from explorer.arch.config import ArchConfig
from explorer.arch.presets import preset
from explorer.labels import distinct_labels
from explorer.errors import ConfigError
from explorer.facts.limits import Estimate, check_limits
from explorer.lab.data import default_data_dir, lab_config, load_data
from explorer.lab.settings import TrainSettings, check_seeds
from explorer.lab.training import train_device
from explorer.lab.workers import Task, workers_for
from explorer.lessons import UNIT_VARIANTS


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
    # Wall time of the default settings at one seed (`seeds=1`, in-process) measured by
    # benchmarks/bench_lab.py on the 2-core reference machine: a record to compare against,
    # not the estimate (see explorer.lab.estimate).
    expected_seconds: float | None = None
    # (a, b) run names whose comparison the conclusions report; empty: each run against the first
    comparisons: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "description": self.description,
            "claim": self.claim, "source": self.source,
            "configs": [c.to_dict() for c in self.configs],
            "settings": self.settings.to_dict(), "expected_seconds": self.expected_seconds,
            "comparisons": [list(p) for p in self.comparisons],
        }


@dataclass(frozen=True)
class PreparedRuns:
    """What an experiment will train, validated and checked against the limits, nothing built."""

    experiment: Experiment
    settings: TrainSettings              # its seed is the first of `seeds`
    configs: tuple[ArchConfig, ...]      # adapted to the data, names made distinct
    sizes: tuple[Estimate, ...]          # per config: weight layers, params, MACs (plan arithmetic)
    seeds: tuple[int, ...] = (0,)        # every config trains once at each
    workers: int = 1                     # processes they train in (1: this one)

    def tasks(self) -> list[Task]:
        """One run per config and seed, config-major (a variant's seeds next to each other)."""
        return [Task(i * len(self.seeds) + j, cfg, replace(self.settings, seed=seed))
                for i, cfg in enumerate(self.configs) for j, seed in enumerate(self.seeds)]


def prepare_runs(
    experiment: str | Experiment | Sequence[ArchConfig],
    *,
    configs: Sequence[ArchConfig] | None = None,
    settings: TrainSettings | None = None,
    seeds: int | None = None,
    download: bool = False,
    **overrides: Any,
) -> PreparedRuns:
    """The runs `run_experiment` would make: the settings (the experiment's, with `overrides`
    such as epochs=, seed=, lr=, optimizer=, batch_size=, max_train=, dataset=, data_dir=,
    recipe=, iterations= applied; or `settings` whole), the seeds and workers, and every config
    adapted to the data and checked against the server's limits. CIFAR is read here (fetched
    first when `download`), so missing data is said before anything trains; with an iteration
    budget, `epochs` becomes the passes it takes.

    Raises:
        ConfigError: as `run_experiment`, before anything is built; also when both `settings`
            and an override are given (one of them would be ignored), or `epochs` beside an
            iteration budget (the recipe counts iterations).
    """
    exp = get_experiment(experiment)
    if configs is not None:
        exp = replace(exp, configs=tuple(configs), comparisons=())
    if not exp.configs:
        raise ConfigError("configs", [], f"at least one config for the {exp.name!r} experiment")
    if settings is None:
        settings = exp.settings.with_overrides(**overrides)
        if overrides.get("epochs") is not None and settings.iterations is not None:
            raise ConfigError("epochs", overrides["epochs"], f"no epochs beside the {settings.recipe} recipe's "
                              f"{settings.iterations} iterations (set iterations instead)")
    elif not isinstance(settings, TrainSettings):
        raise ConfigError("settings", settings, "a TrainSettings")
    elif any(v is not None for v in overrides.values()):
        key = next(k for k, v in overrides.items() if v is not None)
        raise ConfigError(key, overrides[key], "no value beside settings= (set it in the TrainSettings)")
    n_seeds = check_seeds(seeds)
    train_device(settings)  # device="cuda" on a machine without one: said before anything trains
    cfgs = _unique_names([lab_config(c, settings.dataset) for c in exp.configs])
    sizes = tuple(check_limits(c) for c in cfgs)
    if settings.dataset != "digits":  # every run (a worker, a Ray task) reads the same place
        where = Path(settings.data_dir or default_data_dir()).expanduser().resolve()
        settings = replace(settings, data_dir=str(where))
    if settings.dataset != "digits" or settings.iterations is not None:
        data = load_data(settings.dataset, settings.data_dir, download)
        n_train = len(data.x_train) if settings.max_train is None else min(settings.max_train, len(data.x_train))
        settings = settings.for_data(n_train)
    all_seeds = tuple(settings.seed + k for k in range(n_seeds))
    return PreparedRuns(exp, settings.resolved(), tuple(cfgs), sizes, all_seeds, workers_for(n_seeds))


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
    comparisons=(("plain20", "plain56"), ("resnet20", "resnet56"), ("plain20", "resnet20"),
                 ("plain56", "resnet56")),
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
    source=_HE15 + ", Sec. 3.2; " + _HE16 + ", Table 3",
    configs=tuple(_digits_cfg(f"span{k}", "resnet20", depths=[6, 6, 6], skip_span=k)
                  for k in range(4)),
    settings=_DEFAULTS,
    expected_seconds=44.0,  # measured: python benchmarks/bench_lab.py
    comparisons=(("span2", "span0"), ("span2", "span1"), ("span2", "span3")),
))

_UNITS = [(v.label, v.bn_position, v.relu_position) for v in UNIT_VARIANTS.values()]  # Fig. 4 (a)-(e)

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
    comparisons=tuple((_UNITS[0][0], label) for label, _, _ in _UNITS[1:]),
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
