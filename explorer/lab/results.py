"""An experiment's results: every variant trained at every seed, summarised with its spread.

`LabResult` is one frozen record (its runs are `explorer.lab.records.RunResult`); the command
line's text, its JSON and the app's Lab view all read it. Its row lists are ready for pandas
and plotly:

    result.to_rows()             # one row per variant: mean and std over seeds of the final numbers
    result.seed_rows()           # one row per variant and seed
    result.history_rows()        # one row per variant, seed and epoch
    result.history_band_rows()   # one row per variant and epoch: mean, std, min, max over seeds
    result.grad_norm_rows()      # one row per variant, seed and residual unit, at initialisation
    result.conclusions()         # the verdicts of `explorer.lab.spread.judge`
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, replace
from typing import Any, Literal, Mapping, Sequence, get_args

from explorer.errors import ConfigError, check_choice
from explorer.labels import fmt_duration, fmt_num
from explorer.lab.data import SHAPES
from explorer.lab.records import RunResult, RunStatus
from explorer.lab.settings import TrainSettings
from explorer.lab.spread import METRICS, RULE, Spread, Verdict, judge, spread

SUMMARY_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "best_val_acc")
BAND_KEYS = ("train_loss", "val_acc")
# How an experiment ended: every planned run trained ("complete"), a stop ended it
# ("cancelled"), its time limit did ("timed_out"), or it is still training ("running").
LabStatus = Literal["running", "complete", "cancelled", "timed_out"]


@dataclass(frozen=True)
class LabResult:
    """All runs of an experiment, one per variant and seed: the finished ones, and partial ones
    when it was stopped. `runs` is in variant order, each variant's seeds in seed order."""

    experiment: str
    title: str
    settings: TrainSettings              # as trained (lr resolved); its seed is the first of `seeds`
    runs: tuple[RunResult, ...] = ()
    total_runs: int = 0                  # variants x seeds
    seconds: float = 0.0                 # wall time (ms precision)
    status: LabStatus = "complete"
    seeds: tuple[int, ...] = ()          # every variant trains once at each of these
    workers: int = 1                     # processes that trained them (1: this one)
    comparisons: tuple[tuple[str, str], ...] = ()  # (a, b) pairs the conclusions judge
    plan: tuple[tuple[str, int], ...] = ()  # (variant, seed) of every run asked for, in training order
    time_limit_s: float | None = None    # the wall-time bound it ran under, if any

    def __post_init__(self) -> None:
        check_choice("status", self.status, get_args(LabStatus))
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("settings", self.settings.resolved())
        set_("runs", tuple(self.runs))
        set_("seeds", tuple(self.seeds) or (self.settings.seed,))
        set_("comparisons", tuple(tuple(p) for p in self.comparisons))
        set_("plan", tuple((name, seed) for name, seed in self.plan))

    @property
    def cancelled(self) -> bool:
        """Stopped before every planned run finished (by a stop or the time limit)."""
        return self.status in ("cancelled", "timed_out")

    @property
    def timed_out(self) -> bool:
        """Stopped by `time_limit_s`."""
        return self.status == "timed_out"

    # -- grouping ---------------------------------------------------------------------------
    def variants(self) -> list[str]:
        """Variant names in training order."""
        return list(dict.fromkeys(r.name for r in self.runs))

    def planned_variants(self) -> list[str]:
        """Every variant asked for, trained or not, in training order."""
        return list(dict.fromkeys(name for name, _ in self.plan)) or self.variants()

    def runs_of(self, variant: str) -> list[RunResult]:
        return [r for r in self.runs if r.name == variant]

    def status_of(self, variant: str, seed: int) -> RunStatus:
        """How the run of `variant` at `seed` ended ("not run" when it never started)."""
        return next((r.status for r in self.runs if (r.name, r.seed) == (variant, seed)), "not run")

    def counted_runs(self, variant: str) -> list[RunResult]:
        """The runs a variant's summary averages: those that finished (or diverged); when none
        has, the partial ones that finished an epoch."""
        with_epochs = [r for r in self.runs_of(variant) if r.final is not None]
        return [r for r in with_epochs if not r.cancelled] or with_epochs

    def common_epoch(self, variant: str) -> int:
        """The epoch a variant's summary is read at: the last one every counted seed finished
        (a diverged seed, which stopped early, counts with its last epoch wherever that was).
        Seeds cut short at different epochs are so compared epoch for epoch, never epoch 2 of
        one with epoch 1 of another."""
        runs = self.counted_runs(variant)
        alive = [r for r in runs if not r.diverged] or runs
        return min((len(r.history) for r in alive), default=0)

    def spread_of(self, variant: str, key: str) -> Spread:
        """`key` at the common epoch (or best_val_acc up to it) across the counted seeds of
        `variant`; a diverged seed gives its last epoch's."""
        epoch = self.common_epoch(variant)
        return spread([_value_at(r, key, len(r.history) if r.diverged else epoch)
                       for r in self.counted_runs(variant)])

    # -- tables -----------------------------------------------------------------------------
    def to_rows(self) -> list[dict[str, Any]]:
        """The results table: one row per variant, mean (`train_loss`) and standard deviation
        (`train_loss_std`, None below two seeds) over its seeds, all read at the epoch `epochs`
        (`common_epoch`: the last one each counted seed finished)."""
        rows = []
        for name in self.variants():
            runs, counted = self.runs_of(name), self.counted_runs(name)
            first = runs[0].summary_row()
            row = {k: first[k] for k in ("run", "depth", "skip_span", "bn_position", "relu_position", "params")}
            row["seeds"] = len(counted)
            row["epochs"] = self.common_epoch(name)  # the epoch every number of the row is read at
            for key in SUMMARY_KEYS:
                s = self.spread_of(name, key)
                row[key] = s.mean
                if key in BAND_KEYS:
                    row[key + "_std"] = s.std
            row["seconds"] = round(sum(r.seconds for r in runs), 2)
            row["cancelled"] = any(r.cancelled for r in runs)
            row["diverged"] = any(r.diverged for r in runs)
            rows.append(row)
        return rows

    def seed_rows(self) -> list[dict[str, Any]]:
        """One row per variant and seed (its final numbers)."""
        return [r.summary_row() for r in self.runs]

    def history_rows(self) -> list[dict[str, Any]]:
        """Long-format curves: one row per variant, seed and epoch (train_loss, val_acc, ...)."""
        return [row.to_dict() for r in self.runs for row in r.history]

    def history_band_rows(self) -> list[dict[str, Any]]:
        """Per variant and epoch over the seeds that reached it: `train_loss` (mean),
        `train_loss_std`, `train_loss_min`, `train_loss_max`, the same for `val_acc`, `seeds`."""
        return _band(self.history_rows(), "epoch", BAND_KEYS)

    def grad_norm_rows(self) -> list[dict[str, Any]]:
        """Long-format gradient norms at initialisation: one row per variant, seed and unit."""
        return [row.to_dict() for r in self.runs for row in r.grad_norms]

    def grad_norm_band_rows(self) -> list[dict[str, Any]]:
        """Per variant and residual unit: `grad_norm` mean, std, min, max over seeds."""
        return _band(self.grad_norm_rows(), "layer", ("grad_norm",))

    # -- what it shows ----------------------------------------------------------------------
    def conclusions(self) -> list[Verdict]:
        """For each compared pair that both trained, one verdict per metric (RULE); none is
        reached where a variant's numbers come only from runs a stop cut short."""
        names = self.variants()
        pairs = self.comparisons or tuple((names[0], n) for n in names[1:])
        out = []
        for a, b in pairs:
            if a in names and b in names and self.counted_runs(a) and self.counted_runs(b):
                # a variant with no finished seed trained fewer epochs: its numbers are not comparable
                cut = tuple(n for n in (a, b) if all(r.cancelled for r in self.counted_runs(n)))
                for metric in METRICS:
                    verdict = judge(a, self.spread_of(a, metric), b, self.spread_of(b, metric), metric)
                    out.append(replace(verdict, better=None, cut_short=cut) if cut else verdict)
        return out

    def conclusion_lines(self) -> list[str]:
        """One line per compared pair: 'a vs b — training loss: ...; validation accuracy: ...',
        the numbers in the same order (a's, then b's)."""
        by_pair: dict[tuple[str, str], list[str]] = {}
        for v in self.conclusions():
            by_pair.setdefault((v.a, v.b), []).append(v.text)
        return [f"{a} vs {b} — " + "; ".join(texts) for (a, b), texts in by_pair.items()]

    def fraction_done(self) -> float:
        """Share of all epochs of all runs done (a diverged run counts whole)."""
        total = max(self.total_runs * self.settings.epochs, 1)
        done = sum(self.settings.epochs if r.diverged else len(r.history) + r.epoch_fraction for r in self.runs)
        return min(done / total, 1.0)

    # -- how a stopped experiment ended -----------------------------------------------------
    def cut_short(self) -> list[RunResult]:
        """The runs a stop interrupted (each keeps its finished epochs and its time)."""
        return [r for r in self.runs if r.cancelled]

    def not_run(self) -> list[tuple[str, int]]:
        """(variant, seed) of the planned runs that never started."""
        started = {(r.name, r.seed) for r in self.runs}
        return [p for p in self.plan if p not in started]

    def stop_message(self, cause: str = "Cancelled") -> str | None:
        """What a stop (`cause`, unless the time limit) cut short and what it left out, in a
        sentence; None when nothing stopped it. E.g. 'Cancelled after 1 m 30 s: span1 seed 2 ran
        38.2 s and stopped 40 % into epoch 2 of 3 (1 finished epoch kept); span2
        and span3 did not run.'"""
        if not self.cancelled:
            return None
        timed_out = self.timed_out and self.time_limit_s is not None
        head = (f"Stopped at the {fmt_num(self.time_limit_s)} s time limit" if timed_out else cause)
        head += f" after {fmt_duration(self.seconds)}"
        parts = [f"{self._label(r.name, [r.seed])} {_where(r)}" for r in self.cut_short()]
        missing: dict[str, list[int]] = {}
        for name, seed in self.not_run():
            missing.setdefault(name, []).append(seed)
        if missing:
            parts.append(_and([self._label(n, seeds) for n, seeds in missing.items()]) + " did not run")
        if not parts:
            return head + ", once every run had finished: the results are complete."
        return head + ": " + "; ".join(parts) + "."

    def _label(self, variant: str, seeds: Sequence[int]) -> str:
        """'span1', 'span1 seed 2', 'span1 seeds 1-2': a variant alone stands for all its seeds."""
        if len(self.seeds) < 2 or sorted(seeds) == sorted(self.seeds):
            return variant
        return f"{variant} seed{'s' if len(seeds) > 1 else ''} {_ranges(seeds)}"

    # -- export -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON form (`from_dict` reads it back). Besides the record's own fields it carries
        what is derived from them for a reader: the summary table (`results`), per variant its
        mean and std, the stop message, the runs that did not run and the conclusions."""
        return {
            "experiment": self.experiment, "title": self.title, "dataset": SHAPES[self.settings.dataset].title,
            "settings": self.settings.to_dict(), "seeds": list(self.seeds), "workers": self.workers,
            "total_runs": self.total_runs, "seconds": self.seconds, "status": self.status,
            "cancelled": self.cancelled, "timed_out": self.timed_out, "stop_message": self.stop_message(),
            "not_run": [{"run": name, "seed": seed} for name, seed in self.not_run()],
            "results": self.to_rows(), "runs": [self._variant_dict(name) for name in self.variants()],
            "rule": RULE, "conclusions": self.conclusion_lines(),
            "comparisons": [list(p) for p in self.comparisons],
            "plan": [{"run": name, "seed": seed} for name, seed in self.plan],
            "time_limit_s": self.time_limit_s,
        }

    def _variant_dict(self, name: str) -> dict[str, Any]:
        runs = self.runs_of(name)
        spreads = {k: self.spread_of(name, k) for k in SUMMARY_KEYS}
        return {
            "run": name, "config": runs[0].config.to_dict(), "params": runs[0].params,
            "depth": runs[0].depth, "seeds": [r.seed for r in runs],
            "per_seed": [{"seed": r.seed, **r.to_dict()} for r in runs],
            "mean": {k: s.mean for k, s in spreads.items()},
            "std": {k: s.std for k, s in spreads.items()},
            "counted_seeds": [r.seed for r in self.counted_runs(name)],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LabResult":
        """A result from its `to_dict` form (or that form read back from JSON)."""
        if not isinstance(data, Mapping):
            raise ConfigError("result", data, "a JSON object (a Lab result)")
        try:
            status = data.get("status") or ("timed_out" if data.get("timed_out") else
                                             "cancelled" if data.get("cancelled") else "complete")
            return cls(
                experiment=data["experiment"], title=data["title"],
                settings=TrainSettings.from_dict(data["settings"]),
                runs=tuple(RunResult.from_dict(p) for v in data["runs"] for p in v["per_seed"]),
                total_runs=data["total_runs"], seconds=data["seconds"], status=status,
                seeds=tuple(data["seeds"]), workers=data["workers"],
                comparisons=tuple(tuple(p) for p in data.get("comparisons", ())),
                plan=tuple((p["run"], p["seed"]) for p in data.get("plan", ())),
                time_limit_s=data.get("time_limit_s"),
            )
        except KeyError as exc:
            raise ConfigError(str(exc.args[0]), None, "a value: a Lab result has this key") from None

    def to_json_bytes(self) -> bytes:
        """The whole result as UTF-8 JSON (non-finite numbers as null)."""
        return json.dumps(_json_safe(self.to_dict()), indent=2, ensure_ascii=False).encode()

    def to_csv_bytes(self, table: Literal["results", "seeds", "history", "grad_norms"] = "results") -> bytes:
        """One table as UTF-8 CSV."""
        rows = {"results": self.to_rows, "seeds": self.seed_rows, "history": self.history_rows,
                "grad_norms": self.grad_norm_rows}
        if table not in rows:
            raise ConfigError("table", table, "one of " + ", ".join(rows))
        return _csv_bytes(rows[table]())


def _value_at(run: RunResult, key: str, epoch: int) -> float | None:
    """`key` of `run` at 1-based `epoch` (best_val_acc: the best up to it); None before any."""
    if epoch <= 0 or not run.history:
        return None
    history = run.history[:epoch]
    if key == "best_val_acc":
        vals = [r.val_acc for r in history if r.val_acc is not None and math.isfinite(r.val_acc)]
        return max(vals) if vals else None
    return getattr(history[-1], key)


def _where(run: RunResult) -> str:
    """How long a cut-short run ran, where it stopped and what it kept."""
    done, total = len(run.history), run.settings.epochs
    if run.epoch_fraction > 0:
        at = f"{round(100 * run.epoch_fraction)} % into epoch {done + 1} of {total}"
    elif done:
        at = f"after epoch {done} of {total}"
    else:
        at = "before its first epoch"
    kept = f"{done} finished epoch{'s' if done != 1 else ''} kept" if done else "no epoch finished"
    return f"ran {fmt_duration(run.seconds)} and stopped {at} ({kept})"


def _ranges(values: Sequence[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    out: list[str] = []
    for v in sorted(values):
        if out and out[-1].split("-")[-1] == str(v - 1):
            out[-1] = out[-1].split("-")[0] + f"-{v}"
        else:
            out.append(str(v))
    return ", ".join(out)


def _and(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _band(rows: list[dict[str, Any]], x: str, keys: Sequence[str]) -> list[dict[str, Any]]:
    """Group long rows by (run, x) and summarise `keys` over the seeds."""
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["run"], row[x]), []).append(row)
    out = []
    for (run, at), group in groups.items():
        band = {"run": run, x: at, "seeds": len(group)}
        for key in keys:
            s = spread([r[key] for r in group])
            band |= {key: s.mean, key + "_std": s.std, key + "_min": s.min, key + "_max": s.max}
        out.append(band)
    return out


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue().encode()


ExperimentResult = LabResult  # the earlier name, kept for scripts that import it
