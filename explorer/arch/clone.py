"""A copy of a module built on `meta`, made without running its constructors again.

A deep net repeats one unit many times (ResNet-1202: 199 per stage). On meta there are no values
to initialise, so every later unit equal to one already built can be a copy of it: new module
objects with the same attributes, new parameter and buffer tensors of the same shapes, dtypes
and requires_grad (none shared with the original), and hook tables of their own (empty, as a new
module's are). That costs a fraction of running the module constructors again. The same goes for
the leaf modules inside the units built anew: a BN or conv with the arguments of one made before
in the same build is a copy of it (`Made`).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

_HOOK_TABLES = frozenset({
    "_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs", "_backward_hooks", "_backward_pre_hooks", "_state_dict_hooks",
    "_state_dict_pre_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks"})
# The copy's own tensors are no op of the network: torch-function modes (the meta build's) skip them.
_OWN_WORK = torch._C.DisableTorchFunction


class _Uncopyable(Exception):
    """A tensor not on meta, or a hook, somewhere in the module being copied."""


def clone_meta(module: nn.Module) -> nn.Module | None:
    """A fresh copy of `module`, whose tensors are all on meta; None when any is not (or when a
    hook sits on a part of it: a copy would not carry it)."""
    try:
        with _OWN_WORK():
            return _copy(module)
    except _Uncopyable:
        return None


class Made:
    """The modules of one build, by key: a module whose key matches one made before, where that
    one is all on meta, is a copy of it (`clone_meta`); anywhere else, made anew."""

    def __init__(self) -> None:
        self.first: dict = {}

    def get(self, key, make: Callable[[], nn.Module]) -> nn.Module:
        first = self.first.get(key)
        if first is not None and (copy := clone_meta(first)) is not None:
            return copy
        self.first[key] = module = make()
        return module

    def leaf(self, cls: type[nn.Module], *args, **kwargs) -> nn.Module:
        """`cls(*args, **kwargs)`, or a copy of the one made before with the same arguments."""
        return self.get((cls, args, tuple(kwargs.items())), lambda: cls(*args, **kwargs))


def _copy(module: nn.Module) -> nn.Module:
    new = object.__new__(type(module))
    state = {}
    for key, value in module.__dict__.items():
        if key == "_modules":
            value = {k: None if m is None else _copy(m) for k, m in value.items()}
        elif key == "_parameters":
            value = {k: None if p is None else nn.Parameter(_meta(p), p.requires_grad) for k, p in value.items()}
        elif key == "_buffers":
            value = {k: None if b is None else torch.empty(_meta(b).shape, dtype=b.dtype, device="meta")
                     for k, b in value.items()}  # (empty_like runs a Python decomposition on meta)
        elif key in _HOOK_TABLES:
            if value:
                raise _Uncopyable(key)
            value = type(value)()
        elif isinstance(value, (dict, list, set)):  # name lists and the like: a copy of their own
            value = type(value)(value)
        state[key] = value
    new.__dict__.update(state)
    return new


def _meta(t: torch.Tensor) -> torch.Tensor:
    if not t.is_meta:
        raise _Uncopyable("a tensor not on meta")
    return t
