"""What a measurement answers: a latency, a batch sweep, a per-layer profile, as frozen records.

The command line's text and JSON and the app's Latency and Compare views all render these
objects; `to_dict()` / `from_dict()` are for the JSON edge (CLI --json, downloads, stored runs)
and `from_dict(x.to_dict()) == x`.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Iterator, Literal, Mapping, NamedTuple, get_args

from explorer.vocab import Dtype

PROFILE_TOP = 15            # rows a profile table lists, slowest first (CLI --top default, app table)


def _known(cls: type, doc: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `doc` that are fields of `cls` (a document may carry more, e.g. its config)."""
    return {f.name: doc[f.name] for f in fields(cls) if f.name in doc}


def _fields_dict(obj: Any) -> dict[str, Any]:
    """A record's fields, tuples as lists (the JSON shape)."""
    return {f.name: list(v) if isinstance(v := getattr(obj, f.name), tuple) else v for f in fields(obj)}


# -- latency --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LatencyResult:
    """One latency measurement: statistics over individual timed forward passes."""

    name: str                       # model label (config name or class name)
    device: str                     # "cpu" | "cuda" | "cuda:N"
    device_name: str                # GPU model and memory, or CPU model and thread count
    batch: int                      # images per pass actually measured
    requested_batch: int            # as asked; larger than `batch` after an out-of-memory retry
    input_shape: tuple[int, ...]    # (B, C, H, W) of the timed input
    median_ms: float                # per pass
    p10_ms: float
    p90_ms: float
    iqr_ms: float                   # p75 - p25
    min_ms: float
    mean_ms: float
    throughput: float               # images / s at the median
    samples: int                    # timed passes
    warmup: int                     # untimed passes before them (compile pass excluded)
    noisy: bool                     # IQR above passes.NOISY_IQR of the median
    dtype: Dtype                    # fp32 | bf16 | fp16
    channels_last: bool
    compile: bool
    compile_s: float | None         # first (compiling) pass, seconds; None without compile
    threads: int                    # CPU threads torch used (torch's default resolved to its number)
    torch_version: str
    peak_memory_bytes: int | None   # CUDA: peak allocated during timing above weights + input
    budget_s: float
    elapsed_s: float                # warm-up + timing wall time
    gate_timed_out: bool = False    # Lab training steps still ran when timing began (see warnings)
    warnings: tuple[str, ...] = ()
    times_ms: tuple[float, ...] = ()  # every timed pass, in order

    @property
    def ms_per_image(self) -> float:
        return self.median_ms / self.batch

    def to_dict(self) -> dict[str, Any]:
        return _fields_dict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "LatencyResult":
        d = _known(cls, doc)
        d.update(input_shape=tuple(d["input_shape"]), warnings=tuple(d.get("warnings", ())),
                 times_ms=tuple(d.get("times_ms", ())))
        return cls(**d)


# -- batch sweep ----------------------------------------------------------------------------------
StopReason = Literal["done", "time", "memory", "cancelled"]
STOP_REASONS: tuple[str, ...] = get_args(StopReason)
# Why a sweep ended, in words: the stop line and the caption of the batch sizes it left out
# (for "time" with the budget when it is known: "the budget of 20 s ran out").
STOP_TEXT: dict[str, str] = {
    "done": "every batch size measured",
    "time": "out of the time budget",
    "memory": "did not fit in memory",
    "cancelled": "cancelled",
}


@dataclass(frozen=True)
class SweepRow:
    """One measured batch size of a sweep (the names are LatencyResult's)."""

    name: str
    batch: int
    median_ms: float
    p10_ms: float
    p90_ms: float
    ms_per_image: float
    throughput: float               # images / s at the median
    samples: int
    noisy: bool
    dtype: Dtype
    device: str
    device_name: str
    peak_memory_bytes: int | None

    @classmethod
    def of(cls, r: LatencyResult) -> "SweepRow":
        return cls(**{f.name: getattr(r, f.name) for f in fields(cls)})


@dataclass(frozen=True)
class SkippedBatch:
    """A planned batch size the sweep did not measure, and why."""

    batch: int
    reason: StopReason


@dataclass(frozen=True)
class SweepResult:
    """Latency and throughput per batch size; iterates over its rows (ready for a chart)."""

    rows: tuple[SweepRow, ...]
    stopped: StopReason             # why the sweep ended
    device: str
    device_name: str
    warnings: tuple[str, ...] = ()  # about the sweep as a whole (e.g. the Lab gate)
    skipped: tuple[SkippedBatch, ...] = ()  # planned, not measured
    budget_s: float | None = None   # the sweep's time budget, seconds

    def __iter__(self) -> Iterator[SweepRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> SweepRow:
        return self.rows[i]

    def reason_text(self, reason: str) -> str:
        if reason == "time" and self.budget_s is not None:
            return f"the budget of {self.budget_s:g} s ran out"
        return STOP_TEXT[reason]

    def stop_text(self) -> str:
        """Why the sweep ended: "every batch size measured" or "stopped before batch 512: ..."."""
        if self.stopped == "done" or not self.skipped:
            return STOP_TEXT["done"] if self.stopped == "done" else self.reason_text(self.stopped)
        return f"stopped before batch {self.skipped[0].batch}: {self.reason_text(self.stopped)}"

    def skipped_text(self) -> str:
        """One line per reason: "batch 512, 2048 not measured: the budget of 20 s ran out"."""
        by_reason: dict[str, list[int]] = {}
        for s in self.skipped:
            by_reason.setdefault(s.reason, []).append(s.batch)
        return "\n".join(f"batch {', '.join(map(str, sorted(batches)))} not measured: {self.reason_text(reason)}"
                         for reason, batches in by_reason.items())

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [_fields_dict(r) for r in self.rows], "stopped": self.stopped, "device": self.device,
                "device_name": self.device_name, "warnings": list(self.warnings),
                "skipped": [_fields_dict(s) for s in self.skipped], "budget_s": self.budget_s}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "SweepResult":
        d = _known(cls, doc)
        d.update(rows=tuple(SweepRow(**_known(SweepRow, r)) for r in d["rows"]),
                 warnings=tuple(d.get("warnings", ())),
                 skipped=tuple(SkippedBatch(**_known(SkippedBatch, s)) for s in d.get("skipped", ())))
        return cls(**d)


# -- per-layer profile ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ProfileRow:
    """One leaf module or tensor op of the forward pass, with its median time per pass."""

    module: str         # module path ("layer1.0.conv1") or scope + op ("layer1.0.add")
    kind: str           # the trace's kind (conv bn relu add ...); the class name for other modules
    stage: str          # "stem", "layer1" ... or "head" (the trace's stage, else its role)
    unit: str           # enclosing residual unit ("layer1.0"), "" outside units
    ms: float           # median per pass
    share: float        # ms / total_ms


class StageTime(NamedTuple):
    """One stage's part of a profile."""

    stage: str
    ms: float
    share: float        # of the rows' total


@dataclass(frozen=True)
class ProfileResult:
    """A per-layer profile and the whole-model median it is checked against."""

    name: str
    device: str                     # "cpu" | "cuda" | "cuda:N"
    device_name: str
    method: str                     # how the rows were timed
    batch: int
    input_shape: tuple[int, ...]    # (B, C, H, W)
    dtype: Dtype
    channels_last: bool
    threads: int
    rows: tuple[ProfileRow, ...]    # in execution order
    stages: tuple[StageTime, ...]   # in network order
    total_ms: float                 # sum of the rows
    whole_ms: float                 # median plain pass (no hooks), interleaved with the profiled ones
    instrumented_ms: float          # median profiled pass, first hook to last, hooks included
    unattributed_ms: float          # median time between modules outside any traced op (not in rows)
    coverage: float                 # total_ms / whole_ms
    overhead: float                 # instrumented_ms / whole_ms - 1
    passes: int                     # profiled passes (as many plain ones ran between them)
    noisy: bool                     # the plain passes' IQR is over passes.NOISY_IQR of their median
    note: str                       # why the rows do not add up to the whole ("" when within 15%)
    torch_version: str
    budget_s: float
    elapsed_s: float
    warnings: tuple[str, ...] = ()

    def times(self) -> dict[str, float]:
        """Module path -> median ms per pass (what a diagram colours by)."""
        return {r.module: r.ms for r in self.rows}

    def top(self, n: int = PROFILE_TOP) -> list[ProfileRow]:
        """The `n` slowest rows, slowest first."""
        return sorted(self.rows, key=lambda r: -r.ms)[:n]

    def stage_shares(self) -> dict[str, float]:
        """Stage -> share of the rows' total, in network order (stem, layer1 ... head)."""
        return {s.stage: s.share for s in self.stages}

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in _fields_dict(self).items() if k not in ("rows", "stages")}
        d.update(stages=[s._asdict() for s in self.stages], profile=[_fields_dict(r) for r in self.rows])
        return d

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "ProfileResult":
        d = _known(cls, {**doc, "rows": doc["profile"]})
        d.update(input_shape=tuple(d["input_shape"]), warnings=tuple(d.get("warnings", ())),
                 rows=tuple(ProfileRow(**_known(ProfileRow, r)) for r in d["rows"]),
                 stages=tuple(StageTime(s["stage"], s["ms"], s["share"]) for s in d["stages"]))
        return cls(**d)


def stage_shares(profile: ProfileResult | Mapping[str, Any]) -> dict[str, float]:
    """Stage -> share of the rows' total of a profile or of its JSON document."""
    p = profile if isinstance(profile, ProfileResult) else ProfileResult.from_dict(profile)
    return p.stage_shares()

