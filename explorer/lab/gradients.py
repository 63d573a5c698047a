"""Gradient norms per residual unit at initialisation, measured on the real model with hooks."""
from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from explorer.arch.config import ArchConfig
from explorer.trace import trace


def _unit_names(cfg: ArchConfig) -> tuple[str, ...]:
    """Module paths of the network's residual units ("layer1.0", ...), in network order."""
    return tuple(u.name for u in trace(cfg).units)


def measure_grad_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[dict[str, Any]]:
    """Per residual unit, on one batch at the current weights: the L2 norm of the loss's
    gradient w.r.t. the unit's parameters (`grad_norm`) and w.r.t. its output
    (`output_grad_norm`, the signal that reaches that depth). Works on a copy in train mode.

    `model` comes from `build_model` (its `config` names the units). Plain nets (skip_span 0)
    report their blocks, the units that would carry the shortcut.
    """
    probe = copy.deepcopy(model)
    probe.train()
    modules = dict(probe.named_modules())
    units = [(name, modules[name]) for name in _unit_names(probe.config)]
    out_norms: dict[str, float] = {}
    hooks = [unit.register_forward_hook(_grad_probe(name, out_norms)) for name, unit in units]
    try:
        loss = F.cross_entropy(probe(x), y)
        probe.zero_grad(set_to_none=True)
        loss.backward()
    finally:
        for h in hooks:
            h.remove()
    rows, layer = [], 1  # the stem conv is weight layer 1
    for unit_idx, (name, unit) in enumerate(units):
        layer += sum(1 for n, m in unit.named_modules()
                     if isinstance(m, nn.Conv2d) and not n.startswith("downsample"))
        grads = [p.grad.flatten() for p in unit.parameters() if p.grad is not None]
        rows.append({
            "unit": name,
            "unit_index": unit_idx,
            "stage": name.split(".")[0],
            "layer": layer,  # weight layer at the unit's end, counted from the input
            "residual": unit.residual,
            "grad_norm": torch.cat(grads).norm().item() if grads else 0.0,
            "output_grad_norm": out_norms.get(name, 0.0),
        })
    return rows


def _grad_probe(name: str, store: dict[str, float]):
    def hook(_mod, _args, out):
        out.register_hook(lambda g: store.__setitem__(name, g.norm().item()))
        # Hand on a copy: a later in-place op (a final ReLU) must not alter the hooked tensor.
        return out.clone()
    return hook
