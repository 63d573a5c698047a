"""Timed runs as kept records: the one mapping from a measurement (its config, settings and result)
to a RunRecord, used by the command line and the app alike, and the way back from a record to a
typed result.

A record's `settings` are the measurement's as asked, with torch's default thread count resolved
to its number; its `result` is the typed result's `to_dict()` (the CLI's --json, less the config,
which the record holds apart); its `device` is the label the result shows.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, TypeVar, Union

from explorer.arch.config import ArchConfig
from explorer.errors import ConfigError, LatencyError
from explorer.runs.keep import Keeper, make_record
from explorer.runs.record import LATENCY_KINDS, RunKind, RunRecord, RunStatus, now_iso
from explorer.timing import (
    LatencyResult, MeasurementCancelled, ProfileResult, SweepResult, TimingSettings, default_threads, device_label,
    resolve_device,
)
from explorer.timing.passes import Progress

TimingResult = Union[LatencyResult, SweepResult, ProfileResult]
R = TypeVar("R", LatencyResult, SweepResult, ProfileResult)

SETTING_KEYS = ("device", "batch", "dtype", "channels_last", "compile", "threads", "budget_s")
# Settings that must agree for a kept run to stand for a measurement asked for now (the device is
# matched by its label, the budget only decides how many samples there are).
MATCHED = ("batch", "dtype", "channels_last", "compile", "threads")
RESULT_TYPES: dict[str, type] = {"latency": LatencyResult, "compare": LatencyResult, "sweep": SweepResult,
                                 "profile": ProfileResult}


def run_settings(kind: RunKind, options: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a record keeps: SETTING_KEYS from `options` (TimingSettings' defaults for the
    rest), threads resolved; a sweep's batch sizes are its own (batch None) and a sweep or a
    profile is never compiled."""
    s = TimingSettings().with_options(**{k: v for k, v in options.items() if k in SETTING_KEYS})
    doc = {k: getattr(s, k) for k in SETTING_KEYS}
    doc["threads"] = default_threads() if s.threads is None else s.threads
    if kind == "sweep":
        doc.update(batch=None, compile=False)
    elif kind == "profile":
        doc["compile"] = False
    return doc


def settings_label(settings: Mapping[str, Any]) -> str:
    """The device label of a run that produced no result (it failed or was cancelled early)."""
    try:
        return device_label(resolve_device(settings.get("device", "auto")), settings.get("threads"))
    except (ConfigError, RuntimeError, AssertionError):  # a device that is not here
        return str(settings.get("device", "?"))


def timing_record(kind: RunKind, cfg: ArchConfig, settings: Mapping[str, Any], result: TimingResult | None = None,
                  status: RunStatus = "complete", message: str = "", started: str | None = None) -> RunRecord:
    """The record of one latency, sweep, profile or Compare measurement of `cfg`."""
    device = result.device_name if result is not None else settings_label(settings)
    return make_record(kind, cfg, settings, device, None if result is None else result.to_dict(), status,
                       message, started)


def kept_measurement(keeper: Keeper | None, kind: RunKind, cfg: ArchConfig, settings: Mapping[str, Any],
                     work: Callable[[Progress], R], progress: Progress | None = None,
                     stops: tuple[type[BaseException], ...] = ()) -> R:
    """`work(progress)` (a measurement of `cfg` at `settings`), kept as it ends: complete with its
    result (cancelled for a sweep cut short); cancelled when MeasurementCancelled, Ctrl-C or one
    of `stops` ends it; failed with its one line when a LatencyError, or a ConfigError once it had
    begun (a setting refused before anything ran is no run), stops it. What `work` raises is
    raised again; a failing store is the keeper's to report."""
    started, began = now_iso(), [False]

    def watched(fraction: float) -> Any:
        began[0] = True
        return progress(fraction) if progress is not None else None

    def keep(result: TimingResult | None, status: RunStatus, message: str = "") -> None:
        if keeper is not None:
            keeper.keep(timing_record(kind, cfg, settings, result, status, message, started))

    try:
        result = work(watched)
    except (MeasurementCancelled, KeyboardInterrupt, *stops):
        keep(None, "cancelled", "cancelled before it finished")
        raise
    except LatencyError as exc:
        keep(None, "failed", str(exc))
        raise
    except ConfigError as exc:
        if began[0]:
            keep(None, "failed", str(exc))
        raise
    cut_short = isinstance(result, SweepResult) and result.stopped == "cancelled"
    keep(result, "cancelled" if cut_short else "complete", "cancelled before every batch size" if cut_short else "")
    return result


# -- reading kept runs back ---------------------------------------------------------------------
def result_of(record: RunRecord) -> TimingResult | None:
    """The typed result a timing record holds; None for another kind or a result that does not read."""
    cls = RESULT_TYPES.get(record.kind)
    if cls is None or not record.result:
        return None
    try:
        return cls.from_dict(record.result)
    except (KeyError, TypeError, ValueError, ConfigError):
        return None


def _matches(record: RunRecord, settings: Mapping[str, Any], device: str) -> bool:
    return record.device == device and all(record.settings.get(k) == settings.get(k) for k in MATCHED)


def stored_result(records: Iterable[RunRecord], kind: str, settings: Mapping[str, Any],
                  device: str) -> tuple[TimingResult, RunRecord] | None:
    """The newest kept result of `kind` ("latency" also takes Compare's) measured on `device` (its
    label) at `settings` (run_settings of the same kind), with its record; `records` newest first."""
    kinds = LATENCY_KINDS if kind in LATENCY_KINDS else (kind,)
    for record in records:
        if record.kind in kinds and record.status in ("complete", "cancelled") and _matches(record, settings, device):
            result = result_of(record)
            if result is not None:
                return result, record
    return None


def latest_per_device(records: Iterable[RunRecord]) -> list[tuple[LatencyResult, RunRecord]]:
    """The newest complete latency result on each device among `records` (newest first), in that order."""
    seen: dict[str, tuple[LatencyResult, RunRecord]] = {}
    for record in records:
        if record.kind in LATENCY_KINDS and record.status == "complete" and record.device not in seen:
            result = result_of(record)
            if isinstance(result, LatencyResult):
                seen[record.device] = (result, record)
    return list(seen.values())


def when_where(record: RunRecord) -> str:
    """When and where a kept run was measured: "measured 2026-12-06 21:50 UTC on host lab-1"."""
    return f"measured {record.when[:16]} UTC on host {record.host or 'unknown'}"
