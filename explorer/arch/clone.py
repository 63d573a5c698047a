"""A copy of a module built on `meta`, made without running its constructors again.

A deep net repeats one unit many times (ResNet-1202: 199 per stage). On meta there are no values
to initialise, so every later unit equal to one already built can be a copy of it: new module
objects with the same attributes, new parameter and buffer tensors of the same shapes, dtypes
and requires_grad (none shared with the original), and hook tables of their own (empty, as a new
module's are). That costs a fraction of running the module constructors again.
"""
from __future__ import annotations

import torch
from torch import nn

_HOOK_TABLES = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_backward_hooks",
                "_backward_pre_hooks", "_state_dict_hooks", "_state_dict_pre_hooks",
                "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")


def clone_meta(module: nn.Module) -> nn.Module | None:
    """A fresh copy of `module`, whose tensors are all on meta; None when any is not (or when a
    hook sits on a part of it: a copy would not carry it)."""
    for m in module.modules():
        if any(getattr(m, name, None) for name in _HOOK_TABLES):
            return None
        tensors = [*m._parameters.values(), *m._buffers.values()]  # noqa: SLF001
        if not all(t is None or t.is_meta for t in tensors):
            return None
    return _copy(module)


def _copy(module: nn.Module) -> nn.Module:
    new = object.__new__(type(module))
    state = {}
    for key, value in module.__dict__.items():
        if key == "_modules":
            value = {k: None if m is None else _copy(m) for k, m in value.items()}
        elif key == "_parameters":
            value = {k: None if p is None else nn.Parameter(p, p.requires_grad) for k, p in value.items()}
        elif key == "_buffers":
            value = {k: None if b is None else torch.empty(b.shape, dtype=b.dtype, device="meta")
                     for k, b in value.items()}  # (empty_like runs a Python decomposition on meta)
        elif isinstance(value, (dict, list, set)):  # hook tables, name lists: a copy of their own
            value = type(value)(value)
        state[key] = value
    new.__dict__.update(state)
    return new
