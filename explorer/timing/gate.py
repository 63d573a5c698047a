"""Who may use the cores now: the process-wide device lock and the gate Lab training passes.

Every measurement holds the device lock from its model copy to its last sample, so two callers
never time over each other nor steal each other's cores. Lab training shares those cores: while
a measurement runs, training waits between its steps, and a measurement starts once the steps
in flight have finished, or after STEP_WAIT_S, in which case it says so (`GateWait.timed_out`).

While training steps are in flight in this process they may ask for their own torch thread count
(a small network trains fastest, and steadiest beside other work, on one thread). The count is
process-wide, so the gate sets it when the first step begins and restores it when the last one
ends: a measurement, which starts only once no step is in flight, always sees the process's own.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

STEP_WAIT_S = 60.0          # longest a measurement waits for Lab training steps in flight

_DEVICE_LOCK = threading.RLock()
_GATE = threading.Condition()
_gate_state = {"measuring": 0, "training": 0}   # measurements inside the gate; training steps in flight
_threads_outside: list[int] = []                # the count to restore when the last step ends
_held = threading.local()                       # .wait: how this thread's outermost measurement's wait ended


@dataclass(frozen=True)
class GateWait:
    """How a measurement's wait for Lab training steps in flight ended."""

    waited_s: float         # time spent waiting for them
    steps_running: int      # still in flight when the wait ended (0: the cores are the measurement's)

    @property
    def timed_out(self) -> bool:
        return self.steps_running > 0

    def note(self) -> str:
        """The warning a result carries when the wait gave up."""
        steps = f"{self.steps_running} Lab training step{'s' if self.steps_running != 1 else ''}"
        return (f"{steps} still running after waiting {self.waited_s:.1f} s: they shared the machine "
                f"with this measurement, which may read slow")


def device_lock() -> threading.RLock:
    """The process-wide lock every timing (and memory measurement) holds."""
    return _DEVICE_LOCK


@contextmanager
def exclusive_measurement() -> Iterator[GateWait]:
    """Hold the device lock and keep Lab training paused for the duration (re-entrant).

    Yields how the wait for training steps in flight ended. A nested entry (a sweep's batch
    inside the sweep) does not wait again: the outer entry did, and no new step can begin
    meanwhile; it reports the outer wait's time and the steps still running now.
    """
    with _DEVICE_LOCK:
        outer: GateWait | None = getattr(_held, "wait", None)
        try:
            with _GATE:
                _gate_state["measuring"] += 1
                if outer is None:
                    t0 = time.perf_counter()
                    _GATE.wait_for(lambda: _gate_state["training"] == 0, timeout=STEP_WAIT_S)
                    waited = time.perf_counter() - t0
                else:
                    waited = outer.waited_s
                wait = GateWait(waited, _gate_state["training"])
            _held.wait = outer or wait  # what nested entries of this thread report as waited
            yield wait
        finally:
            _held.wait = outer
            with _GATE:
                _gate_state["measuring"] -= 1
                _GATE.notify_all()


def begin_training_step(should_stop: Callable[[], bool] | None = None, poll_s: float = 0.1,
                        threads: int | None = None) -> bool:
    """Wait until no measurement runs, then count one training step in flight, at `threads`
    torch threads while any step is in flight (None: the process's count).

    Returns False (nothing counted) when `should_stop` turns true while waiting. Every True
    must be matched by `end_training_step()`.
    """
    with _GATE:
        while _gate_state["measuring"]:
            if should_stop is not None and should_stop():
                return False
            _GATE.wait(poll_s)
        if _gate_state["training"] == 0 and threads is not None:
            import torch

            _threads_outside.append(torch.get_num_threads())
            torch.set_num_threads(threads)
        _gate_state["training"] += 1
        return True


def end_training_step() -> None:
    """Count one training step as finished and wake a measurement waiting for it."""
    with _GATE:
        _gate_state["training"] -= 1
        if _gate_state["training"] == 0 and _threads_outside:
            import torch

            torch.set_num_threads(_threads_outside.pop())
        _GATE.notify_all()
