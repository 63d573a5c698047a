"""Lab runs kept as they go: one record per variant and seed, written again as each epoch ends,
so a crash keeps the finished epochs; the last experiment can be read back whole.

Each record's `result` is the run's `RunResult.to_dict()`; its `settings` say how it trained
(`train`) and which experiment it belongs to (`experiment`, `experiment_run`: one id shared by
every run of one experiment, and what the experiment asked for: seeds, plan, comparisons).
"""
from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from explorer.lab.records import RunResult
from explorer.lab.results import LabResult
from explorer.lab.settings import TrainSettings
from explorer.lab.training import TRAIN_THREADS
from explorer.runs.keep import Keeper, make_record
from explorer.runs.record import RunRecord, RunStatus, now_iso

LOOKBACK = 500      # newest Lab records searched for an experiment's runs

# How a run ended, as the store says it (a diverged run finished: its message says it diverged).
_STATUS: dict[str, RunStatus] = {"running": "running", "complete": "complete", "diverged": "complete",
                                 "cancelled": "cancelled"}


def lab_device(settings: TrainSettings) -> str:
    """Where a run of `settings` trains, as timing labels it: this machine's GPU, or its CPU at
    the training thread count; a GPU asked of a cluster from a machine without one is said so."""
    from explorer.errors import ConfigError
    from explorer.lab.training import train_device
    from explorer.timing.devices import device_label

    try:
        device = train_device(settings)
    except ConfigError:
        return "CUDA (a GPU of the cluster)"
    return device_label(device, TRAIN_THREADS) if device.type == "cpu" else device_label(device)


class LabRecorder:
    """`update` (an on_update callback) writes each run whose epochs changed; `finish` (on_end)
    writes how every run ended. Runs that never started are not recorded."""

    def __init__(self, keeper: Keeper) -> None:
        self.keeper = keeper
        self.experiment_run = uuid.uuid4().hex
        self._records: dict[tuple[str, int], RunRecord] = {}
        self._seen: dict[tuple[str, int], tuple[int, str]] = {}   # (epochs, status) last written
        self._finished = False
        self._device: str | None = None

    def update(self, result: LabResult) -> None:
        if self._finished:  # a last progress call after the end says nothing new
            return
        for run in result.runs:
            key = (run.name, run.seed)
            seen = (len(run.history), run.status)
            if self._seen.get(key) == seen:
                continue
            self._seen[key] = seen
            self._write(result, run, _STATUS.get(run.status, "running"))

    def finish(self, result: LabResult) -> None:
        self._finished = True
        for run in result.runs:
            # A run still "running" when its experiment ended was cut short.
            status = _STATUS.get(run.status, "complete") if run.status != "running" else "cancelled"
            self._write(result, run, status, ended=True)

    def _write(self, result: LabResult, run: RunResult, status: RunStatus, ended: bool = False) -> None:
        key = (run.name, run.seed)
        if self._device is None:
            self._device = lab_device(run.settings)
        message = _message(run, result if ended else None)
        earlier = self._records.get(key)
        record = make_record("lab", run.config, _settings(result, run, self.experiment_run, ended), self._device,
                             result=run.to_dict(), status=status, message=message,
                             started=earlier.started if earlier else now_iso())
        if earlier is not None:
            record = replace(record, id=earlier.id)
        self._records[key] = record
        self.keeper.keep(record, replace_existing=True)


def _settings(result: LabResult, run: RunResult, experiment_run: str, ended: bool) -> dict[str, Any]:
    doc = {"experiment": result.experiment, "title": result.title, "experiment_run": experiment_run,
           "train": run.settings.to_dict(), "experiment_settings": result.settings.to_dict(),
           "seeds": list(result.seeds), "total_runs": result.total_runs, "workers": result.workers,
           "comparisons": [list(p) for p in result.comparisons],
           "plan": [[name, seed] for name, seed in result.plan], "time_limit_s": result.time_limit_s}
    if ended:
        doc.update(experiment_status=result.status, experiment_seconds=result.seconds)
    return doc


def _message(run: RunResult, result: LabResult | None) -> str:
    if run.status == "diverged":
        return f"diverged at epoch {len(run.history)}"
    if result is not None and result.cancelled and run.status in ("cancelled", "running"):
        return result.stop_message()
    return ""


def lab_result_of(records: list[RunRecord]) -> LabResult | None:
    """The experiment the newest of `records` belongs to, read back whole from its runs' records."""
    labs = [r for r in records if r.kind == "lab" and isinstance(r.settings.get("experiment_run"), str)]
    if not labs:
        return None
    newest = max(labs, key=lambda r: r.started)
    mine = [r for r in labs if r.settings["experiment_run"] == newest.settings["experiment_run"]]
    s = newest.settings
    runs = {(run.name, run.seed): run for run in (RunResult.from_dict(r.result) for r in mine if r.result)}
    plan = [tuple(p) for p in s.get("plan", ())]
    ordered = [runs[k] for k in plan if k in runs] + [v for k, v in runs.items() if k not in plan]
    ended = [r for r in mine if "experiment_status" in r.settings]
    return LabResult(experiment=s["experiment"], title=s["title"],
                     settings=TrainSettings.from_dict(s["experiment_settings"]), runs=tuple(ordered),
                     total_runs=s["total_runs"], seconds=ended[0].settings["experiment_seconds"] if ended else 0.0,
                     status=ended[0].settings["experiment_status"] if ended else "running",
                     seeds=tuple(s["seeds"]), workers=s["workers"],
                     comparisons=tuple(tuple(p) for p in s["comparisons"]), plan=tuple(plan),
                     time_limit_s=s.get("time_limit_s"))


def latest_lab_result(keeper: Keeper, experiment: str | None = None) -> tuple[LabResult, RunRecord] | None:
    """The newest kept experiment (of this name, if given) and its newest record (when, where)."""
    records = [r for r in keeper.records(kind="lab", limit=LOOKBACK)
               if experiment is None or r.settings.get("experiment") == experiment]
    try:
        result = lab_result_of(records)
    except (KeyError, TypeError, ValueError):  # a record written by something else: nothing to show
        return None
    if result is None:
        return None
    return result, max(records, key=lambda r: r.started)
