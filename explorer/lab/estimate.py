"""How long a Lab experiment will take on this machine, before it starts.

A run's time is modelled from each network's size, read off the layer plan by arithmetic
(`explorer.facts.limits.check_limits`, which also refuses oversized configs): per epoch,
every multiply-add of every pass (a training sample costs about 3 forward passes: forward,
and backward for inputs and weights; a validation sample 1), plus a fixed cost per weight
layer and optimiser step (per-op overhead, which dominates the Lab's small nets). The two
rates come from `calibrate()`: a few timed training steps of two small reference networks
at the data set's input shape (8x8 grey digits, 32x32 colour CIFAR), once per process and shape.
An iteration budget (the paper recipe) counts its steps, not whole passes. When this machine cannot be timed, the reference machine's rates stand in
and the estimate says it is a guess.

Seeds: each config trains once per seed. In one process the runs add up; across W worker
processes they are scheduled as the pool takes them (each free worker takes the next run, in
config-major order), so the time is that schedule's longest worker, plus the workers' start
(and, the first time in a process, their fork server's), at a rate slowed by the cores they
share (PARALLEL_SLOWDOWN).
"""
from __future__ import annotations

import math
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch.optim.sgd import sgd

from explorer.arch.builder import build_model
from explorer.arch.config import ArchConfig
from explorer.arch.presets import preset
from explorer.facts.limits import Estimate, check_limits
from explorer.lab.data import lab_config, load_data
from explorer.lab.experiments import Experiment, prepare_runs
from explorer.lab.settings import TrainSettings
from explorer.lab.training import (EVAL_BATCH, TRAIN_THREADS, flush_denormals, torch_threads, train_device,
                                   train_step)
from explorer.lab.workers import server_running
from explorer.timing.gate import device_lock, exclusive_measurement

PASSES_PER_TRAIN_SAMPLE = 3   # forward, backward to the inputs, backward to the weights
CALIBRATION_BATCH = 64        # the default batch size
CALIBRATION_BATCH_CIFAR = 16  # 32x32 images: a few steps still take well under a second
CALIBRATION_WARMUP = 2        # untimed steps first (allocator, kernel selection)
CALIBRATION_STEPS = 4         # timed steps per reference network; the median is kept
CALIBRATION_WAIT_S = 1.0      # longest wait for a latency measurement to finish before giving up
# A calibration whose thread got less than this share of a core (other work had the machine)
# holds while the machine stays that busy: it is used for RECALIBRATE_S, then measured again,
# never kept for the life of the process as a calibration on a quiet machine is.
BUSY_SHARE = 0.75
RECALIBRATE_S = 30.0
# The first torch.optim optimizer of a process imports torch._dynamo: 1 s on the reference
# machine, scaled to this one by the per-op rate (both are Python-bound).
FIRST_OPTIMIZER_S = 1.0
# Worker processes, on the reference machine (scaled like FIRST_OPTIMIZER_S): the fork server's
# start, once per process (it imports torch, the Lab, scikit-learn and torch._dynamo), and each
# worker's start from it (fork, the digits loaded); runs in parallel each go this much slower.
SERVER_START_S = 6.0
WORKER_START_S = 0.5
PARALLEL_SLOWDOWN = 1.1


@dataclass(frozen=True)
class Calibration:
    """Training costs on one machine at one torch thread count."""

    seconds_per_mac: float         # per multiply-add of one forward pass of one image
    seconds_per_layer_step: float  # per weight layer and optimiser step (per-op overhead)
    seconds_per_layer_build: float # building and initialising a model, per weight layer
    measured: bool                 # True: timed on this machine; False: a stand-in
    seconds: float = 0.0           # how long the calibration itself took
    cpu_share: float = 1.0         # the share of a core its steps got (CPU time / wall time)

    @property
    def busy(self) -> bool:
        """Timed while other work had much of the machine."""
        return self.measured and self.cpu_share < BUSY_SHARE


# Rates of the 2-core reference machine (benchmarks/bench_lab.py prints this machine's): the
# stand-in when this machine cannot be timed.
REFERENCE = Calibration(seconds_per_mac=2.5e-11, seconds_per_layer_step=5.6e-4,
                        seconds_per_layer_build=5e-4, measured=False)


@dataclass(frozen=True)
class TimeEstimate:
    """Expected wall time of an experiment, and what it rests on."""

    seconds: float
    calibrated: bool               # False: from the reference machine's rates, a guess here
    busy: bool = False             # calibrated while other work had much of the machine
    gpu: bool = False              # the runs train on a GPU: the CPU's rates overstate their time

    @property
    def label(self) -> str:
        """The figure as a person should read it, e.g. 'about 42 s'."""
        text = f"about {self.seconds:.2g} s" if self.seconds < 10 else f"about {self.seconds:.0f} s"
        if self.gpu:
            return text + " at this machine's CPU rates (the runs train on its GPU: less)"
        if not self.calibrated:
            return text + " (a guess: this machine could not be timed)"
        return text + " (the machine is busy now; less once it is not)" if self.busy else text


def estimate_time(
    experiment: str | Experiment | Sequence[ArchConfig],
    *,
    settings: TrainSettings | None = None,
    configs: Sequence[ArchConfig] | None = None,
    **overrides: Any,
) -> TimeEstimate:
    """Expected wall time of `run_experiment` with these arguments, before starting it.

    Args:
        experiment, configs: as `run_experiment`.
        settings: all training settings at once; otherwise `overrides` (epochs, seed, lr,
            optimizer, batch_size, max_train) change the experiment's defaults.
        seeds (in `overrides`): seeds per config, as `run_experiment` (default DEFAULT_SEEDS);
            they train across `workers_for(seeds)` processes.

    Raises:
        ConfigError: as `run_experiment` (every config is checked against the size limits).
    """
    runs = prepare_runs(experiment, configs=configs, settings=settings, **overrides)
    dataset = runs.settings.dataset
    # workers and runs in this process alike train their steps at TRAIN_THREADS
    cal = calibrate(TRAIN_THREADS) if dataset == "digits" else calibrate(TRAIN_THREADS, dataset)
    data = load_data(dataset, runs.settings.data_dir)  # read already by prepare_runs
    n_train = len(data.x_train)
    if runs.settings.max_train is not None:
        n_train = min(runs.settings.max_train, n_train)
    per_run = [run_seconds(size, runs.settings, n_train, len(data.x_val), cal)
               for size in runs.sizes for _ in runs.seeds]  # config-major, as they are taken
    scale = cal.seconds_per_layer_step / REFERENCE.seconds_per_layer_step  # Python-bound costs
    if runs.workers == 1:
        total = sum(per_run)
        if "torch._dynamo" not in sys.modules:  # no optimizer built in this process yet
            total += FIRST_OPTIMIZER_S * scale
    else:
        total = (WORKER_START_S + (0 if server_running() else SERVER_START_S)) * scale \
            + PARALLEL_SLOWDOWN * schedule_seconds(per_run, runs.workers)
    return TimeEstimate(total, cal.measured, cal.busy, gpu=train_device(runs.settings).type == "cuda")


def schedule_seconds(durations: Sequence[float], workers: int) -> float:
    """Wall time of `durations` taken in order by `workers` workers, each taking the next one
    as soon as it is free (what a process pool does)."""
    free_at = [0.0] * max(workers, 1)
    for d in durations:
        i = min(range(len(free_at)), key=free_at.__getitem__)
        free_at[i] += d
    return max(free_at)


def estimate_seconds(
    experiment: str | Experiment | Sequence[ArchConfig],
    *,
    settings: TrainSettings | None = None,
    configs: Sequence[ArchConfig] | None = None,
    **overrides: Any,
) -> float:
    """`estimate_time(...).seconds`: see there. Machines and load vary: a guide to the order
    of magnitude, calibrated on this machine where it can be."""
    return estimate_time(experiment, settings=settings, configs=configs, **overrides).seconds


def run_seconds(size: Estimate, settings: TrainSettings, n_train: int, n_val: int,
                cal: Calibration) -> float:
    """Modelled wall time of one run of a network of `size` (layers and multiply-adds): its
    training steps (every epoch's, or an iteration budget's) and a validation pass per epoch."""
    s = settings.for_data(n_train)
    batch = min(s.batch_size, n_train)
    if s.iterations is None:
        steps, images = s.epochs * math.ceil(n_train / s.batch_size), s.epochs * n_train
    else:
        steps, images = s.iterations, s.iterations * batch
    eval_passes = math.ceil(n_val / EVAL_BATCH)
    step = cal.seconds_per_mac * size.macs * PASSES_PER_TRAIN_SAMPLE * batch \
        + cal.seconds_per_layer_step * size.weight_layers
    training = (cal.seconds_per_mac * size.macs * PASSES_PER_TRAIN_SAMPLE * images
                + cal.seconds_per_layer_step * size.weight_layers * steps)
    validation = s.epochs * (cal.seconds_per_mac * size.macs * n_val
                             + cal.seconds_per_layer_step * size.weight_layers * eval_passes / PASSES_PER_TRAIN_SAMPLE)
    # Once a run: build, the gradient-norm probe (about a step) and the first, slower step.
    per_run = cal.seconds_per_layer_build * size.weight_layers + 2 * step
    return per_run + training + validation


_CALIBRATION_LOCK = threading.Lock()
# per torch thread count: the one measured on a quiet machine, once there is one
# (the digits' key is the thread count alone; another data set's, (threads, data set))
_calibration: dict[Any, Calibration] = {}
_busy: dict[Any, tuple[Calibration, float]] = {}  # per key: the latest measured on a busy machine, and when


def calibrate(threads: int = TRAIN_THREADS, dataset: str = "digits") -> Calibration:
    """This machine's training rates at `threads` torch threads for `dataset`'s input shape,
    measured once per process (a fraction of a second); REFERENCE (`measured` False) while it
    cannot be measured. Rates measured while the machine is busy (`busy`) hold for RECALIBRATE_S
    seconds only, so a busy spell is not remembered."""
    key: Any = threads if dataset == "digits" else (threads, dataset)
    with _CALIBRATION_LOCK:  # one at a time: two calibrations would slow each other down
        if key in _calibration:
            return _calibration[key]
        if key in _busy and time.monotonic() - _busy[key][1] < RECALIBRATE_S:
            return _busy[key][0]
        cal = measure_calibration(threads, dataset)
        if cal is None:
            return REFERENCE  # not cached: the next estimate tries again
        _busy.pop(key, None)
        if cal.busy:
            _busy[key] = (cal, time.monotonic())
        else:
            _calibration[key] = cal
        return cal


def measure_calibration(threads: int = TRAIN_THREADS, dataset: str = "digits") -> Calibration | None:
    """Time training steps of two reference networks and solve for the two rates; None when
    a latency measurement holds the machine for longer than CALIBRATION_WAIT_S.

    Timed as a latency measurement is: holding the device lock, with training paused, at
    `threads` torch threads (the process-wide count may change only there, where no
    measurement can run; it is restored before the lock is let go)."""
    start = time.perf_counter()
    lock = device_lock()
    if not lock.acquire(timeout=CALIBRATION_WAIT_S):
        return None
    try:
        with exclusive_measurement(), torch_threads(threads), flush_denormals(), \
                torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            rows = [_time_steps(cfg) for cfg in _reference_configs(dataset)]
    finally:
        lock.release()
    (w_o, l_o, t_o, b_o, share_o), (w_c, l_c, t_c, b_c, share_c) = rows
    # t = a * w + b * l for both networks: the narrow one is mostly overhead (b), the wide one
    # mostly multiply-adds (a). Noise can push a solution below zero: keep each rate at least
    # a tenth of what its network alone implies.
    det = w_o * l_c - w_c * l_o
    per_mac = max((t_o * l_c - t_c * l_o) / det, 0.1 * t_c / w_c)
    per_layer = max((w_o * t_c - w_c * t_o) / det, 0.1 * t_o / l_o)
    return Calibration(per_mac, per_layer, (b_o + b_c) / (l_o + l_c), measured=True,
                       seconds=time.perf_counter() - start, cpu_share=min(share_o, share_c))


def _reference_configs(dataset: str = "digits") -> tuple[ArchConfig, ArchConfig]:
    """A narrow 20-layer net (per-op overhead) and a wide 8-layer one (multiply-adds), at the
    input shape of `dataset`."""
    base = preset("resnet20")
    narrow = base.replace(name="calibration narrow", widths=[4, 4, 4], stem_width=4)
    wide = base.replace(name="calibration wide", depths=[1, 1, 1], widths=[32, 64, 128], stem_width=32)
    return lab_config(narrow, dataset), lab_config(wide, dataset)


def _time_steps(cfg: ArchConfig) -> tuple[float, int, float, float, float]:
    """(multiply-adds per step, weight layers, median seconds per step, build seconds, the share
    of a core the timed steps got): this thread's CPU time over the wall time says how much of
    the machine other work left it."""
    size = check_limits(cfg)
    t0 = time.perf_counter()
    model = build_model(cfg)
    build_s = time.perf_counter() - t0
    opt = _CalibrationSGD(model, TrainSettings())
    batch = CALIBRATION_BATCH if cfg.input_size <= 8 else CALIBRATION_BATCH_CIFAR
    x = torch.randn(batch, cfg.in_channels, cfg.input_size, cfg.input_size)  # (B, C, H, W)
    y = torch.randint(0, cfg.num_classes, (batch,))
    times, cpu = [], []
    for _ in range(CALIBRATION_WARMUP + CALIBRATION_STEPS):
        t0, c0 = time.perf_counter(), time.thread_time()
        train_step(model, opt, x, y)[1].item()
        times.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    step_s = statistics.median(times[CALIBRATION_WARMUP:])
    share = sum(cpu[CALIBRATION_WARMUP:]) / sum(times[CALIBRATION_WARMUP:])
    return size.macs * PASSES_PER_TRAIN_SAMPLE * batch, size.weight_layers, step_s, build_s, share


class _CalibrationSGD:
    """SGD with momentum and weight decay through torch.optim's functional update, the
    arithmetic `torch.optim.SGD.step` runs, without constructing a torch.optim.Optimizer:
    that imports torch._dynamo (about a second, once per process), a cost no estimate should pay.
    """

    def __init__(self, model: torch.nn.Module, settings: TrainSettings) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.buffers: list[torch.Tensor | None] = [None] * len(self.params)
        self.settings = settings

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        s = self.settings
        sgd(self.params, [p.grad for p in self.params], self.buffers, weight_decay=s.weight_decay,
            momentum=s.momentum, lr=s.resolved_lr, dampening=0.0, nesterov=False, maximize=False)
