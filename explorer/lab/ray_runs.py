"""Runs on a Ray cluster: each run (a variant at one seed) is one Ray task.

    run_experiment("degradation", seeds=3, executor=Executor("ray"))                  # a local cluster
    run_experiment("degradation", seeds=3, executor=Executor("ray", "10.0.0.5:6379"))  # an existing one

Ray places the tasks: each asks for one GPU when the cluster has GPUs, else one CPU, and Ray runs
as many at once as the cluster holds. Nothing here schedules. Each task puts its start, its
epochs and its end on a Ray queue as they happen; this process drains it and calls the same
callbacks as the local worker processes (`explorer.lab.workers.run_in_workers`), so the
app's live curves, the command line's progress and the run store see no difference.

A stop (Cancel, Ctrl-C, the time limit) cancels every task: a running one ends at once with its
finished epochs kept (they were streamed), and one that does not end within STOP_GRACE_S is
killed. A worker lost mid-run (a crashed process, a lost node, an error in the task) is said in
a note, and its run keeps the epochs it had finished, cut short; the other runs go on.

Ray is imported only here, and only when a run goes to Ray.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Literal, Sequence

from explorer.errors import ConfigError
from explorer.lab.records import EpochRecord, RunResult
from explorer.lab.settings import TrainSettings
from explorer.lab.training import TRAIN_THREADS, RunHooks, StopFn, train
from explorer.lab.workers import Task

ExecutorKind = Literal["local", "ray"]
EXECUTORS: tuple[ExecutorKind, ...] = ("local", "ray")
RAY_PIN = "ray==2.60.0"  # the version requirements.txt pins
EVENT_WAIT_S = 0.05      # the longest wait for a task's message between looks at stop
STOP_GRACE_S = 10.0      # a cancelled task still running after this is killed
PROBE_S = 5.0            # the longest wait for a cluster's head to answer before Ray is asked to join it
NoteFn = Callable[[str], None]
# The cluster the app's Lab sends runs to: set by whoever runs the server, never typed in a
# browser (a shared server connects to no address a visitor chooses); unset, a local cluster.
ADDRESS_ENV = "RESNET_EXPLORER_RAY_ADDRESS"
_joined: dict[str, str | None] = {}  # the address this process's Ray is joined to (None: local)


@dataclass(frozen=True)
class Executor:
    """Where the runs train: `local` (this process, or worker processes for several seeds) or
    `ray` (tasks on the Ray cluster at `address`; None starts a local cluster)."""

    kind: ExecutorKind = "local"
    address: str | None = None
    # told what the executor has to say: where the runs go, a worker lost mid-run
    on_note: NoteFn | None = None

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ConfigError("executor", self.kind, "one of " + ", ".join(EXECUTORS))
        if self.address is not None and self.kind != "ray":
            raise ConfigError("ray_address", self.address, "only with the ray executor")

    def note(self, text: str) -> None:
        if self.on_note is not None:
            self.on_note(text)


def server_address() -> str | None:
    """The Ray cluster the app sends its runs to (ADDRESS_ENV; None: a local cluster)."""
    return os.environ.get(ADDRESS_ENV, "").strip() or None


def import_ray() -> Any:
    """The ray module; ConfigError naming the install when it is missing. A cluster it starts
    sends no usage statistics unless RAY_USAGE_STATS_ENABLED says otherwise."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise ConfigError("executor", "ray", "an installed Ray", f"pip install \"{RAY_PIN}\"") from None
    return ray


def connect(executor: Executor) -> tuple[Any, int, str]:
    """Ray, joined to the executor's cluster (started when no address is given; kept for the
    later runs of this process), the cluster's GPUs, and where the runs go."""
    ray = import_ray()
    wanted = executor.address or None
    if ray.is_initialized() and _joined.get("address") != wanted:
        ray.shutdown()
    if not ray.is_initialized():
        _check_answers(wanted)
        try:
            ray.init(address=wanted, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING, configure_logging=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError("ray_address", wanted, "a running Ray cluster (ray start --head on its "
                              "head node)", str(exc).splitlines()[0] if str(exc) else "") from None
        _joined["address"] = wanted
    total = ray.cluster_resources()
    gpus, cpus = int(total.get("GPU", 0)), int(total.get("CPU", 0))
    where = f"the Ray cluster at {wanted}" if wanted else "a local Ray cluster"
    return ray, gpus, f"{where} ({gpus} GPUs, {cpus} CPUs)"


def _check_answers(address: str | None) -> None:
    """A HOST:PORT address whose head does not answer within PROBE_S is refused at once (Ray
    itself would keep trying to join for minutes)."""
    host, _, port = (address or "").rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return  # a local cluster, "auto", or a ray:// client address: Ray decides
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_S).close()
    except OSError as exc:
        raise ConfigError("ray_address", address, "the address of a running Ray cluster's head (ray start "
                          f"--head): nothing answers there ({exc.strerror or exc})") from None


def resources(settings: TrainSettings, gpus: int) -> dict[str, int]:
    """What one run's task asks for: a GPU where the cluster has GPUs and the run trains on one
    (`explorer.lab.training.train_device`: cuda, or auto beyond the digits), else a CPU."""
    on_gpu = settings.device == "cuda" or (settings.device == "auto" and settings.dataset != "digits")
    if settings.device == "cuda" and not gpus:
        raise ConfigError("device", "cuda", "cpu or auto: the Ray cluster has no GPU")
    return {"num_gpus": 1} if on_gpu and gpus else {"num_cpus": 1}


def ray_workers(executor: Executor, tasks: Sequence[Task]) -> int:
    """How many of `tasks` the executor's cluster trains at once (joining it if need be)."""
    ray, gpus, _ = connect(executor)
    asks = [resources(t.settings, gpus) for t in tasks]
    slots = gpus if any("num_gpus" in a for a in asks) else int(ray.cluster_resources().get("CPU", 0))
    return max(1, min(len(tasks), slots))


class Heard:
    """What this process has heard of each run: its start, its epochs, its end."""

    def __init__(self) -> None:
        self.started: dict[int, RunResult] = {}
        self.epochs: dict[int, list[EpochRecord]] = {}
        self.ended: dict[int, RunResult] = {}

    def as_far_as_heard(self, index: int) -> RunResult | None:
        """The run as its messages left it: its end, else its start with the epochs heard,
        cut short (None: it never started)."""
        if index in self.ended:
            return self.ended[index]
        if index not in self.started:
            return None
        run, history = self.started[index], tuple(self.epochs.get(index, ()))
        whole = len(history) >= run.settings.epochs
        return replace(run, history=history, status="complete" if whole else "cancelled",
                       seconds=history[-1].elapsed if history else run.seconds)


def run_on_ray(
    tasks: Sequence[Task],
    executor: Executor,
    *,
    should_stop: StopFn,
    on_start: Callable[[int, RunResult], None],
    on_epoch: Callable[[int, EpochRecord], None],
    on_finish: Callable[[int, RunResult], None],
    on_abandoned: Callable[[int, RunResult], None] | None = None,
) -> bool:
    """Train `tasks` as Ray tasks, calling back in this thread as `run_in_workers` does.
    Returns True when `should_stop` ended it early (every task cancelled; each run that had
    started goes to `on_finish`, cut short, with its finished epochs). When an exception in this
    thread ends it, every task is cancelled and each run that had started, as far as it was
    heard of, goes to `on_abandoned`. A lost worker's run goes to `on_finish` with its finished
    epochs, and the executor's note says so."""
    ray, gpus, where = connect(executor)
    asks = [resources(t.settings, gpus) for t in tasks]  # a refusal before any task is sent
    from ray.util.queue import Queue
    per_run = "one GPU per run" if any("num_gpus" in a for a in asks) else "one CPU per run"
    executor.note(f"Training {len(tasks)} run{'s' * (len(tasks) != 1)} on {where}, {per_run}")
    events, heard = Queue(), Heard()
    remote = ray.remote(max_retries=0)(train_task)
    pending: dict[Any, int] = {}
    stopped_at: float | None = None
    try:
        pending = {remote.options(**ask).remote(t, events): t.index for t, ask in zip(tasks, asks)}
        while pending:
            if stopped_at is None and should_stop():
                stopped_at = time.monotonic()
                for ref in pending:
                    ray.cancel(ref)
            elif stopped_at is not None and time.monotonic() - stopped_at > STOP_GRACE_S:
                for ref in pending:
                    ray.cancel(ref, force=True)
                stopped_at = float("inf")  # killed once
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
            _deliver(events, heard, on_start, on_epoch, wait=not ready)  # each ready task's messages came first
            for ref in ready:
                _ended(ray, ref, pending.pop(ref), heard, executor, on_finish, stopped=stopped_at is not None)
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        if on_abandoned is not None:
            for index in sorted(set(pending.values())):
                run = heard.as_far_as_heard(index)
                if run is not None:
                    on_abandoned(index, run)
        raise
    finally:
        events.shutdown(force=True)
    return stopped_at is not None


def _deliver(events: Any, heard: Heard, on_start: Callable[[int, RunResult], None],
             on_epoch: Callable[[int, EpochRecord], None], wait: bool) -> None:
    """Every message waiting on the queue (after at most EVENT_WAIT_S for the first when
    `wait`), passed on in the order the tasks sent them."""
    from ray.util.queue import Empty
    messages = []
    try:
        if wait:
            messages.append(events.get(timeout=EVENT_WAIT_S))
        waiting = events.qsize()
        if waiting:
            messages += events.get_nowait_batch(waiting)
    except Empty:
        pass
    for kind, index, payload in messages:
        if index in heard.ended and kind != "end":
            continue
        if kind == "start":
            heard.started[index] = payload
            on_start(index, payload)
        elif kind == "epoch":
            heard.epochs.setdefault(index, []).append(payload)
            on_epoch(index, payload)
        else:
            heard.ended[index] = payload


def _ended(ray: Any, ref: Any, index: int, heard: Heard, executor: Executor,
           on_finish: Callable[[int, RunResult], None], stopped: bool) -> None:
    """A task is over: its run to `on_finish`; a lost worker said in a note."""
    from ray import exceptions as rex
    try:
        run = ray.get(ref)
    except rex.TaskCancelledError:
        run = heard.as_far_as_heard(index)
        if run is not None and not stopped:
            executor.note(_lost(run, "its task was cancelled"))
    except (rex.RayError, rex.RayTaskError) as exc:
        run = heard.as_far_as_heard(index)
        cause = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if run is None:
            executor.note(f"run {index + 1} did not start on Ray: {cause}")
        else:
            executor.note(_lost(run, cause))
    if run is not None:
        heard.ended[index] = run
        on_finish(index, run)


def _lost(run: RunResult, cause: str) -> str:
    return f"run {run.name} seed {run.seed}: worker lost after epoch {len(run.history)} ({cause})"


# -- in a Ray worker ---------------------------------------------------------------------------
class _OpenGate:
    """A Ray worker's step gate: nothing measures there, every step may go."""

    def begin(self, should_stop: StopFn | None) -> bool:
        return True

    def end(self) -> None:
        pass


def train_task(task: Task, events: Any) -> RunResult:
    """One run in a Ray worker, at TRAIN_THREADS torch threads, its start, epochs and end put on
    `events` as they happen. A cancel arrives as KeyboardInterrupt: the run's end (its finished
    epochs, the share of the next one done) is put on the queue before the task ends."""
    import torch
    torch.set_num_threads(TRAIN_THREADS)
    hooks = RunHooks(on_start=lambda run: events.put(("start", task.index, run)),
                     on_epoch=lambda record: events.put(("epoch", task.index, record)),
                     on_end=lambda run: events.put(("end", task.index, run)),
                     step_gate=_OpenGate())
    return train(task.config, task.settings, hooks)
