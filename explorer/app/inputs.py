"""Configs from the places a user gives them (widgets, the page address, an upload): plain
functions, no streamlit. Each validates and applies the server's size limits (`check_limits`),
raising ConfigError with the key to show it under.
"""
from __future__ import annotations

from typing import Any, Mapping

import explorer
from explorer import ArchConfig, ConfigError, lessons
from explorer.arch.config_file import config_from_bytes
from explorer.arch.config import choices, field_names, format_int_list, parse_int_list
from explorer.arch.plan import block_length, effective_span
from explorer.arch.presets import (CHANGES_SHOWN, describe_changes, display_name,  # noqa: F401 (re-exported)
                                   matching_preset, preset_changes)
from explorer.facts.limits import check_limits
from explorer.limits import MAX_CONFIG_BYTES, MAX_NAME

DEFAULT_PRESET = "resnet50"
WIDGET_PREFIX = "cfg_"          # widget key of a config setting: cfg_<config key>
LIST_KEYS = ("depths", "widths")  # typed as text: "3, 4, 6, 3"
CUSTOM = "custom"               # the preset box's value when the settings match no preset


def widget_key(key: str) -> str:
    return WIDGET_PREFIX + key


def unit_variant_key(bn_position: str, relu_position: str) -> str:
    """The unit-variant picker's value for a BN/ReLU placement ("custom" outside Fig. 4)."""
    return lessons.unit_variant_of(bn_position, relu_position) or "custom"


def widget_values(cfg: ArchConfig) -> dict[str, Any]:
    """The settings widgets' values (by widget key) that show `cfg`."""
    values = {widget_key(k): format_int_list(v) if k in LIST_KEYS else v for k, v in cfg.to_dict().items()}
    values[widget_key("skip_span")] = effective_span(cfg)  # a number, so its -/+ always work
    values["unit_variant"] = unit_variant_key(cfg.bn_position, cfg.relu_position)
    return values


def config_from_widgets(values: Mapping[str, Any], changed: str | None = None) -> ArchConfig:
    """The config the widget values describe, within the server's limits.

    A size limit is a property of the whole network, so its ConfigError is raised against the
    setting the user `changed` last (depths made 200 deep blames depths, not widths).
    """
    data = {}
    for key in field_names():
        value = values.get(widget_key(key))
        data[key] = parse_int_list(key, value) if key in LIST_KEYS else value
    cfg = ArchConfig.from_dict(data)
    try:
        check_limits(cfg)
    except ConfigError as exc:
        if changed in field_names() and changed not in ("name", exc.key):
            value = getattr(cfg, changed)
            raise ConfigError(changed, list(value) if isinstance(value, tuple) else value, exc.valid, exc.hint) from None
        raise
    return cfg


def follow_block(last: ArchConfig, block: str) -> int | None:
    """The skip span to show after the block changes to `block`: the new block's length when the
    span followed the old block's (a basic net's span 2 becomes a bottleneck's 3), else None (keep)."""
    if last.skip_span is None and block in choices("block"):
        return block_length(block)
    return None


def preset_choice(cfg: ArchConfig) -> str:
    """The preset box's value for `cfg`: the preset it is, or "custom"."""
    return matching_preset(cfg) or CUSTOM


def distinct_name(cfg: ArchConfig, taken: set[str]) -> str:
    """A name for `cfg` that is not in `taken` and tells the truth: a changed preset is named with
    its changes ("resnet34 (skip_span 1)"), any other by its own name; numbered when that is taken
    ("resnet34 #2", "resnet34 (skip_span 1) #2")."""
    labelled = display_name(cfg)
    base = labelled if len(labelled) <= MAX_NAME - 4 else cfg.name
    for name in [base, *(f"{base} #{n}" for n in range(2, len(taken) + 3))]:
        if name not in taken and len(name) <= MAX_NAME:
            return name
    return next(f"{cfg.name[:MAX_NAME - 8]} #{n}" for n in range(2, len(taken) + 3)
                if f"{cfg.name[:MAX_NAME - 8]} #{n}" not in taken)


def config_from_link(params: Mapping[str, str], repeated: Mapping[str, int] | None = None,
                     ) -> tuple[str, ArchConfig, str | None]:
    """(preset box value, config, error) for a page address's query parameters.

    `?preset=NAME` starts from a preset and any config key overrides it. When the link is
    invalid, its preset (if that one is valid) or the default preset, and a message that names
    each bad parameter: every key given more than once (`repeated`: key -> times), every value
    that is invalid on its own, else the combination's one error. The preset box shows the preset
    the config is, or "custom" (a changed resnet34 is not resnet34).
    """
    params = dict(params)
    problems = [f"{key} is given {n} times: give it once" for key, n in (repeated or {}).items()]
    base = explorer.preset(DEFAULT_PRESET)
    if "preset" in params:
        try:
            base = explorer.preset(params.pop("preset"))
        except ConfigError as exc:
            problems.append(str(exc))
    problems += [str(exc) for exc in link_errors(params, base)]
    if problems:
        return preset_choice(base), base, "The link's settings were not used: " + "\n".join(problems)
    cfg = ArchConfig.from_query(params, base=base) if params else base
    return preset_choice(cfg), cfg, None


def link_errors(params: Mapping[str, str], base: ArchConfig) -> list[ConfigError]:
    """The errors of a link's config parameters over `base`, none when they make a valid config.

    Each parameter invalid on its own is named, unless the link's other settings make it valid
    (groups=32 on a basic preset, with block=bottleneck); then the error of the rest, if any."""
    whole = query_error(params, base)
    if whole is None:
        return []
    alone = {key: query_error({key: text}, base) for key, text in params.items()}
    rest = {key: text for key, text in params.items() if alone[key] is None}
    bad = [exc for key, exc in alone.items() if exc is not None and query_error({**rest, key: params[key]}, base)]
    rest_error = query_error(rest, base)
    errors = bad + ([rest_error] if rest_error is not None else [])
    return errors or [whole]


def query_error(params: Mapping[str, str], base: ArchConfig) -> ConfigError | None:
    """The ConfigError of query parameters over `base` (size limits included), or None."""
    try:
        check_limits(ArchConfig.from_query(params, base=base) if params else base)
    except ConfigError as exc:
        return exc
    return None


def config_from_upload(name: str, size: int, data: bytes) -> ArchConfig:
    """A config from an uploaded JSON file, at most MAX_CONFIG_BYTES, read as the command line reads
    its FILE.json (config_file.py): every failure is one ConfigError naming the file."""
    if size > MAX_CONFIG_BYTES:
        raise ConfigError("file", name, f"a JSON config of at most {MAX_CONFIG_BYTES // 1024} KiB")
    cfg = config_from_bytes("file", name, data)
    check_limits(cfg)
    return cfg


def lesson_config(lesson: lessons.Lesson) -> ArchConfig:
    """The config a lesson's *Show me* button sets."""
    cfg = explorer.preset(lesson.preset)
    if lesson.changes:
        cfg = cfg.replace(**lesson.changes, name=f"{cfg.name}_{lesson.key}")
    return cfg
