"""Keeping runs as they happen: one record per measurement, written by the app and the command line alike.

A store that fails (read-only, locked, not a run store) is reported once, in one line, and the
work goes on without it: a measurement is never lost to its bookkeeping.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, TypeVar

from explorer.runs.record import RunKind, RunRecord, RunStatus, now_iso
from explorer.runs.store import ImportReport, RunStore, StoreError

if TYPE_CHECKING:
    from explorer.arch.config import ArchConfig

T = TypeVar("T")


def make_record(kind: RunKind, cfg: "ArchConfig", settings: Mapping[str, Any], device: str,
                result: Mapping[str, Any] | None = None, status: RunStatus = "complete",
                message: str = "", started: str | None = None) -> RunRecord:
    """A record of one run of `cfg` (ended now unless it is still running), named by its display
    name: a changed preset is "resnet50 (skip_span 1)", not "resnet50"."""
    from explorer.arch.presets import display_name

    return RunRecord(kind=kind, name=display_name(cfg), config=cfg.to_dict(), network=cfg.arch_key(),
                     settings=dict(settings), device=device, result=None if result is None else dict(result),
                     status=status, message=message, started=started or now_iso(),
                     ended=None if status == "running" else now_iso())


class Keeper:
    """Writes records to a store (or nowhere); the store's first failure is reported once, then it is left alone."""

    def __init__(self, store: RunStore | None, report: Callable[[str], Any] | None = None) -> None:
        self.store = store
        self.report = report            # called once with the one-line reason when the store fails
        self.problem: str | None = None
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.store is not None and self.problem is None

    def keep(self, record: RunRecord, replace_existing: bool = False) -> bool:
        """Write `record` (replacing its earlier state when `replace_existing`); False when nothing was kept."""
        if not self.active:
            return False
        try:
            if replace_existing:
                self.store.put(record)
            else:
                self.store.add(record)
            return True
        except StoreError as exc:
            self._fail(str(exc))
            return False

    def records(self, kind: str | None = None, network: str | None = None, device: str | None = None,
                limit: int | None = None) -> list[RunRecord]:
        """Kept runs, newest first ([] without a store, or when it fails: reported once)."""
        return self._read(lambda s: s.list(kind=kind, network=network, device=device, limit=limit), [])

    def delete(self, run_ids: list[str]) -> int:
        return self._read(lambda s: s.delete(run_ids), 0)

    def import_lines(self, lines: Iterable[str]) -> ImportReport | None:
        """The import's report, or None when the store failed (reported once)."""
        return self._read(lambda s: s.import_lines(lines), None)

    def _read(self, work: Callable[[RunStore], T], default: T) -> T:
        if self.store is None:
            return default
        try:
            return work(self.store)
        except StoreError as exc:
            self._fail(str(exc))
            return default

    def _fail(self, reason: str) -> None:
        with self._lock:
            first = self.problem is None
            self.problem = reason
        if first and self.report is not None:
            self.report(reason)
