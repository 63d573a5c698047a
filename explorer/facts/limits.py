"""Resource limits that keep a shared server alive, checked where work is about to start.

The estimate is plain arithmetic over the layer plan (no tensors, no modules), so a request
for a 10,000-layer network or a 4096x4096 input is refused in microseconds with the estimate
and the limit in the message. The limits themselves are `explorer.limits.ServerLimits`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from explorer.errors import ConfigError
from explorer.limits import ENV_PREFIX, ServerLimits, server_limits

if TYPE_CHECKING:
    from explorer.arch.config import ArchConfig
    from explorer.arch.plan import Plan, UnitSpec

@dataclass(frozen=True)
class Estimate:
    weight_layers: int      # main-path convs + fc
    params: int             # weights, biases, BN gamma/beta
    macs: int               # conv + fc multiply-adds per image


def estimate(cfg: "ArchConfig", plan: "Plan") -> Estimate:
    """Size of the network a plan describes, by arithmetic over the plan's layers and sizes alone."""
    bn = cfg.bn_position != "none"
    stem = plan.stem
    params = macs = 0
    for c_in, c_out in stem.convs:  # one conv, or a deep stem's three (BN-ReLU between them)
        weights = c_in * c_out * stem.kernel ** 2
        params += weights + (2 if bn else 1) * c_out  # BN gamma/beta, or the conv's bias
        macs += weights * stem.conv_size ** 2
    layers = len(stem.convs)
    for units in plan.stages:
        for unit in units:
            unit_params, unit_macs = _unit_size(unit, bn)
            params, macs, layers = params + unit_params, macs + unit_macs, layers + len(unit.layers)
    if "bn" in plan.final_ops:
        params += 2 * plan.out_ch
    params += plan.out_ch * cfg.num_classes + cfg.num_classes
    macs += plan.out_ch * cfg.num_classes
    return Estimate(layers + 1, params, macs)


def _unit_size(unit: "UnitSpec", bn: bool) -> tuple[int, int]:
    """(parameters, MACs) of one unit: its convs, their BNs, and a projection shortcut."""
    params = macs = 0
    for layer in unit.layers:
        weights = layer.in_ch // layer.groups * layer.out_ch * layer.kernel ** 2
        params += weights + (0 if bn else layer.out_ch)  # conv bias only without BN
        params += 2 * layer.in_ch if "bn" in layer.pre else 2 * layer.out_ch if "bn" in layer.post else 0
        macs += weights * layer.out_size ** 2
    if "bn" in unit.post_add:
        params += 2 * unit.out_ch
    if unit.shortcut == "projection":
        weights = unit.in_ch * unit.out_ch
        # BN where the plan puts one (not in pre-activation units), a bias without BN
        params += weights + (2 * unit.out_ch if unit.shortcut_bn else 0 if bn else unit.out_ch)
        macs += weights * unit.out_size ** 2  # with an average pool first: a stride-1 conv, same size
    if unit.attention == "se":  # two 1x1 convs with biases on the squeezed (1x1) map
        params += 2 * unit.out_ch * unit.attention_width + unit.attention_width + unit.out_ch
        macs += 2 * unit.out_ch * unit.attention_width
    elif unit.attention == "eca":  # one 1-D conv of attention_width taps over the C channels
        params += unit.attention_width
        macs += unit.attention_width * unit.out_ch
    return params, macs


def check_limits(cfg: "ArchConfig", limits: ServerLimits | None = None) -> Estimate:
    """The estimate, or ConfigError naming the key to change, the estimate and the limit.

    Called where work is about to start (app, CLI, Lab, latency); `limits` default to the
    environment's (`server_limits()`, read once per process), whose malformed values are a
    ConfigError too.
    """
    from explorer.arch.plan import make_plan

    limits = limits or server_limits()
    est = estimate(cfg, make_plan(cfg))
    if est.weight_layers > limits.max_weight_layers:
        raise ConfigError(
            "depths", list(cfg.depths),
            f"at most {limits.max_weight_layers:,} weight layers in all; this network has "
            f"{est.weight_layers:,}", f"The limit is {ENV_PREFIX}MAX_WEIGHT_LAYERS",
        )
    if est.params > limits.max_params:
        raise ConfigError(
            "widths", list(cfg.widths),
            f"a network of at most {limits.max_params:,} parameters; this one would have about "
            f"{est.params:,}", f"The limit is {ENV_PREFIX}MAX_PARAMS",
        )
    if est.macs > limits.max_macs:
        raise ConfigError(
            "input_size", cfg.input_size,
            f"a network of at most {limits.max_macs / 1e9:,.0f} GMACs per image; at this input size it "
            f"needs about {est.macs / 1e9:,.0f} GMACs", f"The limit is {ENV_PREFIX}MAX_MACS",
        )
    return est
