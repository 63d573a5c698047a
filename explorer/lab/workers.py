"""Runs in parallel: seeds trained in worker processes, TRAIN_THREADS torch threads each (set in
each worker, never in the parent: the thread count is process-wide).

The parent process stays in charge. It polls `should_stop` (Cancel, the time limit, Ctrl-C) and
relays it to the workers, which look at it before every batch; it receives each run's start and
epochs as they happen; and it keeps latency measurements in this process exclusive: a relay
thread holds one training step of this process's gate (`explorer.timing.gate`) on the workers'
behalf, and while anything holds the device lock it closes the workers' gate, waits for their
steps in flight to finish and hands the step back, so a measurement here waits for the workers
exactly as it waits for training in this process.

Workers start by `forkserver` where the platform has it (a server process that imported torch
once forks each worker), else by `spawn`; never by plain `fork`, which would copy a threaded
server. Ctrl-C reaches the whole process group: workers ignore it and the parent decides.
"""
from __future__ import annotations

import multiprocessing as mp
import multiprocessing.forkserver as mp_forkserver
import multiprocessing.resource_tracker as mp_resource_tracker
import multiprocessing.util as mp_util
import os
import queue
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from explorer.arch.config import ArchConfig
from explorer.lab.records import EpochRecord, RunResult
from explorer.lab.settings import TrainSettings
from explorer.lab.training import TRAIN_THREADS, RunHooks, StopFn, train
from explorer.timing.gate import begin_training_step, device_lock, end_training_step

POLL_S = 0.01          # how often the relay looks for a measurement wanting the cores
EVENT_WAIT_S = 0.05    # the parent's longest wait for a worker's message between looks at stop
WORKER_WAIT_S = 0.1    # a paused worker's longest wait before it looks at stop again
# Imported once by the fork server, so each worker starts with them loaded.
PRELOAD = ["explorer.lab.workers", "sklearn.datasets", "torch._dynamo"]


@dataclass(frozen=True)
class Task:
    """One run: a variant at one seed. `index` orders the runs (variant-major)."""

    index: int
    config: ArchConfig
    settings: TrainSettings


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def workers_for(seeds: int) -> int:
    """Worker processes for `seeds` seeds: one per seed, at most one per core (1: in-process)."""
    return max(1, min(seeds, available_cores()))


_pools_run = threading.Event()  # set once a pool has run here: the fork server is up


def server_running() -> bool:
    """Whether this process has started its workers' fork server already (later pools skip
    its start-up, the import of torch and the Lab)."""
    return _pools_run.is_set() and "forkserver" in mp.get_all_start_methods()


def context() -> mp.context.BaseContext:
    _reap_helpers_at_exit()
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)  # no effect once the server runs
        return ctx
    return mp.get_context("spawn")


_reaping = threading.Event()  # set once the helpers' stop is registered for this process's exit


def _reap_helpers_at_exit() -> None:
    """Stop and reap multiprocessing's helper processes (the fork server, the resource tracker)
    when this process exits. Left alone they outlive it and, adopted by an init that does not
    reap, stay behind as defunct processes once they end. Runs after multiprocessing's own exit
    finalizers (priority 0 unlinks the semaphores through the tracker)."""
    if not _reaping.is_set():
        _reaping.set()
        mp_util.Finalize(None, _stop_helpers, exitpriority=-100)


def _stop_helpers() -> None:
    """Close each helper's "alive" pipe and wait for it (the stdlib's own stop, as its tests use)."""
    helpers = (getattr(mp_forkserver, "_forkserver", None), getattr(mp_resource_tracker, "_resource_tracker", None))
    for helper in helpers:
        stop = getattr(helper, "_stop", None)
        if stop is not None:
            try:
                stop()
            except (OSError, ChildProcessError):  # already gone
                pass


class SharedGate:
    """The parent's gate as the workers see it (a `StepGate`): a step may begin only while the
    parent has it open; `in_flight` counts the steps running, and its lock guards both."""

    def __init__(self, ctx: mp.context.BaseContext) -> None:
        self.in_flight = ctx.Value("i", 0)
        self.allowed = ctx.RawValue("b", 0)
        self.resume = ctx.Event()        # set while open: paused workers wake on it
        self.stop = ctx.Event()          # the run is over: every worker stops at its next batch

    # -- in a worker ----------------------------------------------------------------------------
    def begin(self, should_stop: StopFn | None) -> bool:
        while True:
            with self.in_flight.get_lock():  # checked and counted at once: the parent cannot close between
                if self.allowed.value:
                    self.in_flight.value += 1
                    return True
            if should_stop is not None and should_stop():
                return False
            self.resume.wait(WORKER_WAIT_S)

    def end(self) -> None:
        with self.in_flight.get_lock():
            self.in_flight.value -= 1

    # -- in the parent --------------------------------------------------------------------------
    def open(self) -> None:
        with self.in_flight.get_lock():
            self.allowed.value = 1
            self.resume.set()

    def close(self) -> None:
        with self.in_flight.get_lock():
            self.allowed.value = 0
            self.resume.clear()

    def steps_running(self) -> int:
        return self.in_flight.value


class GateRelay(threading.Thread):
    """Holds one training step of this process's gate for the workers while no one holds the
    device lock; gives it back (after the workers' steps drain) while someone does."""

    def __init__(self, gate: SharedGate) -> None:
        super().__init__(name="lab-gate-relay", daemon=True)
        self.gate = gate
        self.done = threading.Event()

    def run(self) -> None:
        lock, holding = device_lock(), False
        try:
            while not self.done.is_set():
                if not holding:
                    if not begin_training_step(self.done.is_set):  # waits while a measurement runs
                        break
                    holding = True
                    self.gate.open()
                if lock.acquire(blocking=False):  # free: no measurement
                    lock.release()
                    self.done.wait(POLL_S)
                    continue
                self.gate.close()  # a measurement holds the device lock: workers stop between steps
                while self.gate.steps_running() and not self.done.is_set():
                    time.sleep(0.001)
                end_training_step()
                holding = False
                while not self.done.is_set():  # until the measurement is over
                    if lock.acquire(timeout=POLL_S):
                        lock.release()
                        break
        finally:
            if holding:
                end_training_step()


def run_in_workers(
    tasks: Sequence[Task],
    workers: int,
    *,
    should_stop: StopFn,
    on_start: Callable[[int, RunResult], None],
    on_epoch: Callable[[int, EpochRecord], None],
    on_finish: Callable[[int, RunResult], None],
    on_abandoned: Callable[[int, RunResult], None] | None = None,
) -> bool:
    """Train `tasks` on `workers` processes, calling back in this thread as runs start, finish
    epochs and end. Returns True when `should_stop` ended it early (the runs in flight end at
    their next batch, cancelled, and are passed to `on_finish`; the rest never start).
    When an exception in this thread ends it (a callback's, Ctrl-C), the workers stop at their
    next batch and each run that had started, as far as it got, goes to `on_abandoned` (no other
    callback) before the exception goes on. A worker's exception is raised here once the others
    have stopped."""
    ctx = context()
    events = ctx.Queue()
    gate = SharedGate(ctx)
    relay = GateRelay(gate)
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(events, gate))
    finished: set[int] = set()
    pending: dict[Any, int] = {}
    stopped = abandoned = False
    try:
        relay.start()
        pending = {pool.submit(_train_task, t): t.index for t in tasks}
        _pools_run.set()
        while pending:
            if not stopped and should_stop():
                stopped = True
                gate.stop.set()
                for future in pending:
                    future.cancel()  # those not yet handed to a worker
            for kind, index, payload in _drain(events):
                if index not in finished:  # a run's messages may arrive after its result
                    (on_start if kind == "start" else on_epoch)(index, payload)
            for future in [f for f in pending if f.done()]:
                index = pending.pop(future)
                if future.cancelled():
                    continue
                run = future.result()  # raises the worker's exception
                finished.add(index)
                if run is not None:
                    on_finish(index, run)
    except BaseException:
        abandoned = True
        raise
    finally:
        gate.stop.set()
        relay.done.set()
        relay.join()
        pool.shutdown(wait=True, cancel_futures=True)
        events.close()
        if abandoned and on_abandoned is not None:
            _hand_over(pending, finished, on_abandoned)
    return stopped


def _hand_over(pending: dict[Any, int], finished: set[int], to: Callable[[int, RunResult], None]) -> None:
    """The results of the runs that had started, once their workers have stopped."""
    for future, index in sorted(pending.items(), key=lambda item: item[1]):
        if index in finished or future.cancelled() or future.exception() is not None:
            continue
        run = future.result()
        if run is not None:
            to(index, run)


def _drain(events) -> list[tuple[str, int, Any]]:
    """The messages waiting (after at most EVENT_WAIT_S for the first)."""
    out = []
    try:
        out.append(events.get(timeout=EVENT_WAIT_S))
        while True:
            out.append(events.get_nowait())
    except queue.Empty:
        pass
    return out


# -- in a worker ------------------------------------------------------------------------------
_worker: dict[str, Any] = {}


def _init_worker(events, gate: SharedGate) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    torch.set_num_threads(TRAIN_THREADS)  # this process's own: no measurement runs here
    _worker.update(events=events, gate=gate)


def _train_task(task: Task) -> RunResult | None:
    events, gate = _worker["events"], _worker["gate"]
    if gate.stop.is_set():
        return None
    hooks = RunHooks(on_start=lambda run: events.put(("start", task.index, run)),
                     on_epoch=lambda record: events.put(("epoch", task.index, record)),
                     should_stop=gate.stop.is_set, step_gate=gate)
    return train(task.config, task.settings, hooks)
