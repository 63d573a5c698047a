"""build_meta(cfg): the network on the `meta` device, built without the work meta tensors skip.

A meta tensor has a shape and no values, so initialising one (Kaiming draws, BN's ones and
zeros) does nothing but cost time: about half of a meta build. `build_meta` runs the ordinary
`build_model` under a torch-function mode that puts new tensors on meta and returns the fills and
random draws of meta tensors at once. The mode lives on the calling thread only (PyTorch keeps
mode stacks per thread), so other threads' builds and forward passes are untouched, and the
modules are the same classes with the same shapes, parameters and buffers as
`with torch.device("meta"): build_model(cfg)` gives.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from explorer.arch.builder import ResNet, build_model
from explorer.arch.config import ArchConfig

_init = nn.init
# Tensor constructors that take the default device (those a module's __init__ calls).
_CONSTRUCTORS = frozenset({
    torch.empty, torch.zeros, torch.ones, torch.full, torch.tensor, torch.as_tensor, torch.arange,
    torch.empty_strided, torch.rand, torch.randn, torch.randint, torch.eye, torch.linspace,
    torch.scalar_tensor,
})
# Writes of values into an existing tensor: nothing to do on meta. Each returns its tensor.
_FILLS = frozenset({
    torch.Tensor.zero_, torch.Tensor.fill_, torch.Tensor.uniform_, torch.Tensor.normal_,
    torch.Tensor.copy_, _init.kaiming_uniform_, _init.kaiming_normal_, _init.uniform_, _init.normal_,
    _init.trunc_normal_, _init.xavier_uniform_, _init.xavier_normal_, _init.constant_, _init.ones_,
    _init.zeros_, _init.orthogonal_,
})
_GRAD_SWITCH = torch._C._set_grad_enabled


class MetaBuild(TorchFunctionMode):
    """New tensors on meta; value writes into meta tensors skipped."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is _GRAD_SWITCH:
            return func(*args, **kwargs)
        if func in _FILLS:
            t = args[0] if args else kwargs.get("tensor")  # nn.init passes it by keyword
            if isinstance(t, torch.Tensor) and t.is_meta:
                return t
        if func in _CONSTRUCTORS and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


def build_meta(cfg: ArchConfig) -> ResNet:
    """`build_model(cfg)` with every parameter and buffer on meta, uninitialised (they hold no
    values either way)."""
    with MetaBuild():
        model = build_model(cfg)
    tensors = (t for m in model.modules() for t in (*m._parameters.values(), *m._buffers.values()))  # noqa: SLF001
    if all(t is None or t.is_meta for t in tensors):
        return model
    with torch.device("meta"):  # a module that made a tensor some other way: the plain route
        return build_model(cfg)


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside (as it was on exit). Building or tracing a deep net
    allocates thousands of objects and frees none, so the collector's passes over a growing heap
    find nothing and cost up to half the time. Reference counting still frees every tensor."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
