"""The summary of a network: parameters, MACs, stages and per-unit shape checks, read off its trace."""
from __future__ import annotations

from functools import lru_cache

from explorer.arch.config import ArchConfig
from explorer.arch.plan import effective_span, make_plan
from explorer.arch.presets import published
from explorer.facts.results import Published, ShortcutCounts, StageRow, Summary, UnitCheck
from explorer.trace import Trace, trace


@lru_cache(maxsize=64)
def measure_summary(cfg: ArchConfig) -> Summary:
    """The summary of a config; `.to_dict()` is the `summary --json` document. Cached per config
    (a frozen record: every caller may share it)."""
    return summarize(trace(cfg))


def summarize(t: Trace) -> Summary:
    """The summary of a trace."""
    cfg = t.config
    units = tuple(u for u in t.units if u.residual)
    projections = [u for u in units if u.shortcut == "projection"]
    hit = published(cfg)
    return Summary(
        config=cfg, params=t.params, trainable_params=t.trainable_params, macs=t.macs,
        input_shape=tuple(t.input_shape), output_shape=tuple(t.output_shape), depth=t.depth,
        skip_span=effective_span(cfg), residual_units=len(units),
        shortcuts=ShortcutCounts.from_dict(t.shortcuts),
        projection_params=sum(u.shortcut_params for u in projections),
        projection_macs=sum(u.shortcut_macs for u in projections),
        stem_params=sum(t.module_params.get(m, 0) for m in ("conv1", "bn1")),
        head_params=sum(t.module_params.get(m, 0) for m in ("final_bn", "fc")),
        stages=tuple(_stage_row(t, name) for name in t.stages),
        units=tuple(UnitCheck.from_dict(u.to_dict()) for u in units),
        warnings=make_plan(cfg).warnings,
        published=Published(*hit) if hit else None,
    )


def _stage_row(t: Trace, name: str) -> StageRow:
    mine = [n for n in t.nodes if n.stage == name]
    return StageRow(name, sum(1 for u in t.units if u.stage == name), t.module_params[name],
                    sum(n.flops for n in mine) // 2, tuple(mine[-1].shape))


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
