"""The trace's memory and flop watch: a dispatch mode on the tracing thread that counts, per aten
op, the bytes of fresh outputs and flop_counter's flops, and the bytes alive at once.

`trace_memory` runs any model once under it (on meta nothing is computed). The trace
(explorer/trace.py) uses the same watch and counts a stand-in's one fresh tensor itself
(`fresh`), with the watch muted while the stand-in makes it.
"""
from __future__ import annotations

import weakref
from typing import Any, Iterator

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

_NO_DISPATCH = torch._C._DisableTorchDispatch
_COMPOSITES = {torch.ops.aten.conv1d, torch.ops.aten.conv2d, torch.ops.aten.conv3d, torch.ops.aten.linear,
               torch.ops.aten.matmul}


class Watch(TorchDispatchMode):
    """Counts, per aten op, the bytes of fresh outputs and flop_counter's flops, and the bytes
    alive at once (a tensor's bytes are freed when the forward drops it)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = self.live = self.peak = self.fresh_ops = 0
        self.pending_bytes = self.pending_flops = 0  # since the last node was recorded
        self.muted = False  # while True, ops are not counted (a stand-in's or a replayed unit's output)
        self._alive: dict[int, tuple[weakref.ref, int]] = {}  # each tracked tensor's ref and bytes, by id(ref)

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # Nothing is compiled under this mode (meta tensors only). Left True, PyTorch wraps
        # __torch_dispatch__ in dynamo.disable, importing torch._dynamo (about 1 s) at the first op.
        return False

    def track(self, t: torch.Tensor) -> None:
        nbytes = t.numel() * t.element_size()
        self.live += nbytes
        self.peak = max(self.peak, self.live)
        ref = weakref.ref(t, self._free)  # called when the forward drops `t`
        self._alive[id(ref)] = ref, nbytes

    def fresh(self, t: torch.Tensor) -> None:
        """Count `t` as a fresh output of the op being recorded (and alive until dropped)."""
        nbytes = t.numel() * t.element_size()
        self.total += nbytes
        self.pending_bytes += nbytes
        self.fresh_ops += 1
        self.track(t)

    def _free(self, ref: weakref.ref) -> None:
        self.live -= self._alive.pop(id(ref))[1]

    def take(self) -> tuple[int, int]:
        out = self.pending_bytes, self.pending_flops
        self.pending_bytes = self.pending_flops = 0
        return out

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.muted:
            return func(*args, **kwargs)
        count = flop_registry.get(func._overloadpacket)
        if func._overloadpacket in _COMPOSITES:
            # Without autograd, conv2d and linear arrive whole: see their parts, as
            # FlopCounterMode does, so that the counted op (convolution, addmm) is seen. Only
            # these: max_pool2d's parts would add an indices tensor inference never makes.
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        out = func(*args, **kwargs)
        if count is not None:
            self.pending_flops += count(*args, **kwargs, out_val=out)
        returns = func._schema.returns  # views and in-place ops alias an input: no new memory
        if returns and returns[0].alias_info is None:
            for t in _tensors(out):
                self.fresh(t)
        return out


def blank(x: torch.Tensor, shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
    """A fresh meta tensor of `shape` with `x`'s dtype, made out of sight of the dispatch modes
    (this watch included): the trace's own making, which its caller counts (`Watch.fresh`)."""
    with _NO_DISPATCH():
        return torch.empty(shape, dtype=x.dtype, device="meta")


def _tensors(out: Any) -> Iterator[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, (tuple, list)):
        for item in out:
            yield from _tensors(item)


def trace_memory(model: nn.Module, input_shape: tuple[int, ...], device: str | torch.device = "meta",
                 dtype: torch.dtype = torch.float32) -> dict[str, int]:
    """Fresh-output and peak-live bytes of one inference pass of any `model` at `input_shape`
    (the whole batch), on the device its weights are on; on meta nothing is computed."""
    with torch.inference_mode():
        watch = Watch()
        x = torch.empty(input_shape, device=device, dtype=dtype)  # (B, C, H, W)
        with watch:
            watch.track(x)
            y = model(x)
        out_bytes = y.numel() * y.element_size()
        del x, y
    return {"activation_bytes": watch.total, "peak_bytes": watch.peak, "output_bytes": out_bytes,
            "fresh_ops": watch.fresh_ops}
