"""Cost figures read off the network's trace: activation memory, receptive field, depth, shortcuts.

Memory comes from the trace's one forward pass, observed op by op on the `meta` device (so a
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

from typing import Any, Iterable, Iterator

from torch import nn

from explorer.arch.config import ArchConfig
from explorer.errors import ConfigError, check_int
from explorer.limits import MAX_BATCH
from explorer.trace import Trace, kernel_stride_dilation, trace

from explorer.vocab import DTYPE_BYTES  # bytes per element; timing/devices.py maps the names to torch dtypes


def measure_costs(cfg: ArchConfig, batch: int = 1, dtype: str = "fp32") -> dict[str, Any]:
    """Memory, receptive field, depth and shortcut counts of `cfg` at `batch`.

    Args:
        cfg: the config; its trace (meta device, cached per config) holds every figure.
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
    t = trace(cfg)
    scale = DTYPE_BYTES[dtype] / 4  # the trace runs in fp32
    shortcuts = t.shortcuts
    return {
        "batch": batch,
        "dtype": dtype,
        "input_bytes": int(cfg.in_channels * cfg.input_size ** 2 * DTYPE_BYTES[dtype] * batch),
        "activation_bytes": int(t.activation_bytes * batch * scale),
        "peak_bytes": int(t.peak_bytes * batch * scale),
        "weight_bytes": (t.params + t.buffer_count) * DTYPE_BYTES[dtype],
        "receptive_field": trace_receptive_fields(t),
        "depth": t.depth,
        "residual_units": sum(shortcuts.values()),
        "shortcuts": shortcuts,
        "projections": shortcuts["projection"],
    }


def check_batch(batch: Any) -> int:
    return check_int("batch", batch, 1, MAX_BATCH)


# --- receptive field ------------------------------------------------------------------------

def trace_receptive_fields(t: Trace) -> list[dict[str, Any]]:
    """Receptive field at the output of the stem and of each stage, along the main path.

    The shortcut path is left out: the branch's field is the larger one (a 1x1 projection adds
    nothing but its stride, which the branch has too).
    """
    spatial = ((n.stage, n.kernel, n.stride, n.dilation) for n in t.nodes
               if n.kind in ("conv", "maxpool") and n.role != "shortcut")
    return _fields(spatial)


def receptive_fields(model: nn.Module) -> list[dict[str, Any]]:
    """The same for any module: its convs and pools in registration order, `downsample` left out."""
    stages = set(getattr(model, "stage_names", []))
    rows = []
    for path, mod in _main_path(model):
        top = path.split(".")[0]
        rows.append((top if top in stages else "", *kernel_stride_dilation(mod)))
    return _fields(rows)


def _fields(layers: Iterable[tuple[str, int, int, int]]) -> list[dict[str, Any]]:
    """For each (stage, kernel, stride, dilation) in order: r += (k - 1) * d * j, then j *= s,
    where j is the distance in input pixels between neighbouring outputs (the "jump")."""
    rf, jump, group = 1, 1, "stem"
    rows: list[dict[str, Any]] = []
    for stage, k, s, d in layers:
        # Layers before the first stage form the stem; any after the stages, the head.
        here = stage or ("stem" if group == "stem" else "head")
        if here != group:
            rows.append({"name": group, "receptive_field": rf, "jump": jump})
            group = here
        rf += (k - 1) * d * jump
        jump *= s
    rows.append({"name": group, "receptive_field": rf, "jump": jump})
    return rows



def _main_path(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Convs and pools in registration (= forward) order, shortcut modules left out."""
    for name, child in module.named_children():
        if name == "downsample":
            continue
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(child, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            yield path, child
        else:
            yield from _main_path(child, path)
