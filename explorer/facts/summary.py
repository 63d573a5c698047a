"""The summary of a network: parameters, MACs, stages and per-unit shape checks, read off its trace."""
from __future__ import annotations

import copy
from dataclasses import asdict
from functools import lru_cache
from typing import Any

from explorer.arch.config import ArchConfig
from explorer.arch.plan import effective_span, make_plan
from explorer.arch.presets import published
from explorer.trace import Trace, trace


def measure_summary(cfg: ArchConfig) -> dict[str, Any]:
    """The full summary of a config (the `summary --json` document)."""
    # Cached summaries are shared between callers: hand out copies so none can alter the cache.
    return copy.deepcopy(_summary_cached(cfg))


@lru_cache(maxsize=64)
def _summary_cached(cfg: ArchConfig) -> dict[str, Any]:
    return summarize(trace(cfg))


def summarize(t: Trace) -> dict[str, Any]:
    """The summary document of a trace."""
    cfg = t.config
    stages = []
    for name in t.stages:
        mine = [n for n in t.nodes if n.stage == name]
        stages.append({
            "name": name,
            "units": sum(1 for u in t.units if u.stage == name),
            "params": t.module_params[name],
            "macs": sum(n.flops for n in mine) // 2,
            "out_shape": list(mine[-1].shape),
        })
    units = [u for u in t.units if u.residual]
    projections = [u for u in units if u.shortcut == "projection"]
    return {
        "config": cfg.to_dict(),
        "name": cfg.name,
        "params": t.params,
        "trainable_params": t.trainable_params,
        "macs": t.macs,
        "input_shape": list(t.input_shape),
        "output_shape": list(t.output_shape),
        "depth": t.depth,
        "skip_span": effective_span(cfg),
        "residual_units": len(units),
        "shortcuts": t.shortcuts,
        "projection_params": sum(u.shortcut_params for u in projections),
        "projection_macs": sum(u.shortcut_macs for u in projections),
        "stem_params": sum(t.module_params.get(m, 0) for m in ("conv1", "bn1")),
        "head_params": sum(t.module_params.get(m, 0) for m in ("final_bn", "fc")),
        "stages": stages,
        "units": [u.to_dict() for u in units],
        "warnings": list(make_plan(cfg).warnings),
        "published": _published(cfg),
    }


def _published(cfg: ArchConfig) -> dict[str, Any] | None:
    """The published figures of the preset this architecture is, if it is one."""
    hit = published(cfg)
    if hit is None:
        return None
    name, info = hit
    return {"preset": name, **asdict(info)}


def layer_table(cfg: ArchConfig, depth: int = 4) -> str:
    """torchinfo's per-layer table (output shapes, params, MACs), computed on meta."""
    import torch
    import torchinfo

    from explorer.arch.builder import build_model

    with torch.device("meta"):
        model = build_model(cfg)
    stats = torchinfo.summary(
        model, input_size=(1, cfg.in_channels, cfg.input_size, cfg.input_size), device="meta",
        depth=depth, verbose=0, col_names=("output_size", "num_params", "mult_adds"),
        row_settings=("var_names",),
    )
    return str(stats)
