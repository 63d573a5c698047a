"""Configs from the places a user gives them (widgets, the page address, an upload): plain
functions, no streamlit. Each validates and applies the server's size limits (`check_limits`),
raising ConfigError with the key to show it under.
"""
from __future__ import annotations

from typing import Any, Mapping

import explorer
from explorer import ArchConfig, ConfigError, lessons
from explorer.arch.config import field_names, format_int_list, parse_int_list
from explorer.cli.common import MAX_CONFIG_BYTES
from explorer.facts.limits import check_limits

DEFAULT_PRESET = "resnet50"
WIDGET_PREFIX = "cfg_"          # widget key of a config setting: cfg_<config key>
LIST_KEYS = ("depths", "widths")  # typed as text: "3, 4, 6, 3"
MAX_UPLOAD_BYTES = MAX_CONFIG_BYTES


def widget_key(key: str) -> str:
    return WIDGET_PREFIX + key


def unit_variant_key(bn_position: str, relu_position: str) -> str:
    """The unit-variant picker's value for a BN/ReLU placement ("custom" outside Fig. 4)."""
    return lessons.unit_variant_of(bn_position, relu_position) or "custom"


def widget_values(cfg: ArchConfig) -> dict[str, Any]:
    """The settings widgets' values (by widget key) that show `cfg`."""
    values = {widget_key(k): format_int_list(v) if k in LIST_KEYS else v for k, v in cfg.to_dict().items()}
    values["unit_variant"] = unit_variant_key(cfg.bn_position, cfg.relu_position)
    return values


def config_from_widgets(values: Mapping[str, Any]) -> ArchConfig:
    """The config the widget values describe, within the server's limits."""
    data = {}
    for key in field_names():
        value = values.get(widget_key(key))
        data[key] = parse_int_list(key, value) if key in LIST_KEYS else value
    cfg = ArchConfig.from_dict(data)
    check_limits(cfg)
    return cfg


def config_from_link(params: Mapping[str, str]) -> tuple[str, ArchConfig, str | None]:
    """(preset, config, error) for a page address's query parameters.

    `?preset=NAME` starts from a preset and any config key overrides it. When the link is
    invalid, its preset (if that one is valid) or the default preset, and the message.
    """
    params = dict(params)
    base = explorer.preset(DEFAULT_PRESET)
    try:
        if "preset" in params:
            base = explorer.preset(params.pop("preset"))
        cfg = ArchConfig.from_query(params, base=base) if params else base
        check_limits(cfg)
    except ConfigError as exc:
        cfg, error = base, f"The link's settings were not used: {exc}"
    else:
        error = None
    return (base.name if base.name in explorer.PRESETS else DEFAULT_PRESET), cfg, error


def config_from_upload(name: str, size: int, data: bytes) -> ArchConfig:
    """A config from an uploaded JSON file, at most MAX_UPLOAD_BYTES."""
    if size > MAX_UPLOAD_BYTES or len(data) > MAX_UPLOAD_BYTES:
        raise ConfigError("file", name, f"a JSON config of at most {MAX_UPLOAD_BYTES // 1024} KiB")
    cfg = ArchConfig.from_json(data)
    check_limits(cfg)
    return cfg


def lesson_config(lesson: lessons.Lesson) -> ArchConfig:
    """The config a lesson's *Show me* button sets."""
    cfg = explorer.preset(lesson.preset)
    if lesson.changes:
        cfg = cfg.replace(**lesson.changes, name=f"{cfg.name}_{lesson.key}")
    return cfg
