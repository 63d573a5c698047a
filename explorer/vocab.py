"""Names shared by every view: the kinds of traced ops, their roles, the shortcut kinds and the
words each view writes for them.

Each name is defined here once; the trace records it, and the diagrams, tables, diffs, exported
code and CLI compare against these constants and print these words.
"""
from __future__ import annotations

from typing import Literal, get_args

NodeKind = Literal["input", "conv", "bn", "relu", "add", "maxpool", "avgpool", "flatten", "fc",
                   "zero_pad", "output"]
Role = Literal["stem", "pre", "branch", "shortcut", "add", "post", "head", "io"]
ShortcutKind = Literal["identity", "zero_pad", "projection", "none"]

NODE_KINDS: tuple[str, ...] = get_args(NodeKind)
ROLES: tuple[str, ...] = get_args(Role)
SHORTCUT_KINDS_ALL: tuple[str, ...] = get_args(ShortcutKind)
# The shortcuts of residual units (a plain block's "none" is not one of them).
SHORTCUT_KINDS: tuple[str, ...] = ("identity", "zero_pad", "projection")

# How each shortcut kind is written: a short word for counts and lists ("zero-pad"), and the
# paper's description for legends and the inspector.
SHORTCUT_WORDS: dict[str, str] = {"identity": "identity", "zero_pad": "zero-pad", "projection": "projection"}
SHORTCUT_NAMES: dict[str, str] = {"identity": "identity", "zero_pad": "option A: subsample + zero-pad",
                                  "projection": "1x1 projection W_s", "none": "none (plain block)"}
