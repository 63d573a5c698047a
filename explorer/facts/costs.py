"""Cost figures read off the built module: activation memory, receptive field, depth, shortcuts.

Memory comes from one forward pass observed op by op (on the `meta` device for a config, so a
full-size network costs no memory): every op that returns a fresh tensor adds its size, views
and in-place ops add nothing. Two figures come out of it:

* `activation_bytes`: the sum of all fresh outputs, i.e. what a training step keeps for
  backward (roughly) and an upper bound for inference;
* `peak_bytes`: the most bytes alive at once during an inference pass (input included),
  tracked by freeing each tensor's bytes when the forward drops it.

Both are per image at batch 1 and scale linearly with the batch (every tensor in these
networks has the batch as its leading dimension).
"""
from __future__ import annotations

import threading
import weakref
from functools import lru_cache
from typing import Any, Iterator

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from explorer.facts.summary import build_meta_model, count_params, count_shortcuts, weight_depth
from explorer.arch.builder import build_model
from explorer.arch.config import ArchConfig
from explorer.errors import ConfigError, check_int

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
MAX_BATCH = 4096
# Modules on the shortcut path: the receptive field follows the main (branch) path, whose
# field is the larger one (a 1x1 projection adds nothing but its stride, which the branch has too).
_SHORTCUT_NAMES = ("downsample",)


class _MemoryWatch(TorchDispatchMode):
    """Counts fresh op outputs and the bytes alive at once, freeing a tensor's bytes when it dies."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0        # bytes of every fresh output
        self.live = 0         # bytes alive right now
        self.peak = 0         # most bytes alive at once
        self.fresh_ops = 0    # ops that returned a fresh tensor

    def track(self, t: torch.Tensor) -> None:
        """Count `t` as alive until it is garbage collected."""
        nbytes = t.numel() * t.element_size()
        self.live += nbytes
        self.peak = max(self.peak, self.live)
        weakref.finalize(t, self._free, nbytes)

    def _free(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        # Views and in-place ops alias an input (their schema says so): no new memory.
        returns = func._schema.returns
        if returns and returns[0].alias_info is None:
            for t in _tensors(out):
                self.total += t.numel() * t.element_size()
                self.fresh_ops += 1
                self.track(t)
        return out


def _tensors(out: Any) -> Iterator[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, (tuple, list)):
        for item in out:
            yield from _tensors(item)


_trace_lock = threading.Lock()  # a dispatch mode is process-global: one observed pass at a time


def trace_memory(model: nn.Module, input_shape: tuple[int, ...], device: str | torch.device = "meta",
                 dtype: torch.dtype = torch.float32) -> dict[str, int]:
    """Fresh-output and peak-live bytes of one inference pass of `model` at `input_shape`.

    Runs on whatever device the model's weights are on (`device` is where the input goes);
    on meta nothing is computed. Returns bytes for the whole given batch.
    """
    with _trace_lock, torch.inference_mode():
        watch = _MemoryWatch()
        x = torch.empty(input_shape, device=device, dtype=dtype)  # (B, C, H, W)
        with watch:
            watch.track(x)
            y = model(x)
        out_bytes = y.numel() * y.element_size()
        del x, y
    return {
        "activation_bytes": watch.total,
        "peak_bytes": watch.peak,
        "output_bytes": out_bytes,
        "fresh_ops": watch.fresh_ops,
    }


def receptive_fields(model: nn.Module) -> list[dict[str, Any]]:
    """Receptive field at the output of the stem and of each stage, walking the main path.

    For each conv / pool in order: r += (k - 1) * dilation * j, then j *= stride, where j is
    the distance in input pixels between neighbouring outputs (the "jump").
    """
    stages = list(getattr(model, "stage_names", []))
    rf, jump = 1, 1
    rows: list[dict[str, Any]] = []
    group = "stem"
    for name, mod in _main_path(model):
        top = name.split(".")[0]
        # Ops before the first stage form the stem; any spatial op after the stages, the head.
        here = top if top in stages else ("stem" if group == "stem" else "head")
        if here != group:
            rows.append(_rf_row(group, rf, jump))
            group = here
        k, s, d = _kernel_stride_dilation(mod)
        rf += (k - 1) * d * jump
        jump *= s
    rows.append(_rf_row(group, rf, jump))
    return rows


def _rf_row(name: str, rf: int, jump: int) -> dict[str, Any]:
    return {"name": name, "receptive_field": rf, "jump": jump}


def _is_spatial(mod: nn.Module) -> bool:
    # Adaptive (global) pooling is left out: it sees the whole map whatever the field.
    return isinstance(mod, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))


def _main_path(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Convs and pools in registration (= forward) order, shortcut modules left out."""
    for name, child in module.named_children():
        if name in _SHORTCUT_NAMES:
            continue
        path = f"{prefix}.{name}" if prefix else name
        if _is_spatial(child):
            yield path, child
        else:
            yield from _main_path(child, path)


def _kernel_stride_dilation(mod: nn.Module) -> tuple[int, int, int]:
    def first(v: Any) -> int:
        return int(v[0]) if isinstance(v, (tuple, list)) else int(v)
    stride = mod.stride if mod.stride is not None else mod.kernel_size  # pools default to k
    dilation = getattr(mod, "dilation", 1)
    return first(mod.kernel_size), first(stride), first(dilation)


@lru_cache(maxsize=64)
def _costs_per_image(cfg: ArchConfig) -> dict[str, Any]:
    """Everything that does not depend on batch or dtype, at batch 1 in fp32 (cached)."""
    model = build_meta_model(cfg).eval()
    mem = trace_memory(model, (1, cfg.in_channels, cfg.input_size, cfg.input_size))
    shortcuts = count_shortcuts(model)
    return {
        "input_bytes": cfg.in_channels * cfg.input_size * cfg.input_size * 4,
        "activation_bytes": mem["activation_bytes"],
        "peak_bytes": mem["peak_bytes"],
        "param_count": count_params(model),
        "buffer_count": sum(b.numel() for b in model.buffers() if b.is_floating_point()),
        "receptive_field": receptive_fields(model),
        "depth": weight_depth(model),
        "residual_units": sum(shortcuts.values()),
        "shortcuts": shortcuts,
    }


def measure_costs(cfg: ArchConfig, batch: int = 1, dtype: str = "fp32") -> dict[str, Any]:
    """Memory, receptive field, depth and shortcut counts of `cfg` at `batch`.

    Args:
        cfg: the config; the network is built and traced on the meta device (cached per config).
        batch: images per forward pass; memory figures scale with it.
        dtype: "fp32", "bf16" or "fp16": bytes per activation element.

    Returns:
        A JSON-ready dict: `activation_bytes` (sum of the fresh tensors of one forward pass),
        `peak_bytes` (most bytes alive at once in inference, input included), `weight_bytes`,
        `receptive_field` (one row per stem/stage: `name`, `receptive_field` in input pixels,
        `jump`), `depth` (weight layers on the main path), `residual_units`, `shortcuts`
        (identity / zero_pad / projection counts), `projections`.
    """
    if not isinstance(cfg, ArchConfig):
        raise ConfigError("config", type(cfg).__name__, "an ArchConfig")
    check_batch(batch)
    if dtype not in DTYPE_BYTES:
        raise ConfigError("dtype", dtype, "one of " + ", ".join(DTYPE_BYTES))
    base = _costs_per_image(cfg)
    scale = DTYPE_BYTES[dtype] / 4
    weights = (base["param_count"] + base["buffer_count"]) * DTYPE_BYTES[dtype]
    out: dict[str, Any] = {
        "batch": batch,
        "dtype": dtype,
        "input_bytes": int(base["input_bytes"] * batch * scale),
        "activation_bytes": int(base["activation_bytes"] * batch * scale),
        "peak_bytes": int(base["peak_bytes"] * batch * scale),
        "weight_bytes": weights,
        "receptive_field": [dict(r) for r in base["receptive_field"]],
        "depth": base["depth"],
        "residual_units": base["residual_units"],
        "shortcuts": dict(base["shortcuts"]),
        "projections": base["shortcuts"]["projection"],
    }
    return out


def check_batch(batch: Any) -> int:
    return check_int("batch", batch, 1, MAX_BATCH)
