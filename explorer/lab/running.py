"""Running an experiment: every variant at each seed, watched as it goes.

    result = run_experiment("degradation", seeds=3, progress=print)
    result.to_rows()           # one row per variant: mean and std over seeds (explorer.lab.results)
    result.conclusion_lines()  # which variant is better, only where the gap exceeds the spread

With more than one seed, the seeds train in parallel worker processes (one per core, see
`explorer.lab.workers`); with one, in this process, at the process's torch thread count.
"""
from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from typing import Any, Callable, Sequence

from explorer.arch.config import ArchConfig
from explorer.errors import ConfigError
from explorer.lab.experiments import Experiment, PreparedRuns, prepare_runs
from explorer.lab.records import EpochRecord, RunResult
from explorer.lab.results import LabResult, LabStatus
from explorer.lab.ray_runs import Executor, ray_workers, run_on_ray
from explorer.lab.training import RunHooks, StopFn, train
from explorer.lab.workers import run_in_workers

ProgressFn = Callable[[int, int, int, str], None]   # (done_runs, total_runs, epoch, run_name)
UpdateFn = Callable[[LabResult], None]


class ExperimentProgress:
    """An experiment in progress: each run as far as it got, how many have finished, its
    clock and its stop. It tells the listeners at each start and epoch, and hands out frozen
    LabResult snapshots."""

    def __init__(self, runs: PreparedRuns, should_stop: StopFn | None, time_limit_s: float | None,
                 progress: ProgressFn | None, on_update: UpdateFn | None) -> None:
        self.runs, self.tasks = runs, runs.tasks()
        self.asked, self.time_limit_s = should_stop, time_limit_s
        self.progress, self.on_update = progress, on_update
        self.start = time.perf_counter()
        self.deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
        self.live: dict[int, RunResult] = {}   # task index -> its run, as far as it got
        self.finished = 0                      # runs that have ended
        self.status: LabStatus = "running"
        self.timed_out = False

    # -- asked by the runs ------------------------------------------------------------------
    def should_stop(self) -> bool:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.timed_out = True
            return True
        return bool(self.asked is not None and self.asked())

    # -- told by the runs -------------------------------------------------------------------
    def place(self, index: int, run: RunResult) -> None:
        self.live[index] = run

    def started(self, index: int, run: RunResult) -> None:
        self.place(index, run)
        self.notify(0, run.name)

    def epoch(self, index: int, record: EpochRecord) -> None:
        run = self.live[index]
        self.live[index] = replace(run, history=run.history + (record,), seconds=round(record.elapsed, 3))
        self.notify(record.epoch, record.run)

    def ended(self, index: int, run: RunResult) -> None:
        self.place(index, run)
        self.finished += 1

    def notify(self, epoch: int, name: str, result: LabResult | None = None) -> None:
        if self.progress is not None:
            self.progress(self.finished, len(self.tasks), epoch, name)
        if self.on_update is not None:
            self.on_update(result or self.snapshot())

    # -- how it ends ------------------------------------------------------------------------
    def stopped(self) -> None:
        self.status = "timed_out" if self.timed_out else "cancelled"

    def broken_off(self) -> None:
        """An exception ended it: any run not heard of since its start is cut short."""
        self.status = "cancelled"
        for index, run in self.live.items():
            if run.status == "running":
                whole = len(run.history) >= run.settings.epochs
                self.live[index] = replace(run, status="complete" if whole else "cancelled")

    def snapshot(self) -> LabResult:
        runs, exp = self.runs, self.runs.experiment
        return LabResult(exp.name, exp.title, runs.settings, tuple(self.live[i] for i in sorted(self.live)),
                         total_runs=len(self.tasks), seconds=round(time.perf_counter() - self.start, 3),
                         status=self.status, seeds=runs.seeds, workers=runs.workers,
                         comparisons=exp.comparisons, time_limit_s=self.time_limit_s,
                         plan=tuple((t.config.name, t.settings.seed) for t in self.tasks))


def run_experiment(
    experiment: str | Experiment | Sequence[ArchConfig] | PreparedRuns,
    *,
    progress: ProgressFn | None = None,
    on_update: UpdateFn | None = None,
    on_end: UpdateFn | None = None,
    should_stop: StopFn | None = None,
    time_limit_s: float | None = None,
    executor: Executor | None = None,
    **request: Any,
) -> LabResult:
    """Train every config of an experiment at each seed, with the same settings.

    Args:
        experiment: a name in EXPERIMENTS, an Experiment, a list of configs (run as `custom`),
            or the PreparedRuns of `prepare_runs` (then no `request`).
        request: what `prepare_runs` takes: configs= (for `custom`, or to replace an
            experiment's own), seeds= (default DEFAULT_SEEDS: `seed`, `seed` + 1, ...), and
            either settings= (a TrainSettings) or the experiment's defaults changed by epochs=,
            seed=, lr=, optimizer=, batch_size=, max_train= (None keeps the default). With more
            than one seed the runs train in parallel worker processes, one per core
            (`explorer.lab.workers`), which import the main module: a script that runs several
            seeds needs the usual `if __name__ == "__main__":` guard.
        progress: called as progress(done_runs, total_runs, epoch, run_name) when a run (one
            config at one seed) starts (epoch 0, after its gradient norms are measured) and
            after each of its epochs; runs are counted over configs x seeds.
        on_update: called with the partial LabResult at the same moments (live curves).
        on_end: called once with the final LabResult however the experiment ended, also when
            an exception (a callback's: a rerun of the app, Ctrl-C) ends it, before that
            propagates: its runs cut short each say so, with their finished epochs and their
            wall time up to the stop.
        should_stop: polled before every batch (in a worker, relayed by this process at least
            every 0.05 s); True ends the experiment, keeping what finished and the partial runs.
        time_limit_s: wall-time bound; past it the experiment ends as if stopped (`timed_out`).
        executor: where the runs train (default local: this process, or worker processes for
            several seeds); `Executor("ray", address)` makes each run a task on a Ray cluster
            (`explorer.lab.ray_runs`), heard of through the same callbacks.

    Raises:
        ConfigError: unknown experiment, no configs, an invalid config or setting, or a
            config over the server's size limits (every config is checked before any trains).
    """
    if isinstance(experiment, PreparedRuns):
        if request:
            raise ConfigError(next(iter(request)), next(iter(request.values())),
                              "nothing beside prepared runs (prepare_runs took it)")
        runs = experiment
    else:
        runs = prepare_runs(experiment, **request)
    state = ExperimentProgress(runs, should_stop, time_limit_s, progress, on_update)
    try:
        if executor is not None and executor.kind == "ray":
            state.runs = replace(runs, workers=ray_workers(executor, state.tasks))
            _train_in_workers(state, executor)
        else:
            (_train_here if runs.workers == 1 else _train_in_workers)(state)
    except BaseException:  # a rerun of the app, Ctrl-C: what finished stays, the runs cut short say so
        state.broken_off()
        raise
    finally:
        final = state.snapshot()
        if on_end is not None:
            on_end(final)
    if not final.cancelled:
        state.notify(runs.settings.epochs, state.tasks[-1].config.name, final)
    return final


def _train_here(state: ExperimentProgress) -> None:
    """One run after the other in this process."""
    for task in state.tasks:
        if state.should_stop():
            state.stopped()
            return
        hooks = RunHooks(on_start=partial(state.started, task.index), on_epoch=partial(state.epoch, task.index),
                         on_end=partial(state.place, task.index), should_stop=state.should_stop)
        run = train(task.config, task.settings, hooks)
        state.ended(task.index, run)
        if run.cancelled:
            state.stopped()
            return
    state.status = "complete"


def _train_in_workers(state: ExperimentProgress, executor: Executor | None = None) -> None:
    """The runs on the worker processes (or Ray's, with a ray `executor`), heard of in this thread."""
    def finish(index: int, run: RunResult) -> None:
        state.ended(index, run)
        state.notify(len(run.history), run.name)

    callbacks = dict(should_stop=state.should_stop, on_start=state.started, on_epoch=state.epoch,
                     on_finish=finish, on_abandoned=state.place)
    if executor is not None:
        stopped = run_on_ray(state.tasks, executor, **callbacks)
    else:
        stopped = run_in_workers(state.tasks, state.runs.workers, **callbacks)
    if stopped:
        state.stopped()
    else:
        state.status = "complete"
