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

from typing import Any

from explorer.arch.config import ArchConfig
from explorer.errors import ConfigError, check_int
from explorer.facts.results import Costs, ReceptiveField, ShortcutCounts
from explorer.limits import MAX_BATCH
from explorer.trace import Trace, trace
from explorer.vocab import DTYPE_BYTES  # bytes per element; timing/devices.py maps the names to torch dtypes


def measure_costs(cfg: ArchConfig, batch: int = 1, dtype: str = "fp32") -> Costs:
    """Memory, receptive field, depth and shortcut counts of `cfg` at `batch`.

    Args:
        cfg: the config; its trace (meta device, cached per config) holds every figure.
        batch: images per forward pass; memory figures scale with it.
        dtype: "fp32", "bf16" or "fp16": bytes per activation element.

    Returns:
        A `Costs` record (`.to_dict()` is its JSON document): `activation_bytes` (sum of the fresh
        tensors of one forward pass), `peak_bytes` (most bytes alive at once in inference, input
        included), `weight_bytes`, `receptive_field` (one row per stem/stage: `name`,
        `receptive_field` in input pixels, `jump`), `depth` (weight layers on the main path),
        `shortcuts` (identity / zero_pad / projection counts).
    """
    if not isinstance(cfg, ArchConfig):
        raise ConfigError("config", type(cfg).__name__, "an ArchConfig")
    check_batch(batch)
    if dtype not in DTYPE_BYTES:
        raise ConfigError("dtype", dtype, "one of " + ", ".join(DTYPE_BYTES))
    t = trace(cfg)
    scale = DTYPE_BYTES[dtype] / 4  # the trace runs in fp32
    return Costs(
        batch=batch, dtype=dtype,
        input_bytes=int(cfg.in_channels * cfg.input_size ** 2 * DTYPE_BYTES[dtype] * batch),
        activation_bytes=int(t.activation_bytes * batch * scale),
        peak_bytes=int(t.peak_bytes * batch * scale),
        weight_bytes=(t.params + t.buffer_count) * DTYPE_BYTES[dtype],
        receptive_field=trace_receptive_fields(t), depth=t.depth,
        shortcuts=ShortcutCounts.from_dict(t.shortcuts),
    )


def check_batch(batch: Any) -> int:
    return check_int("batch", batch, 1, MAX_BATCH)


# --- receptive field ------------------------------------------------------------------------

def trace_receptive_fields(t: Trace) -> tuple[ReceptiveField, ...]:
    """Receptive field at the output of the stem and of each stage, along the main path.

    The shortcut path is left out: the branch's field is the larger one (a 1x1 projection adds
    nothing but its stride, which the branch has too). For each conv and pool in order,
    r += (k - 1) * d * j, then j *= s, where j is the distance in input pixels between
    neighbouring outputs (the "jump").
    """
    rf, jump, group = 1, 1, "stem"
    rows: list[ReceptiveField] = []
    for n in t.nodes:
        if n.kind not in ("conv", "maxpool") or n.role in ("shortcut", "attention"):
            continue  # channel attention's convs act on the squeezed (global) map, off the spatial path
        # Layers before the first stage form the stem; any after the stages, the head.
        here = n.stage or ("stem" if group == "stem" else "head")
        if here != group:
            rows.append(ReceptiveField(group, rf, jump))
            group = here
        rf += (n.kernel - 1) * n.dilation * jump
        jump *= n.stride
    rows.append(ReceptiveField(group, rf, jump))
    return tuple(rows)
