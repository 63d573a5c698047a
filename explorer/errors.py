"""The one error type a user ever sees for a bad setting."""
from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """An invalid setting: names the key, the bad value and what would be valid."""

    def __init__(self, key: str, value: Any, valid: str, hint: str = "") -> None:
        self.key = key          # config key (or CLI/preset argument) at fault
        self.value = value      # the value that was given
        self.valid = valid      # what would be accepted
        self.hint = hint        # optional advice (e.g. "use shortcut B or C")
        msg = f"{key}={_show(value)} is invalid: {valid}"
        if hint:
            msg += f". {hint}"
        super().__init__(msg)


class LatencyError(RuntimeError):
    """A measurement that could not be made (no memory even at batch 1, compile failed)."""


def check_int(key: str, value: Any, lo: int, hi: int) -> int:
    """`value` if it is a whole number (not a bool) from lo to hi, else ConfigError."""
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ConfigError(key, value, f"an integer from {lo} to {hi}")
    return value


def check_choice(key: str, value: Any, allowed: tuple[Any, ...]) -> Any:
    """`value` if it is one of `allowed`, else ConfigError listing them."""
    if value not in allowed:
        raise ConfigError(key, value, "one of " + ", ".join(map(str, allowed)))
    return value


def _show(value: Any, limit: int = 80) -> str:
    """Short printable form of a user value (never huge, never multi-line)."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # lists nested past the recursion limit; ints over 4300 digits
        text = f"<{type(value).__name__} too large to show>"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text
