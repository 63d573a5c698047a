"""An export made in a child process, so the one asking can watch it, cancel it, or go away.

A large network's ONNX export takes tens of seconds and a gigabyte (ResNet-1202: 1,202 traced
layers) in one uninterruptible call. Made in a child process it frees its memory when it ends,
the parent reports progress while it waits, and anything that stops the parent's wait (Cancel,
a closed page, Ctrl-C: an exception from `progress`) ends the child at once.
"""
from __future__ import annotations

import multiprocessing as mp
import time
from typing import Any, Callable

from explorer.arch.config import ArchConfig
from explorer.export.limits import ExportError
from explorer.arch.plan import make_plan
from explorer.facts.limits import estimate

EXPORT_S_PER_LAYER = {"onnx": 0.02, "pytorch": 0.0005}  # seconds per weight layer, a mid-range CPU
QUICK_EXPORT_S = 5.0        # estimated seconds under which an export is made on the spot
POLL_S = 0.2                # how often the parent looks at the child and reports progress


def expected_export_s(cfg: ArchConfig, fmt: str) -> float:
    """Rough seconds the export of `cfg` takes (it grows with the traced layers). An estimate
    only: the size limits are checked where the export starts, not here."""
    return estimate(cfg, make_plan(cfg)).weight_layers * EXPORT_S_PER_LAYER.get(fmt, 0.02)


def is_quick(cfg: ArchConfig, fmt: str) -> bool:
    return expected_export_s(cfg, fmt) < QUICK_EXPORT_S


def export_in_child(cfg: ArchConfig, fmt: str, progress: Callable[[float], Any]) -> bytes:
    """The export of `cfg` in `fmt`, made in a child process; `progress` is called with the
    estimated fraction done while it runs. An exception from `progress` ends the child and goes
    on; an export that fails is an ExportError."""
    ctx = mp.get_context("spawn")  # a fresh interpreter: nothing of a threaded server is copied
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_export, args=(cfg.to_dict(), fmt, send), daemon=True,
                        name="resnet-explorer-export")
    expected, start = expected_export_s(cfg, fmt) + 3.0, time.perf_counter()  # + the child's start
    child.start()
    send.close()
    try:
        while not receive.poll(POLL_S):
            if not child.is_alive():
                raise ExportError(f"the export of {cfg.name!r} ended without a result (out of memory?)")
            progress(min(0.95, (time.perf_counter() - start) / expected))
        ok, payload = receive.recv()
    except EOFError:
        raise ExportError(f"the export of {cfg.name!r} ended without a result (out of memory?)") from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receive.close()
    if not ok:
        raise ExportError(payload)
    progress(1.0)
    return payload


def _export(cfg_dict: dict, fmt: str, send) -> None:
    """In the child: export and send (True, bytes) or (False, the error's message)."""
    from explorer.export import to_bytes

    try:
        result: tuple[bool, Any] = (True, to_bytes(ArchConfig.from_dict(cfg_dict), fmt))
    except ExportError as exc:
        result = (False, str(exc))
    except Exception as exc:  # the exporter's many failure types: one line for the user
        result = (False, f"the export of {cfg_dict.get('name')!r} failed: {type(exc).__name__}")
    send.send(result)
    send.close()
