"""Shared pieces of the command line: config loading and argument helpers."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

from explorer.arch.config import ArchConfig, parse_value, with_updates
from explorer.arch.config_file import config_from_bytes
from explorer.errors import ConfigError
from explorer.facts.limits import check_limits
from explorer.arch.presets import PRESETS, named_for_changes
from explorer.limits import MAX_CONFIG_BYTES


def load_config(source: str, sets: Sequence[str] = ()) -> ArchConfig:
    """A preset name or a JSON file, with `key=value` overrides applied and validated; a changed
    preset is named by its changes ("resnet50 (skip_span 1)"), so every output says what it is."""
    if source in PRESETS:
        cfg = PRESETS[source]
    else:
        cfg = config_from_bytes("config", source, read_config_file(source))
    changes: dict[str, Any] = {}
    for item in sets:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError("--set", item, "key=value, e.g. skip_span=1 or depths=[3,4,6,3]")
        changes[key.strip()] = parse_value(key.strip(), text)
    cfg = named_for_changes(with_updates(cfg, changes) if changes else cfg)
    check_limits(cfg)  # the server's size limits apply where work starts, not in the value type
    return cfg


def read_config_file(source: str) -> bytes:
    """The bytes of the config file `source` names; ConfigError naming it when it is no readable
    file of at most MAX_CONFIG_BYTES (a name too long for the system is no file either)."""
    valid = "a preset name (" + ", ".join(PRESETS) + ") or a JSON file"
    try:
        path = Path(source)
        if not path.is_file():
            raise ConfigError("config", source, valid)
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError("config", source, f"a JSON file of at most {MAX_CONFIG_BYTES // 1024} KiB")
        with path.open("rb") as f:
            return f.read(MAX_CONFIG_BYTES + 1)
    except (OSError, ValueError) as exc:  # name too long, not allowed, a NUL in it
        why = getattr(exc, "strerror", None) or exc
        raise ConfigError("config", source, valid, f"It cannot be read: {why}") from None


def add_config_args(p: argparse.ArgumentParser) -> None:
    """The NAME|FILE.json positional and repeatable --set, shared by every command."""
    p.add_argument("config", help="preset name or FILE.json")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key; the value is JSON when it parses (depths=[3,4,6,3])")
