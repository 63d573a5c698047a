"""The layer plan: what the config means, as plain data, before any module exists.

A stage is the flat sequence of weight layers of its blocks; that sequence is cut into
units of `skip_span` layers, each wrapped by one shortcut. The builder turns a plan into
modules; validation uses it to catch shape problems before anything is allocated.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from explorer.errors import ConfigError

if TYPE_CHECKING:
    from explorer.arch.config import ArchConfig

EXPANSION = {"basic": 1, "bottleneck": 4}


def block_length(block: str) -> int:
    """Weight layers in one paper block."""
    return 2 if block == "basic" else 3


def effective_span(cfg: ArchConfig) -> int:
    """skip_span with None resolved to the block length."""
    return block_length(cfg.block) if cfg.skip_span is None else cfg.skip_span


def conv_out(size: int, kernel: int, stride: int = 1, padding: int | None = None, dilation: int = 1,
             ceil_mode: bool = False) -> int:
    """Spatial side after a conv or pool window, as torch computes it (floor mode, or a pool's
    ceil mode, whose last window must still start inside the input or its left padding); padding
    defaults to 'same' padding, kernel // 2, as every conv and pool of these networks has."""
    padding = kernel // 2 if padding is None else padding
    out = (size + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


@dataclass(frozen=True)
class StemSpec:
    """The stem: one conv, or three 3x3 convs with BN-ReLU between them (a deep stem), then BN
    and ReLU where the config has them, then a max-pool or none."""

    kernel: int             # conv kernel side (every conv of a deep stem is 3x3)
    stride: int             # stride of the (first) conv; the deep stem's others have stride 1
    pool_kernel: int        # max-pool window side; 0: no max-pool
    pool_stride: int
    in_ch: int              # image channels
    out_ch: int             # channels out of the stem (stem_width)
    conv_size: int          # spatial side after the conv(s)
    out_size: int           # spatial side out of the stem (after the pool, if any)
    conv_widths: tuple[int, ...] = ()   # output channels of each conv, in order (the last: out_ch)

    @property
    def convs(self) -> tuple[tuple[int, int], ...]:
        """(in channels, out channels) of each stem conv, in order."""
        chans = (self.in_ch, *self.conv_widths)
        return tuple(zip(chans[:-1], chans[1:]))


# (conv kernel, conv stride, pool kernel, pool stride) of each stem: the ImageNet networks' 7x7/2
# conv and 3x3/2 max-pool (He et al. 2015, Table 1), the CIFAR networks' 3x3/1 conv (Sec. 4.2).
STEMS = {"imagenet": (7, 2, 3, 2), "cifar": (3, 1, 0, 1)}


def stem_widths(stem_type: str, width: int) -> tuple[int, ...]:
    """Output channels of each stem conv: one conv, or timm's deep stems (three 3x3 convs;
    `deep`: w/2, w/2, w as in He et al. 2019's ResNet-C; `deep_tiered`: 3*((w/2)//4), w/2, w)."""
    if stem_type == "deep":
        return width // 2, width // 2, width
    if stem_type == "deep_tiered":
        return 3 * (width // 2 // 4), width // 2, width
    return (width,)


def se_width(channels: int) -> int:
    """Squeeze-excitation's reduced width: channels/16 rounded to a multiple of 8, at least 8
    (timm's make_divisible(channels / 16, 8, round_limit=0))."""
    return max(8, int(channels / 16 + 4) // 8 * 8)


def eca_kernel(channels: int) -> int:
    """ECA's 1-D kernel size for `channels` (Wang et al. 2020, Eq. 12 with gamma 2, b 1; timm):
    |log2(C) + 1| / 2 truncated, made odd upwards, at least 3."""
    t = int(abs(math.log2(channels) + 1) / 2)
    return max(t if t % 2 else t + 1, 3)


@dataclass(frozen=True)
class ConvSpec:
    """One conv of a paper block, before the ops around it are placed."""

    role: str               # "3x3", "1x1 reduce", "1x1 expand"
    in_ch: int
    out_ch: int
    kernel: int
    stride: int
    groups: int
    block_idx: int          # the paper block this conv belongs to


@dataclass(frozen=True)
class LayerSpec(ConvSpec):
    """One weight layer (a conv) with the ops that sit right before and after it."""

    pre: tuple[str, ...]    # ops before the conv, in order: "bn", "relu"
    post: tuple[str, ...]   # ops after the conv, in order
    out_size: int           # spatial side of the conv's output


@dataclass(frozen=True)
class UnitSpec:
    """One residual unit (or, with skip_span 0, one plain block): layers + shortcut."""

    name: str                       # module path, e.g. "layer2.0"
    layers: tuple[LayerSpec, ...]
    residual: bool                  # False for plain networks (skip_span 0)
    shortcut: str                   # identity | zero_pad | projection | none
    post_add: tuple[str, ...]       # ops moved after the addition ("bn", "relu")
    in_ch: int
    out_ch: int
    stride: int
    in_size: int                    # spatial side entering the unit
    out_size: int
    span: int                       # the requested span (layers may be fewer: a short unit)
    shortcut_bn: bool               # a projection shortcut ends in BN (only where convs are
                                    # followed by BN: torchvision, He et al. 2015)
    shortcut_pool: int = 0          # avg_down projection (ResNet-D): the stride of its 2x2 average pool,
                                    # 1 where the projection has stride 1 (no pool, timm's Identity
                                    # slot); 0: a plain projection, or no projection
    attention: str = "none"         # channel attention on the branch output: none | se | eca
    attention_width: int = 0        # SE: the reduced width; ECA: the 1-D kernel size; 0: none

    @property
    def short(self) -> bool:
        return self.residual and len(self.layers) < self.span


@dataclass(frozen=True)
class Plan:
    stem: StemSpec
    stages: tuple[tuple[UnitSpec, ...], ...]
    final_ops: tuple[str, ...]              # pre-activation nets: ops after the last unit
    out_ch: int                             # channels into the classifier
    warnings: tuple[str, ...]

    @property
    def stem_out(self) -> int:
        """Channels after the stem."""
        return self.stem.out_ch

    @property
    def stem_size(self) -> int:
        """Spatial side after the stem."""
        return self.stem.out_size


def layer_ops(bn_position: str, relu_position: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(pre, post) ops of every weight layer, before moving anything after the addition."""
    pre = (("bn",) if bn_position == "before_conv" else ()) + (
        ("relu",) if relu_position == "before_conv" else ()
    )
    post = (("bn",) if bn_position in ("after_conv", "after_add") else ()) + (
        ("relu",) if relu_position in ("after_add", "before_add") else ()
    )
    return pre, post


def _block_convs(cfg: "ArchConfig", in_ch: int, width: int, stride: int, block_idx: int) -> list[ConvSpec]:
    """The convs of one paper block."""
    if cfg.block == "basic":
        return [
            ConvSpec("3x3", in_ch, width, 3, stride, 1, block_idx),
            ConvSpec("3x3", width, width, 3, 1, 1, block_idx),
        ]
    inner = int(width * cfg.width_per_group / 64) * cfg.groups
    if inner < 1:
        raise ConfigError(
            "width_per_group", cfg.width_per_group,
            f"a value giving an inner width of at least 1: int({width} * {cfg.width_per_group} / 64)"
            f" * {cfg.groups} = 0",
        )
    s1, s3 = (stride, 1) if cfg.stride_on == "first" else (1, stride)
    out = width * EXPANSION["bottleneck"]
    return [
        ConvSpec("1x1 reduce", in_ch, inner, 1, s1, 1, block_idx),
        ConvSpec("3x3", inner, inner, 3, s3, cfg.groups, block_idx),
        ConvSpec("1x1 expand", inner, out, 1, 1, 1, block_idx),
    ]


def make_stem(cfg: "ArchConfig") -> StemSpec:
    """The stem of a config, with the spatial sides it leaves."""
    kernel, stride, pool_kernel, pool_stride = STEMS[cfg.stem]
    if cfg.stem_type != "single":
        kernel = 3  # a deep stem's first 3x3 takes the stem's stride; the others keep the side
    conv_size = _downsample(cfg, cfg.input_size, kernel, "the stem", stride)
    out_size = _downsample(cfg, conv_size, pool_kernel, "the stem", pool_stride) if pool_kernel else conv_size
    return StemSpec(kernel, stride, pool_kernel, pool_stride, cfg.in_channels, cfg.stem_width, conv_size, out_size,
                    stem_widths(cfg.stem_type, cfg.stem_width))


def make_plan(cfg: "ArchConfig") -> Plan:
    """The layer plan of a field-valid config; raises ConfigError for shape problems."""
    return _make_plan(cfg)


@lru_cache(maxsize=256)
def _make_plan(cfg: "ArchConfig") -> Plan:
    span_req = effective_span(cfg)
    span = span_req if span_req > 0 else block_length(cfg.block)  # plain nets: one container a block
    stem = make_stem(cfg)
    size, in_ch = stem.out_size, stem.out_ch
    stages, warnings = [], []
    for stage_idx, (depth, width) in enumerate(zip(cfg.depths, cfg.widths)):
        stage_name = f"layer{stage_idx + 1}"
        convs: list[ConvSpec] = []
        for block_idx in range(depth):
            stride = 2 if stage_idx > 0 and block_idx == 0 else 1
            convs += _block_convs(cfg, convs[-1].out_ch if convs else in_ch, width, stride, block_idx)
        units = []
        for unit_idx, start in enumerate(range(0, len(convs), span)):
            unit = _make_unit(cfg, f"{stage_name}.{unit_idx}", convs[start:start + span], size, span,
                              first=stage_idx == 0 and unit_idx == 0)
            units.append(unit)
            size = unit.out_size
            if unit.short:
                n = len(unit.layers)
                warnings.append(
                    f"{stage_name}: the last unit {unit.name} spans {n} weight layer{'s' if n != 1 else ''}"
                    f" instead of {span} ({len(convs)} layers do not divide into units of {span})"
                )
        stages.append(tuple(units))
        in_ch = convs[-1].out_ch
    pre, _ = layer_ops(cfg.bn_position, cfg.relu_position)
    final_ops = pre if cfg.relu_position == "before_conv" else ()
    if cfg.zero_init_residual:
        warnings.extend(_zero_init_warnings(stages, span_req > 0))
    return Plan(stem, tuple(stages), final_ops, in_ch, tuple(warnings))


def _make_unit(cfg: "ArchConfig", name: str, convs: list[ConvSpec], in_size: int, span: int,
               first: bool) -> UnitSpec:
    """The unit wrapping `convs`, entered at spatial side `in_size`; `first`: the network's first."""
    residual = effective_span(cfg) > 0
    pre, post = layer_ops(cfg.bn_position, cfg.relu_position)
    # A pre-activation network (ReLU before the conv, Fig. 4 d/e) takes the stem's BN/ReLU as the
    # first unit's pre-activation: "we adopt the first activation right after conv1 and before
    # splitting into two paths" (He et al. 2016, Sec. 4). So the network's first weight layer
    # has no pre-conv ops of its own, and that unit's shortcut reads the activated stem output.
    first_pre = () if first and cfg.relu_position == "before_conv" else pre
    # The unit's last layer leaves the ops that `after_add` moves after the addition.
    last_post = tuple(op for op in post if not (op == "bn" and cfg.bn_position == "after_add")
                      and not (op == "relu" and cfg.relu_position == "after_add")) if residual else post
    layers, size, unit_stride = [], in_size, 1
    for i, conv in enumerate(convs):
        size = _downsample(cfg, size, conv.kernel, f"{name} ({name.split('.')[0]})", conv.stride)
        unit_stride *= conv.stride
        layers.append(LayerSpec(**vars(conv), pre=first_pre if i == 0 else pre,
                                post=last_post if i == len(convs) - 1 else post, out_size=size))
    post_add: tuple[str, ...] = ()
    if residual:
        post_add = (("bn",) if cfg.bn_position == "after_add" else ()) + (
            ("relu",) if cfg.relu_position == "after_add" else ()
        )
    unit_in, unit_out = convs[0].in_ch, convs[-1].out_ch
    shortcut = _shortcut_kind(cfg, name, residual, unit_in, unit_out, unit_stride)
    # The projection matches the branch it is added to: with BN after the convs (torchvision,
    # He et al. 2015; also (b)-(d)) it is conv + BN. A pre-activation unit, whose BN sits before
    # its convs (Fig. 4e), ends its branch in a bare conv, and its projection is a bare 1x1 conv
    # too (resnet-1k-layers, fb.resnet.torch preresnet.lua, timm resnetv2). Without BN, a bias.
    shortcut_bn = shortcut == "projection" and cfg.bn_position in ("after_conv", "after_add")
    # ResNet-D (He et al. 2019, Fig. 2c; timm avg_down): a strided projection averages 2x2 first
    # and projects at stride 1, so the 1x1 conv reads every position instead of 1 in stride^2.
    pool = unit_stride if cfg.avg_down and shortcut == "projection" else 0
    width = {"se": se_width, "eca": eca_kernel}.get(cfg.attention, lambda c: 0)(unit_out)
    return UnitSpec(name, tuple(layers), residual, shortcut, post_add, unit_in, unit_out,
                    unit_stride, in_size, size, span, shortcut_bn, pool, cfg.attention, width)


def _shortcut_kind(cfg, name, residual, in_ch, out_ch, stride) -> str:
    if not residual:
        return "none"
    changes = in_ch != out_ch or stride != 1
    if cfg.shortcut == "A":
        if out_ch < in_ch:
            raise ConfigError(
                "shortcut", "A",
                f"option A (identity with zero-padded channels) cannot reduce channels, but unit"
                f" {name} maps {in_ch} -> {out_ch} channels",
                "Use shortcut B or C (1x1 projection), or a skip_span whose units do not shrink",
            )
        return "zero_pad" if changes else "identity"
    if cfg.shortcut == "B":
        return "projection" if changes else "identity"
    return "projection"


def _downsample(cfg: "ArchConfig", size: int, kernel: int, where: str, stride: int) -> int:
    """The side after a 'same'-padded window; ConfigError where a stride > 1 meets a 1x1 map."""
    if stride > 1 and size <= 1:
        raise ConfigError(
            "input_size", cfg.input_size,
            f"at least {min_input_size(cfg)} for this network: the feature map is already 1x1"
            f" when {where} downsamples",
        )
    return conv_out(size, kernel, stride)


def min_input_size(cfg: "ArchConfig") -> int:
    """Smallest input side for which no stride-2 layer meets a 1x1 map."""
    _, stride, pool_kernel, pool_stride = STEMS[cfg.stem]
    downsamples = (stride > 1) + (pool_kernel > 0 and pool_stride > 1) + len(cfg.depths) - 1
    return 2 ** max(downsamples - 1, 0) + 1 if downsamples else 1


def _zero_init_warnings(stages, residual: bool) -> list[str]:
    if not residual:
        return ["zero_init_residual has no effect: a plain network (skip_span 0) has no residual branch"]
    missing = [u.name for units in stages for u in units if last_branch_bn(u) is None]
    if not missing:
        return []
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    return [f"zero_init_residual: no BN inside the branch of {shown}; nothing zeroed there"]


def last_branch_bn(unit: UnitSpec) -> int | None:
    """1-based index of the last layer whose BN sits inside the branch (before the add)."""
    for j in range(len(unit.layers), 0, -1):
        layer = unit.layers[j - 1]
        if "bn" in layer.pre or "bn" in layer.post:
            return j
    return None
