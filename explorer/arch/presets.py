"""Named configs: torchvision's models, the papers' networks, CIFAR, pre-activation, plain, timm's.

Each preset carries where it comes from and, where one was published, its reported figures,
so the UI can show the published result beside the variant a user builds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from explorer.arch.config import ArchConfig, format_int_list
from explorer.arch.plan import effective_span
from explorer.errors import ConfigError
from explorer.labels import file_stem
from explorer.limits import MAX_NAME


@dataclass(frozen=True)
class PresetInfo:
    source: str                         # paper / library the architecture comes from
    error: float | None = None          # published error %, None where none was reported
    error_metric: str = ""              # what `error` measures
    params: int | None = None           # published parameter count
    gmacs: float | None = None          # published multiply-adds, 1e9, at the preset's input size


_TV = "torchvision.models"
_HE15 = "He et al. 2015, Deep Residual Learning (arXiv 1512.03385)"
_HE16 = "He et al. 2016, Identity Mappings in Deep Residual Networks (arXiv 1603.05027)"
_TOP1 = "ImageNet top-1 error %, 1-crop (torchvision V1 weights)"
_TEN_CROP = "ImageNet top-1 error %, 10-crop validation"
_C10 = "CIFAR-10 test error %"

_IMAGENET = dict(stem="imagenet", stem_width=64, num_classes=1000, input_size=224,
                 widths=[64, 128, 256, 512])
_CIFAR = dict(stem="cifar", stem_width=16, num_classes=10, input_size=32, widths=[16, 32, 64],
              block="basic", shortcut="A")
_PREACT = dict(bn_position="before_conv", relu_position="before_conv")

# name: (config keys, info)
_TABLE: dict[str, tuple[dict, PresetInfo]] = {}


def _add(name: str, keys: dict, info: PresetInfo) -> None:
    _TABLE[name] = ({"name": name, **keys}, info)


# torchvision (stride on the 3x3, "v1.5"; option B)
for _n, _blk, _d, _g, _wpg, _p, _m, _top1 in [
    ("resnet18", "basic", [2, 2, 2, 2], 1, 64, 11_689_512, 1.814, 69.758),
    ("resnet34", "basic", [3, 4, 6, 3], 1, 64, 21_797_672, 3.664, 73.314),
    ("resnet50", "bottleneck", [3, 4, 6, 3], 1, 64, 25_557_032, 4.089, 76.130),
    ("resnet101", "bottleneck", [3, 4, 23, 3], 1, 64, 44_549_160, 7.801, 77.374),
    ("resnet152", "bottleneck", [3, 8, 36, 3], 1, 64, 60_192_808, 11.514, 78.312),
    ("resnext50_32x4d", "bottleneck", [3, 4, 6, 3], 32, 4, 25_028_904, 4.230, 77.618),
    ("resnext101_32x8d", "bottleneck", [3, 4, 23, 3], 32, 8, 88_791_336, 16.414, 79.312),
    ("wide_resnet50_2", "bottleneck", [3, 4, 6, 3], 1, 128, 68_883_240, 11.398, 78.468),
    ("wide_resnet101_2", "bottleneck", [3, 4, 23, 3], 1, 128, 126_886_696, 22.753, 78.848),
]:
    _add(_n, dict(_IMAGENET, block=_blk, depths=_d, groups=_g, width_per_group=_wpg,
                  shortcut="B", stride_on="3x3"),
         PresetInfo(_TV, round(100 - _top1, 3), _TOP1, _p, _m))

# The 2015 paper's ImageNet nets: stride on the first conv of a stage; option A for 18/34
# (Table 2), option B for 50/101/152 (Sec. 3.3). Table 1 gives their multiply-adds.
for _n, _blk, _d, _sc, _m, _err in [
    ("resnet18_paper", "basic", [2, 2, 2, 2], "A", 1.8, 27.88),
    ("resnet34_paper", "basic", [3, 4, 6, 3], "A", 3.6, 25.03),
    ("resnet50_paper", "bottleneck", [3, 4, 6, 3], "B", 3.8, 22.85),
    ("resnet101_paper", "bottleneck", [3, 4, 23, 3], "B", 7.6, 21.75),
    ("resnet152_paper", "bottleneck", [3, 8, 36, 3], "B", 11.3, 21.43),
]:
    _add(_n, dict(_IMAGENET, block=_blk, depths=_d, shortcut=_sc, stride_on="first"),
         PresetInfo(_HE15 + ", Tables 1-3", _err, _TEN_CROP, None, _m))

_add("plain18", dict(_IMAGENET, block="basic", depths=[2, 2, 2, 2], skip_span=0, stride_on="first"),
     PresetInfo(_HE15 + ", Table 2 (plain)", 27.94, _TEN_CROP))
_add("plain34", dict(_IMAGENET, block="basic", depths=[3, 4, 6, 3], skip_span=0, stride_on="first"),
     PresetInfo(_HE15 + ", Table 2 (plain)", 28.54, _TEN_CROP))

# CIFAR-10 (Sec. 4.2): 6n+2 layers, 16/32/64 filters, option A.
for _depth, _n_blocks, _p, _m, _err in [
    (20, 3, 269_722, 0.0406, 8.75),
    (32, 5, 464_154, 0.0689, 7.51),
    (44, 7, 658_586, 0.0972, 7.17),
    (56, 9, 853_018, 0.1255, 6.97),
    (110, 18, 1_727_962, 0.2529, 6.43),
    (1202, 200, 19_421_274, 2.829, 7.93),
]:
    _add(f"resnet{_depth}", dict(_CIFAR, depths=[_n_blocks] * 3),
         PresetInfo(_HE15 + ", Table 6", _err, _C10, _p, _m))

_add("plain20", dict(_CIFAR, depths=[3, 3, 3], skip_span=0),
     PresetInfo(_HE15 + ", Fig. 6 (plain; curves only)"))
_add("plain56", dict(_CIFAR, depths=[9, 9, 9], skip_span=0),
     PresetInfo(_HE15 + ", Fig. 6 (plain; curves only)"))
_add("resnet110_skip1", dict(_CIFAR, depths=[18, 18, 18], skip_span=1),
     PresetInfo(_HE16 + ", Table 3 (1-layer skip, original unit)", 9.90, _C10))

# Identity Mappings: full pre-activation units (Fig. 4e) as the authors built them. The stem's
# BN-ReLU is the first unit's pre-activation; projections are bare 1x1 convs; BN-ReLU before
# the pool. ResNet-110: fb.resnet.torch models/preresnet.lua (CIFAR-10, option A).
_add("preact_resnet110", dict(_CIFAR, depths=[18, 18, 18], **_PREACT),
     PresetInfo(_HE16 + ", Table 2 (e); structure: fb.resnet.torch preresnet.lua", 6.37, _C10,
                1_727_962))
_add("resnet164", dict(_CIFAR, block="bottleneck", depths=[18, 18, 18], shortcut="B"),
     PresetInfo(_HE16 + ", Table 2 (a) original", 5.93, _C10))
# ResNet-164 / 1001: KaimingHe/resnet-1k-layers resnet-pre-act.lua: bottleneck units (9n+2
# layers), 1x1 projections where the shape changes (option B), stride on the first 1x1.
_RESNET_1K = dict(_CIFAR, block="bottleneck", shortcut="B", stride_on="first", **_PREACT)
_add("preact_resnet164", dict(_RESNET_1K, depths=[18, 18, 18]),
     PresetInfo(_HE16 + ", Table 2 (e); structure: KaimingHe/resnet-1k-layers resnet-pre-act.lua",
                5.46, _C10, 1_703_258))
_add("preact_resnet1001", dict(_RESNET_1K, depths=[111, 111, 111]),
     PresetInfo(_HE16 + ", Table 3 (paper: 10.2M parameters); structure: KaimingHe/resnet-1k-layers"
                " resnet-pre-act.lua", 4.92, _C10, 10_327_706))

# ImageNet pre-activation ResNets as timm builds them (resnetv2_50/101/152: stride on the 3x3,
# option B, bare 1x1 projections). timm max-pools before the first unit's BN-ReLU; here the stem
# is conv-BN-ReLU-max-pool (as for every variant), the same parameters. No published error for these models.
for _n, _d, _p in [
    ("preact_resnet50", [3, 4, 6, 3], 25_549_352),
    ("preact_resnet101", [3, 4, 23, 3], 44_541_480),
    ("preact_resnet152", [3, 8, 36, 3], 60_185_128),
]:
    _add(_n, dict(_IMAGENET, block="bottleneck", depths=_d, shortcut="B", stride_on="3x3", **_PREACT),
         PresetInfo("timm resnetv2 (" + _n.replace("preact_resnet", "resnetv2_") + "); units: " + _HE16,
                    None, "", _p))

# Wide ResNet WRN-28-10 (Zagoruyko & Komodakis 2016): pre-activation basic blocks, widths x10.
_add("wrn28_10", dict(_CIFAR, depths=[4, 4, 4], widths=[160, 320, 640], shortcut="B", **_PREACT),
     PresetInfo("Zagoruyko & Komodakis 2016, Wide Residual Networks", 4.00, _C10, 36_500_000))

# timm 1.0's ResNet refinements (timm/models/resnet.py), torchvision's layout (stride on the 3x3,
# option B) with He et al. 2019's tweaks ("Bag of Tricks", Fig. 2): c = deep stem (ResNet-C),
# d = deep stem + average-pool projections (ResNet-D), s = a deep stem twice as wide, t = the tiered
# deep stem + average-pool projections; se/eca = channel attention on every unit (Hu et al. 2018;
# Wang et al. 2020). timm's stem_width names its first stem convs' width: ours is the stem's output,
# twice that. Parameter counts are timm 1.0's; the state_dicts load with strict=True as they are.
_TIMM = "timm 1.0"
for _n, _blk, _d, _keys, _p in [
    ("resnet18d", "basic", [2, 2, 2, 2], dict(stem_type="deep", avg_down=True), 11_708_744),
    ("resnet34d", "basic", [3, 4, 6, 3], dict(stem_type="deep", avg_down=True), 21_816_904),
    ("resnet26d", "bottleneck", [2, 2, 2, 2], dict(stem_type="deep", avg_down=True), 16_014_408),
    ("resnet50c", "bottleneck", [3, 4, 6, 3], dict(stem_type="deep"), 25_576_264),
    ("resnet50d", "bottleneck", [3, 4, 6, 3], dict(stem_type="deep", avg_down=True), 25_576_264),
    ("resnet50s", "bottleneck", [3, 4, 6, 3], dict(stem_type="deep", stem_width=128), 25_680_808),
    ("resnet50t", "bottleneck", [3, 4, 6, 3], dict(stem_type="deep_tiered", avg_down=True), 25_573_728),
    ("resnet101d", "bottleneck", [3, 4, 23, 3], dict(stem_type="deep", avg_down=True), 44_568_392),
    ("resnet152d", "bottleneck", [3, 8, 36, 3], dict(stem_type="deep", avg_down=True), 60_212_040),
    ("seresnet50", "bottleneck", [3, 4, 6, 3], dict(attention="se"), 28_088_024),
    ("seresnext50_32x4d", "bottleneck", [3, 4, 6, 3], dict(attention="se", groups=32, width_per_group=4),
     27_559_896),
    ("ecaresnet50d", "bottleneck", [3, 4, 6, 3], dict(stem_type="deep", avg_down=True, attention="eca"),
     25_576_350),
]:
    _add(_n, {**_IMAGENET, "block": _blk, "depths": _d, "shortcut": "B", "stride_on": "3x3", **_keys},
         PresetInfo(f"{_TIMM} ({_n}); tweaks: He et al. 2019, Bag of Tricks for Image Classification",
                    None, "", _p))

PRESETS: dict[str, ArchConfig] = {name: ArchConfig.from_dict(keys) for name, (keys, _) in _TABLE.items()}
PRESET_INFO: dict[str, PresetInfo] = {name: info for name, (_, info) in _TABLE.items()}
_ARCH_KEYS: dict[str, str] = {name: cfg.arch_key() for name, cfg in PRESETS.items()}


def preset(name: str) -> ArchConfig:
    """The named preset config; raises ConfigError listing the names for an unknown one."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ConfigError("preset", name, "one of " + ", ".join(PRESETS)) from None


def matching_preset(cfg: ArchConfig) -> str | None:
    """The preset whose network `cfg` is (by `arch_key`; its own name's first), else None."""
    key = cfg.arch_key()
    names = [cfg.name] if cfg.name in PRESETS else []
    return next((n for n in [*names, *PRESETS] if _ARCH_KEYS[n] == key), None)


def published(cfg: ArchConfig) -> tuple[str, PresetInfo] | None:
    """(preset name, published figures) of the preset whose network `cfg` is, if any."""
    name = matching_preset(cfg)
    return None if name is None else (name, PRESET_INFO[name])


# -- names that follow the network ---------------------------------------------------------------
CHANGES_SHOWN = 3   # differences from a preset named in a name before "+N more"


def preset_changes(cfg: ArchConfig) -> list[tuple[str, Any]]:
    """(key, value) where `cfg` differs from the preset it is named after, in config key order;
    [] when it is that preset's network or is named after none. The skip span is given as a number
    (the block's length where the config leaves it to the block), and only where it was set: a span
    that follows the block in both is no change, whatever the block."""
    if cfg.name not in PRESETS or _ARCH_KEYS[cfg.name] == cfg.arch_key():
        return []
    base, mine = PRESETS[cfg.name].to_dict(), cfg.to_dict()
    if mine["skip_span"] != base["skip_span"]:
        mine["skip_span"] = effective_span(cfg)
    return [(k, v) for k, v in mine.items() if k != "name" and v != base[k]]


def describe_changes(changes: list[tuple[str, Any]]) -> str:
    """"skip_span 1, shortcut A" (lists as [3, 4, 6, 3]); beyond CHANGES_SHOWN, "+N more"."""
    shown = [f"{k} [{format_int_list(v)}]" if isinstance(v, list) else f"{k} {v}"
             for k, v in changes[:CHANGES_SHOWN]]
    if len(changes) > CHANGES_SHOWN:
        shown.append(f"+{len(changes) - CHANGES_SHOWN} more")
    return ", ".join(shown)


def display_name(cfg: ArchConfig) -> str:
    """The name a config goes out under: its own, or, when it carries a preset's name but is no
    longer that preset's network, the name with its changes: "resnet50 (skip_span 1)"."""
    changes = preset_changes(cfg)
    if not changes:
        return cfg.name
    named = f"{cfg.name} ({describe_changes(changes)})"
    return named if len(named) <= MAX_NAME else f"{cfg.name} (modified)"


def named_for_changes(cfg: ArchConfig) -> ArchConfig:
    """`cfg` under its display name (itself, unchanged, when that is its own name)."""
    name = display_name(cfg)
    return cfg if name == cfg.name else cfg.replace(name=name)


def display_stem(cfg: ArchConfig) -> str:
    """The file name stem of a config's display name: "resnet50", "resnet50_skip_span-1",
    "resnet50_depths-3-4-23-3_shortcut-A"; beyond CHANGES_SHOWN changes, "_and-N-more". A config
    already named by its changes ("resnet50 (skip_span 1)") gets the same stem."""
    base = _display_base(cfg)
    if base is None:
        return file_stem(cfg.name)
    changes = preset_changes(cfg.replace(name=base))
    parts = [f"{k}-{'-'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in changes[:CHANGES_SHOWN]]
    if len(changes) > CHANGES_SHOWN:
        parts.append(f"and-{len(changes) - CHANGES_SHOWN}-more")
    return "_".join([file_stem(base), *(file_stem(p) for p in parts)])


def _display_base(cfg: ArchConfig) -> str | None:
    """The preset a config is named after: its own name, or the X of a display name "X (changes)"
    that `display_name` would give it (a name chosen by a user is left alone)."""
    if cfg.name in PRESETS:
        return cfg.name
    for base in sorted((p for p in PRESETS if cfg.name.startswith(p + " (")), key=len, reverse=True):
        if display_name(cfg.replace(name=base)) == cfg.name:
            return base
    return None
