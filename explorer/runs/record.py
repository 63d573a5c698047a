"""One stored run: what was measured, on which network, where, when, how it ended, and its result.

A record is plain data; its `result` is the very document the command line prints with --json
(a typed result's `to_dict()`), so a run read back renders as it did when it was measured.
"""
from __future__ import annotations

import datetime as _dt
import json
import platform
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Mapping, get_args

from explorer.errors import ConfigError

RunKind = Literal["latency", "sweep", "profile", "compare", "lab"]
RunStatus = Literal["running", "complete", "cancelled", "failed"]
RUN_KINDS: tuple[str, ...] = get_args(RunKind)
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
LATENCY_KINDS: tuple[RunKind, ...] = ("latency", "compare")  # kinds whose result is a latency (Compare's too)


def now_iso() -> str:
    """The current time, UTC, to the second: "2026-12-06T21:45:19Z"."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def project_version() -> str:
    from explorer import __version__

    return __version__


def torch_version() -> str:
    """torch's version when torch is loaded (every measurement loads it), else "" (no import here)."""
    import sys

    torch = sys.modules.get("torch")
    return getattr(torch, "__version__", "") if torch is not None else ""


@dataclass(frozen=True)
class RunRecord:
    """One measurement or Lab run, as kept in the run store and carried between machines."""

    kind: RunKind                       # what was measured
    name: str                           # the network's display name when it was measured
    config: dict[str, Any]              # the full config (ArchConfig.to_dict())
    network: str                        # ArchConfig.arch_key(): same network, same key, whatever its name
    settings: dict[str, Any]            # how it was measured (batch, dtype, epochs, ...)
    device: str                         # the device label as shown ("CPU (Intel Xeon, 2 threads)")
    result: dict[str, Any] | None = None  # the result document (the CLI's --json), None while running
    status: RunStatus = "complete"
    message: str = ""                   # why it failed or was cancelled
    started: str = field(default_factory=now_iso)   # ISO 8601, UTC
    ended: str | None = None
    host: str = field(default_factory=platform.node)
    torch_version: str = field(default_factory=torch_version)
    version: str = field(default_factory=project_version)  # this program's version
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if self.kind not in RUN_KINDS:
            raise ConfigError("kind", self.kind, "one of " + ", ".join(RUN_KINDS))
        if self.status not in RUN_STATUSES:
            raise ConfigError("status", self.status, "one of " + ", ".join(RUN_STATUSES))

    @property
    def when(self) -> str:
        """When it started, as a person reads it (UTC): "2026-12-06 21:45:19"."""
        return self.started.replace("T", " ").rstrip("Z")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunRecord":
        """A record from its JSON form; ConfigError naming the first missing, unknown or mistyped key."""
        if not isinstance(data, Mapping):
            raise ConfigError("record", type(data).__name__, "a JSON object")
        names = {f.name for f in fields(cls)}
        unknown = sorted(k for k in data if k not in names)
        if unknown:
            raise ConfigError(str(unknown[0]), data[unknown[0]], "unknown key; valid keys are " + ", ".join(sorted(names)))
        for key, types in _TYPES.items():
            if key not in data:
                raise ConfigError(key, None, "present in every run record")
            if not isinstance(data[key], types) or isinstance(data[key], bool):
                raise ConfigError(key, data[key], _TYPE_TEXT[types])
        for key in ("ended",):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise ConfigError(key, data[key], "a time as text, or null")
        if data.get("result") is not None and not isinstance(data["result"], dict):
            raise ConfigError("result", data["result"], "a JSON object, or null")
        return cls(**{k: data[k] for k in names if k in data})

    def to_json(self) -> str:
        """One line of a .jsonl export."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


def headline(record: RunRecord) -> str:
    """The one figure a list shows for a run: median latency, best throughput, final accuracy."""
    r = record.result or {}
    if record.kind in LATENCY_KINDS and "median_ms" in r:
        return f"{_time(r['median_ms'])} median, batch {r.get('batch', '?')}"
    if record.kind == "sweep" and r.get("points"):
        best = max(r["points"], key=lambda p: p.get("throughput", 0))
        return f"best {best.get('throughput', 0):,.0f} img/s at batch {best.get('batch', '?')}"
    if record.kind == "profile" and "total_ms" in r:
        return f"{_time(r['total_ms'])} in all"
    if record.kind == "lab" and r.get("history"):
        last = r["history"][-1]
        acc = "–" if last.get("val_acc") is None else f"{100 * last['val_acc']:.3g} %"
        return f"seed {last.get('seed', '?')}: val acc {acc} after {last.get('epoch', '?')} epochs"
    return record.message[:60] if record.message else ""


def _time(ms: float) -> str:
    """Three figures in ms below a second, in s above ("4.57 s", never "4.57e+03 ms")."""
    return f"{ms:.3g} ms" if ms < 999.5 else f"{ms / 1000:.3g} s"


_TYPES = {"id": str, "kind": str, "name": str, "config": dict, "network": str, "settings": dict,
          "device": str, "status": str, "started": str}
_TYPE_TEXT = {str: "text", dict: "a JSON object"}
