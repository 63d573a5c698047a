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


def _show(value: Any, limit: int = 80) -> str:
    """Short printable form of a user value (never huge, never multi-line)."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # lists nested past the recursion limit; ints over 4300 digits
        text = f"<{type(value).__name__} too large to show>"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text
