"""Per-session result stores and the comparison set: plain data, no streamlit.

Results (LatencyResult, SweepResult, ProfileResult objects) are kept under keys built from
the config and the settings that produced them, torch's default thread count resolved to its
number, so a result is shown again only for exactly those settings; each store keeps the newest
MAX_RESULTS.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Hashable, MutableMapping, Sequence

from explorer import ArchConfig, ConfigError
from explorer.app.inputs import distinct_name
from explorer.limits import MAX_COMPARE, MAX_RESULTS
from explorer.timing import LatencyResult, default_threads


def remember(store: MutableMapping, key: Hashable, value: Any) -> None:
    """Keep a result in a per-session store, dropping the oldest beyond MAX_RESULTS."""
    store.pop(key, None)
    store[key] = value
    while len(store) > MAX_RESULTS:
        store.pop(next(iter(store)))


# -- latency -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LatencySettings:
    """The Latency view's settings, as `explorer.timing.measure_latency` takes them."""

    device: str
    batch: int
    dtype: str
    channels_last: bool
    compile: bool
    threads: int | None  # None: torch's default thread count

    def kwargs(self) -> dict[str, Any]:
        return asdict(self)

    def profile_kwargs(self) -> dict[str, Any]:
        """What a per-layer profile takes: hooks need the eager model, so it is never compiled."""
        return {k: v for k, v in asdict(self).items() if k != "compile"}

    def sweep_kwargs(self) -> dict[str, Any]:
        """What a batch sweep takes: the batch sizes are its own, and it is never compiled."""
        return {k: v for k, v in asdict(self).items() if k not in ("batch", "compile")}

    def resolved(self) -> "LatencySettings":
        """These settings as a measurement runs them: torch's default thread count as its number
        (a measurement at the default and one at that many threads are the same)."""
        return self if self.threads is not None else replace(self, threads=default_threads())


def latency_key(cfg: ArchConfig, settings: LatencySettings) -> tuple:
    return ("latency", cfg, settings.resolved())


def sweep_key(cfg: ArchConfig, settings: LatencySettings) -> tuple:
    return ("sweep", cfg, settings.resolved())


def profile_key(cfg: ArchConfig, settings: LatencySettings) -> tuple:
    """A profile ignores the compile toggle (it is always of the eager model)."""
    return ("profile", cfg, replace(settings.resolved(), compile=False))


def same_architecture(a: ArchConfig, b: ArchConfig) -> bool:
    """The same network, whatever each is called."""
    return a.arch_key() == b.arch_key()


def latest_latency(results: MutableMapping, cfg: ArchConfig) -> LatencyResult | None:
    """The newest latency measurement of `cfg`'s architecture, whatever it was called then."""
    timed = [r for k, r in results.items() if k[0] == "latency" and same_architecture(k[1], cfg)]
    return timed[-1] if timed else None


def measured_key(results: MutableMapping, cfg: ArchConfig, settings: LatencySettings) -> tuple | None:
    """The key of a latency result of `cfg`'s architecture at exactly `settings`, whatever the
    config was called then (its own key first); None when there is none."""
    if latency_key(cfg, settings) in results:
        return latency_key(cfg, settings)
    resolved = settings.resolved()
    return next((k for k in reversed(list(results)) if k[0] == "latency" and k[2] == resolved
                 and same_architecture(k[1], cfg)), None)


# -- lab ---------------------------------------------------------------------------------------
def lab_key(experiment: str, epochs: int, seed: int, configs: Sequence[ArchConfig] | None,
            seeds: int = 1, dataset: str = "digits", recipe: str = "quick") -> tuple:
    return (experiment, int(epochs), int(seed), tuple(configs or ()), int(seeds), dataset, recipe)


# -- the comparison set (a list of config dicts in the session) --------------------------------
def add_config(entries: list[dict], cfg: ArchConfig) -> str | None:
    """Append `cfg` under a name no other entry has ("resnet34 (skip_span 1)" beside "resnet34");
    returns a message instead when the set is full."""
    if len(entries) >= MAX_COMPARE:
        return f"The comparison holds at most {MAX_COMPARE} configs: remove one first."
    name = distinct_name(cfg, {e["name"] for e in entries})
    entries.append(cfg.replace(name=name).to_dict())
    return None


def rename_config(entries: list[dict], i: int, name: str) -> str | None:
    """Rename entry `i`; returns the ConfigError message when the name is invalid."""
    try:
        entries[i] = ArchConfig.from_dict({**entries[i], "name": name.strip()}).to_dict()
    except ConfigError as exc:
        return str(exc)
    return None


def remove_config(entries: list[dict], i: int) -> None:
    if 0 <= i < len(entries):
        entries.pop(i)


def configs_of(entries: Sequence[dict]) -> list[ArchConfig]:
    return [ArchConfig.from_dict(e) for e in entries]
