"""Facts measured from the built module: parameters, MACs, shapes, per-unit shape checks.

Counting runs one forward pass of a freshly built model on the `meta` device (shapes only,
no weights allocated), with torch.utils.flop_counter counting conv and fc multiply-adds.
"""
from __future__ import annotations

import copy
import threading
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from explorer.arch.builder import ResidualUnit, ResNet, ZeroPadShortcut, build_model
from explorer.arch.config import ArchConfig
from explorer.arch.plan import effective_span
from explorer.arch.plan import make_plan
from explorer.arch.presets import published

SHORTCUT_KINDS = ("identity", "zero_pad", "projection")


@dataclass(frozen=True)
class UnitCheck:
    """The shape check of one residual unit: does F(x) fit x, and what does fitting cost?"""

    name: str                       # module path, e.g. "layer2.0"
    stage: str                      # "layer2"
    layers: int                     # weight layers the shortcut spans
    in_shape: tuple[int, ...]       # (C, H, W) entering the unit: the "x" that is added back
    out_shape: tuple[int, ...]      # (C, H, W) of F(x) and of the sum
    shortcut: str                   # identity | zero_pad | projection
    shortcut_params: int            # parameters of the shortcut (projection conv + BN)
    shortcut_macs: int              # multiply-adds of the shortcut
    branch_params: int              # parameters of F
    reason: str                     # why the shortcut is what it is

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["in_shape"], d["out_shape"] = list(self.in_shape), list(self.out_shape)
        return d


@dataclass
class Trace:
    """What one meta forward pass saw."""

    model: ResNet
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    unit_shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]]  # name -> (in CHW, out CHW)
    stage_shapes: dict[str, tuple[int, ...]]                          # name -> out CHW
    macs_by_module: dict[str, int]                                    # fqn -> multiply-adds


_flop_lock = threading.Lock()  # FlopCounterMode is a global dispatch mode: one pass at a time


def build_meta_model(cfg: ArchConfig) -> ResNet:
    """A private model of `cfg` on the meta device, for counting and tracing (no weights)."""
    with torch.device("meta"):
        return skip_batchnorm(build_model(cfg))


def skip_batchnorm(model: nn.Module) -> nn.Module:
    """Make every BN of a *private meta* model a shape-only stand-in (a fresh tensor, same shape).

    BN changes no shape and has no MACs (conv + fc convention), but on meta its Python
    decomposition costs more than all the convs together.
    """
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.forward = fresh_like
    return model


def fresh_like(x: torch.Tensor) -> torch.Tensor:
    """A new tensor of x's shape (on meta: no data, no work)."""
    return x.new_empty(x.shape)


def trace_meta(cfg: ArchConfig) -> Trace:
    """Build `cfg` on the meta device and run one counted forward pass at batch 1."""
    model = build_meta_model(cfg)
    x = torch.empty(1, cfg.in_channels, cfg.input_size, cfg.input_size, device="meta")  # (B, C, H, W)
    unit_shapes: dict[str, tuple] = {}
    stage_shapes: dict[str, tuple] = {}
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, ResidualUnit):
            hooks.append(mod.register_forward_hook(_record(unit_shapes, name, with_input=True)))
        elif name in model.stage_names:
            hooks.append(mod.register_forward_hook(_record(stage_shapes, name, with_input=False)))
    with _flop_lock, FlopCounterMode(display=False) as counter:
        y = model(x)
    for h in hooks:
        h.remove()
    prefix = type(model).__name__
    macs = {
        _strip(k, prefix): sum(v.values()) // 2
        for k, v in counter.get_flop_counts().items()
        if k != "Global"
    }
    macs["total"] = counter.get_total_flops() // 2
    return Trace(model, tuple(x.shape), tuple(y.shape), unit_shapes, stage_shapes, macs)


def _record(store: dict, name: str, with_input: bool):
    def hook(_mod, args, out):
        if with_input:
            store[name] = (tuple(args[0].shape[1:]), tuple(out.shape[1:]))
        else:
            store[name] = tuple(out.shape[1:])
    return hook


def _strip(key: str, prefix: str) -> str:
    if key == prefix:
        return "model"
    return key[len(prefix) + 1:] if key.startswith(prefix + ".") else key


def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def shortcut_kind(unit: ResidualUnit) -> str:
    """identity | zero_pad | projection, read off the unit's shortcut module."""
    if unit.downsample is None:
        return "identity"
    if isinstance(unit.downsample, ZeroPadShortcut):
        return "zero_pad"
    return "projection"


def count_shortcuts(model: nn.Module) -> dict[str, int]:
    """Residual units by shortcut kind, read off the module."""
    counts = dict.fromkeys(SHORTCUT_KINDS, 0)
    for mod in model.modules():
        if isinstance(mod, ResidualUnit) and mod.residual:
            counts[shortcut_kind(mod)] += 1
    return counts


def _reason(kind: str, in_shape: tuple, out_shape: tuple, option: str) -> str:
    (c_in, h_in, _), (c_out, h_out, _) = in_shape, out_shape
    diffs = []
    if c_in != c_out:
        diffs.append(f"channels {c_in} -> {c_out}")
    if h_in != h_out:
        diffs.append(f"size {h_in} -> {h_out}")
    if not diffs:
        if kind == "projection":
            return f"shapes match, but option {option} projects every shortcut"
        return "shapes match: x is added back unchanged"
    what = " and ".join(diffs)
    if kind == "zero_pad":
        return f"{what}: option A subsamples x and pads it with zero channels (no parameters)"
    return f"{what}: x cannot be added as is, so a 1x1 conv W_s projects it (y = F(x) + W_s x)"


def check_units(trace: Trace) -> list[UnitCheck]:
    """One shape check per residual unit, in network order."""
    option = trace.model.config.shortcut
    checks = []
    for name, mod in trace.model.named_modules():
        if not isinstance(mod, ResidualUnit) or not mod.residual:
            continue
        in_shape, out_shape = trace.unit_shapes[name]
        kind = shortcut_kind(mod)
        sc_params = count_params(mod.downsample) if mod.downsample is not None else 0
        sc_macs = trace.macs_by_module.get(f"{name}.downsample", 0)
        n_layers = sum(1 for m in mod.children() if isinstance(m, nn.Conv2d))
        checks.append(UnitCheck(
            name=name, stage=name.split(".")[0], layers=n_layers,
            in_shape=in_shape, out_shape=out_shape, shortcut=kind,
            shortcut_params=sc_params, shortcut_macs=sc_macs,
            branch_params=count_params(mod) - sc_params,
            reason=_reason(kind, in_shape, out_shape, option),
        ))
    return checks


def weight_depth(model: nn.Module) -> int:
    """Depth as the papers count it: convs and fc on the main path (projections excluded)."""
    return sum(
        1 for name, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear)) and ".downsample" not in name
    )


def measure_summary(cfg: ArchConfig) -> dict[str, Any]:
    """The full summary of a config (the `summary --json` document)."""
    # Cached summaries are shared between callers: hand out copies so none can alter the cache.
    return copy.deepcopy(_summary_cached(cfg))


@lru_cache(maxsize=64)
def _summary_cached(cfg: ArchConfig) -> dict[str, Any]:
    return compute_summary(cfg)


def compute_summary(cfg: ArchConfig) -> dict[str, Any]:
    """Uncached summary: builds on meta, counts, checks every unit."""
    trace = trace_meta(cfg)
    model = trace.model
    units = check_units(trace)
    plan = make_plan(cfg)
    stages = []
    for name in model.stage_names:
        stage = getattr(model, name)
        stages.append({
            "name": name,
            "units": len(stage),
            "params": count_params(stage),
            "macs": trace.macs_by_module.get(name, 0),
            "out_shape": list(trace.stage_shapes[name]),
        })
    head = [m for m in (model.final_bn, model.fc) if m is not None]
    stem = [m for m in (model.conv1, model.bn1) if m is not None]
    projections = [u for u in units if u.shortcut == "projection"]
    return {
        "config": cfg.to_dict(),
        "name": cfg.name,
        "params": count_params(model),
        "trainable_params": count_params(model, trainable_only=True),
        "macs": trace.macs_by_module["total"],
        "input_shape": list(trace.input_shape),
        "output_shape": list(trace.output_shape),
        "depth": weight_depth(model),
        "skip_span": effective_span(cfg),
        "residual_units": len(units),
        "shortcuts": count_shortcuts(model),
        "projection_params": sum(u.shortcut_params for u in projections),
        "projection_macs": sum(u.shortcut_macs for u in projections),
        "stem_params": sum(count_params(m) for m in stem),
        "head_params": sum(count_params(m) for m in head),
        "stages": stages,
        "units": [u.to_dict() for u in units],
        "warnings": list(plan.warnings),
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
    import torchinfo

    with torch.device("meta"):
        model = build_model(cfg)
    stats = torchinfo.summary(
        model, input_size=(1, cfg.in_channels, cfg.input_size, cfg.input_size), device="meta",
        depth=depth, verbose=0, col_names=("output_size", "num_params", "mult_adds"),
        row_settings=("var_names",),
    )
    return str(stats)
