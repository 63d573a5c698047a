"""The one error type a user ever sees for a bad setting."""
from __future__ import annotations

import re
from typing import Any

# An environment variable of this product, optionally with its value: "RESNET_EXPLORER_STORE=off".
ENV_VAR = re.compile(r"RESNET_EXPLORER_[A-Z0-9_]+(=[^\s),;]+)?")


class ConfigError(ValueError):
    """An invalid setting: names the key, the bad value and what would be valid."""

    def __init__(self, key: str, value: Any, valid: str, hint: str = "") -> None:
        self.key = key          # config key (or CLI/preset argument) at fault
        self.value = value      # the value that was given
        self.valid = valid      # what would be accepted
        self.hint = hint        # optional advice (e.g. "use shortcut B or C")
        super().__init__(f"{key}={_show(value)} is invalid: {self.reason}")

    @property
    def reason(self) -> str:
        """What would be valid, and the advice."""
        return self.valid + (f". {self.hint}" if self.hint else "")

    @property
    def without_key(self) -> str:
        """The message for a place that names the key already: "'A' is invalid: ..."."""
        return f"{_show(self.value)} is invalid: {self.reason}"


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


def for_browser(text: str) -> str:
    """A message as a browser user reads it: the server's environment variables are the operator's
    business (the command line names them), so a sentence pointing at one says the server's limit."""
    text = re.sub(r"[Tt]he limit is " + ENV_VAR.pattern, "This server sets the limit", text)
    text = re.sub(r"\s*\(" + ENV_VAR.pattern + r"\)", "", text)
    return ENV_VAR.sub("a setting of this server", text)


def _as_lists(value: Any) -> Any:
    """Tuples as lists, all the way down: a user wrote (and the config's JSON holds) lists."""
    if isinstance(value, (list, tuple)):
        return [_as_lists(v) for v in value]
    return value


def _show(value: Any, limit: int = 80) -> str:
    """Short printable form of a user value (never huge, never multi-line); a sequence as a list
    ("[0, 128, 256, 512]"), as the config's JSON and --set write it."""
    try:
        text = repr(_as_lists(value))
    except (RecursionError, ValueError):  # lists nested past the recursion limit; ints over 4300 digits
        text = f"<{type(value).__name__} too large to show>"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text
