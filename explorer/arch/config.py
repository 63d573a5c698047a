"""ArchConfig: the whole description of one network variant, validated in one place."""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, fields
from typing import Any, Literal, Mapping, get_args, get_origin

from explorer.arch.plan import block_length, make_plan
from explorer.errors import ConfigError, check_int
from explorer.limits import (MAX_CLASSES, MAX_DEPTH, MAX_IN_CHANNELS, MAX_INPUT, MAX_NAME, MAX_SPAN,
                             MAX_STAGES, MAX_WIDTH)

Block = Literal["basic", "bottleneck"]
BNPosition = Literal["after_conv", "before_conv", "after_add", "none"]
ReLUPosition = Literal["after_add", "before_add", "before_conv"]
Shortcut = Literal["A", "B", "C"]
StrideOn = Literal["3x3", "first"]
Stem = Literal["imagenet", "cifar"]
StemType = Literal["single", "deep", "deep_tiered"]
Attention = Literal["none", "se", "eca"]


@dataclass(frozen=True)
class ArchConfig:
    """One residual-network variant. Frozen and hashable: it is the cache key everywhere."""

    name: str = "resnet18"                      # label shown in tables and file names
    block: Block = "basic"                      # basic = [3x3, 3x3]; bottleneck = [1x1, 3x3, 1x1 x4]
    depths: tuple[int, ...] = (2, 2, 2, 2)      # blocks per stage
    widths: tuple[int, ...] = (64, 128, 256, 512)  # stage width ("planes"); bottleneck out = 4x
    skip_span: int | None = None                # weight layers per shortcut; None = block length; 0 = plain
    bn_position: BNPosition = "after_conv"      # where BatchNorm sits
    relu_position: ReLUPosition = "after_add"   # where the ReLU sits
    shortcut: Shortcut = "B"                    # paper option A (pad), B (project on change), C (always)
    stride_on: StrideOn = "3x3"                 # stage's stride-2 layer: the 3x3 (v1.5) or the first conv
    stem: Stem = "imagenet"                     # 7x7/2 conv + 3x3/2 max-pool, or a 3x3/1 conv
    stem_width: int = 64                        # channels out of the stem
    groups: int = 1                             # ResNeXt cardinality (bottleneck only)
    width_per_group: int = 64                   # ResNeXt width per group (bottleneck only)
    in_channels: int = 3                        # input image channels
    num_classes: int = 1000                     # classifier outputs
    input_size: int = 224                       # square input side, pixels
    zero_init_residual: bool = False            # zero the last BN gamma inside each branch
    stem_type: StemType = "single"              # one conv, or three 3x3 convs (timm's deep stems)
    avg_down: bool = False                      # ResNet-D: 2x2 average pool before a strided projection
    attention: Attention = "none"               # channel attention on each branch: SE or ECA

    def __post_init__(self) -> None:
        for key in ("depths", "widths"):
            value = getattr(self, key)
            if isinstance(value, list):
                object.__setattr__(self, key, tuple(value))
        _validate_fields(self)
        if self.skip_span == block_length(self.block):
            # One spelling per network: the block's own length is written None ("the block's
            # length", as in the presets), so equal networks are equal configs and keys.
            object.__setattr__(self, "skip_span", None)
        # Structural checks (shapes, option A, input size) live with the layer plan. Size limits
        # that protect a shared server are not the value's business: see explorer/limits.py.
        make_plan(self)

    # -- conversions ---------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ArchConfig":
        """Validated config from a plain dict (JSON object); missing keys take defaults."""
        if not isinstance(data, Mapping):
            raise ConfigError("config", data, "a JSON object (mapping of config keys to values)")
        names = field_names()
        for key in data:
            if key not in names:
                shown = key if isinstance(key, str) and key.isidentifier() else repr(key)
                raise ConfigError(shown, data[key], f"unknown key; valid keys are {', '.join(names)}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (lists, not tuples)."""
        out = dataclasses.asdict(self)
        out["depths"] = list(self.depths)
        out["widths"] = list(self.widths)
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> "ArchConfig":
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", "replace")  # shown as text, never as a bytes literal
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("config", _clip(text), f"valid JSON (line {exc.lineno}, column {exc.colno}: "
                                                      f"{exc.msg})") from None
        except (TypeError, ValueError, RecursionError) as exc:
            raise ConfigError("config", _clip(text), f"valid JSON ({exc})") from None
        return cls.from_dict(data)

    def to_query(self) -> dict[str, str]:
        """URL query parameters: the same keys, each value as text (see parse_value)."""
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in self.to_dict().items()}

    @classmethod
    def from_query(cls, params: Mapping[str, str], base: "ArchConfig | None" = None) -> "ArchConfig":
        """Config from URL query parameters, over `base` (defaults where absent)."""
        return with_updates(base or cls(), {k: parse_value(k, v) for k, v in params.items()})

    def replace(self, **changes: Any) -> "ArchConfig":
        """A validated copy with some keys changed."""
        return with_updates(self, changes)

    def arch_key(self) -> str:
        """What decides "the same network": every key but the name, as canonical JSON.

        Stable across processes and versions of this file (sorted keys), so it can key stored
        results; two configs build the same network exactly when their keys are equal.
        """
        data = self.to_dict()
        del data["name"]
        for key, default in LATER_KEYS.items():
            # Keys added after results were first stored are left out at their defaults, so a
            # network that existed before them keeps the key its stored results carry.
            if data[key] == default:
                del data[key]
        return json.dumps(data, sort_keys=True, separators=(",", ":"))


def field_names() -> list[str]:
    return [f.name for f in fields(ArchConfig)]


def choices(key: str) -> tuple[Any, ...]:
    """The allowed values of a Literal-typed key (feeds the UI's select boxes)."""
    hint = _hints()[key]
    return get_args(hint) if get_origin(hint) is Literal else ()


def with_updates(cfg: ArchConfig, changes: Mapping[str, Any]) -> ArchConfig:
    """`cfg` with `changes` applied and validated; unknown keys raise ConfigError."""
    data = cfg.to_dict()
    data.update(changes)
    return ArchConfig.from_dict(data)


def parse_value(key: str, text: str) -> Any:
    """Value of a `key=text` setting: JSON when it parses, else the plain string.

    Text keys (`name`, the choice keys) stay strings unless given as a quoted JSON string,
    so a name such as `123` or `true` is kept as written.
    """
    if not isinstance(text, str):
        return text
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if key in _TEXT_KEYS and not isinstance(value, str):
        return text
    return value


# -- validation ------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)  # read once: resolving the annotations costs about 1 ms a call
def _hints() -> dict[str, Any]:
    import typing

    return typing.get_type_hints(ArchConfig)


INT_BOUNDS = {
    "stem_width": (1, MAX_WIDTH),
    "groups": (1, MAX_WIDTH),
    "width_per_group": (1, MAX_WIDTH),
    "in_channels": (1, MAX_IN_CHANNELS),
    "num_classes": (1, MAX_CLASSES),
    "input_size": (1, MAX_INPUT),
}
# In field order: with several bad keys, the first is the one named, on every run.
_CHOICE_KEYS = ("block", "bn_position", "relu_position", "shortcut", "stride_on", "stem", "stem_type",
                "attention")
# Keys that arch_key() leaves out at these (default) values: see there.
LATER_KEYS = {"stem_type": "single", "avg_down": False, "attention": "none"}
_TEXT_KEYS = ("name", *_CHOICE_KEYS)


def _is_text(text: str) -> bool:
    """Encodable text without terminal escapes or other control characters (line breaks and tabs allowed)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return all(ch.isprintable() or ch in "\n\r\t" for ch in text)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int_list(key: str, value: Any, lo: int, hi: int) -> None:
    valid = f"a list of 1 to {MAX_STAGES} integers, each from {lo} to {hi}"
    if not isinstance(value, tuple) or not 1 <= len(value) <= MAX_STAGES:
        raise ConfigError(key, value, valid)
    for item in value:
        if not _is_int(item) or not lo <= item <= hi:
            raise ConfigError(key, value, valid)


def _validate_fields(cfg: ArchConfig) -> None:
    if not isinstance(cfg.name, str) or not 1 <= len(cfg.name) <= MAX_NAME or not _is_text(cfg.name):
        raise ConfigError("name", cfg.name, f"a text label of 1 to {MAX_NAME} characters, without control "
                                            "characters (line breaks and tabs are allowed)")
    for key in _CHOICE_KEYS:
        value, allowed = getattr(cfg, key), choices(key)
        if not isinstance(value, str) or value not in allowed:
            raise ConfigError(key, value, "one of " + ", ".join(allowed))
    _check_int_list("depths", cfg.depths, 1, MAX_DEPTH)
    _check_int_list("widths", cfg.widths, 1, MAX_WIDTH)
    if len(cfg.widths) != len(cfg.depths):
        raise ConfigError(
            "widths", list(cfg.widths),
            f"one width per stage: depths has {len(cfg.depths)} stages, widths has {len(cfg.widths)}",
        )
    if cfg.skip_span is not None:
        check_int("skip_span", cfg.skip_span, 0, MAX_SPAN)
    for key, (lo, hi) in INT_BOUNDS.items():
        check_int(key, getattr(cfg, key), lo, hi)
    for key in ("zero_init_residual", "avg_down"):
        if not isinstance(getattr(cfg, key), bool):
            raise ConfigError(key, getattr(cfg, key), "true or false")
    if cfg.block == "basic" and (cfg.groups != 1 or cfg.width_per_group != 64):
        key = "groups" if cfg.groups != 1 else "width_per_group"
        raise ConfigError(
            key, getattr(cfg, key),
            "basic blocks support only groups=1 and width_per_group=64",
            "Use block=bottleneck for ResNeXt and wide variants",
        )
    _validate_timm_keys(cfg)


def _validate_timm_keys(cfg: ArchConfig) -> None:
    """The combinations the deep stem and the average-pool shortcut need."""
    if cfg.stem_type != "single" and (cfg.stem_width < 8 or cfg.stem_width % 2):
        raise ConfigError(
            "stem_width", cfg.stem_width,
            f"an even number of at least 8 with stem_type={cfg.stem_type} (its 3x3 convs have"
            " stem_width/2 channels, the tiered stem's first 3*(stem_width/8))",
            "Use stem_type=single for a narrower or odd stem",
        )
    if cfg.avg_down and cfg.shortcut == "A":
        raise ConfigError(
            "avg_down", True,
            "false with shortcut A: option A has no projection to average-pool before",
            "Use shortcut B or C (1x1 projection) with avg_down",
        )
    if cfg.avg_down and cfg.skip_span == 0:
        raise ConfigError(
            "avg_down", True,
            "false with skip_span 0: a plain network has no shortcut to average-pool in",
            "Use a skip_span of 1 or more (or the block's length) with avg_down",
        )


def parse_int_list(key: str, text: Any) -> Any:
    """A depths/widths value typed as text ("3, 4, 6, 3" or "[3,4,6,3]"); other values pass through."""
    if not isinstance(text, str):
        return text
    body = text.strip().removeprefix("[").removesuffix("]")
    try:
        return [int(part) for part in body.replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise ConfigError(key, text, "comma-separated whole numbers, e.g. 3, 4, 6, 3") from None


def format_int_list(values: Any) -> str:
    """The text form of a depths/widths list, as typed in a text box."""
    return ", ".join(str(v) for v in values)


def _clip(text: Any, limit: int = 60) -> Any:
    if isinstance(text, (str, bytes)) and len(text) > limit:
        return text[:limit]
    return text
