"""The questions the explorer exists to answer, each tied to settings that show it live.

Figures quoted here are the papers' published results (see PresetInfo for their sources).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from explorer.arch.config import BNPosition, ReLUPosition


@dataclass(frozen=True)
class UnitVariant:
    """One of the five residual units of He et al. 2016, Fig. 4 (the one table of them: the Lab's
units experiment and the unit-variant picker read it)."""

    key: str                # "a" .. "e"
    label: str              # "(a) original"
    bn_position: BNPosition
    relu_position: ReLUPosition
    error_110: float        # CIFAR-10 test error %, ResNet-110 (Table 2)
    error_164: float        # CIFAR-10 test error %, ResNet-164 (Table 2)


UNIT_VARIANTS: dict[str, UnitVariant] = {
    v.key: v for v in [
        UnitVariant("a", "(a) original", "after_conv", "after_add", 6.61, 5.93),
        UnitVariant("b", "(b) BN after addition", "after_add", "after_add", 8.17, 6.50),
        UnitVariant("c", "(c) ReLU before addition", "after_conv", "before_add", 7.84, 6.14),
        UnitVariant("d", "(d) ReLU-only pre-activation", "after_conv", "before_conv", 6.71, 5.91),
        UnitVariant("e", "(e) full pre-activation", "before_conv", "before_conv", 6.37, 5.46),
    ]
}


def unit_variant_of(bn_position: str, relu_position: str) -> str | None:
    """The (a)-(e) key of a BN/ReLU placement, or None for a placement outside Fig. 4."""
    for v in UNIT_VARIANTS.values():
        if (v.bn_position, v.relu_position) == (bn_position, relu_position):
            return v.key
    return None


@dataclass(frozen=True)
class PublishedResult:
    """One row of a published ImageNet table: a variant and its single-crop accuracy or error."""

    source: str             # "He et al. 2019, Table 5"
    model: str              # "ResNet-50-D"
    what: str               # "top-1 / top-5 accuracy %" or "top-1 / top-5 error %"
    top1: float
    top5: float
    gflops: float | None    # the paper's GFLOPs figure, where quoted here


_TRICKS, _SE = "He et al. 2019, Bag of Tricks, Table 5", "Hu et al. 2018, SENet, Table 2"
_ACC, _ERR = "top-1 / top-5 accuracy %", "top-1 / top-5 error %"
# ResNet-B moves the stride to the 3x3 (torchvision's v1.5, this app's default), C is the deep
# stem, D adds the average pool before the projection; SE gates each branch's channels.
TWEAK_RESULTS: tuple[PublishedResult, ...] = (
    PublishedResult(_TRICKS, "ResNet-50", _ACC, 76.21, 92.97, None),
    PublishedResult(_TRICKS, "ResNet-50-B", _ACC, 76.66, 93.28, None),
    PublishedResult(_TRICKS, "ResNet-50-C", _ACC, 76.87, 93.48, None),
    PublishedResult(_TRICKS, "ResNet-50-D", _ACC, 77.16, 93.52, None),
    PublishedResult(_SE, "ResNet-50", _ERR, 24.80, 7.48, 3.86),
    PublishedResult(_SE, "SE-ResNet-50", _ERR, 23.29, 6.62, 3.87),
    PublishedResult(_SE, "ResNeXt-50", _ERR, 22.11, 5.90, None),
    PublishedResult(_SE, "SE-ResNeXt-50", _ERR, 21.10, 5.49, None),
)


@dataclass(frozen=True)
class Lesson:
    key: str
    question: str
    answer: str                         # markdown
    preset: str                         # the preset the demonstration starts from
    changes: dict[str, Any] = field(default_factory=dict)  # config keys set on top of it
    look_at: str = ""                   # which view shows the point
    detail: str = "units"               # the Diagram's detail its text speaks of (where look_at is Diagram)


LESSONS: list[Lesson] = [
    Lesson(
        "two_layers",
        "Why does a shortcut span two weight layers and not one?",
        "With a single layer the unit is y = W1·x + x = (W1 + I)·x before its ReLU: still one linear "
        "layer, only re-parametrised, so the shortcut adds nothing a plain layer could not learn. "
        "He et al. (2015, Sec. 3.2) report no advantage for it. He et al. (2016, Table 3) measured it: "
        "ResNet-110 on CIFAR-10 with a 1-layer skip reaches **9.90 %** error against **6.61 %** with "
        "the usual 2-layer skip. The button builds the 1-layer-skip ResNet-110: look at the unit figure.",
        "resnet110_skip1", {}, "Unit",
    ),
    Lesson(
        "projection_cost",
        "Why must the dimensions match, and what does a projection cost?",
        "F(x) + x is an element-wise sum, so F(x) and x must have the same shape. Where a unit changes "
        "the channel count or the resolution, the shortcut must change x too: option A pads zero "
        "channels (free), options B/C use a 1x1 convolution W_s (y = F(x) + W_s·x) that costs parameters "
        "and MACs. Spanning a whole bottleneck keeps the number of such places small; with a skip span "
        "of 1 almost every bottleneck layer changes the width, and the shape checks fill with "
        "projections. The button sets ResNet-50 to skip span 1: compare its projection parameters "
        "with the 2.8 M of the standard ResNet-50.",
        "resnet50", {"skip_span": 1}, "Unit",
    ),
    Lesson(
        "bn_position",
        "Where does BatchNorm go?",
        "The 2015 paper puts BN right after each convolution and before the activation (unit (a)). "
        "He et al. (2016, Fig. 4) tried the alternatives on CIFAR-10 (ResNet-110 / ResNet-164 error %): "
        + "; ".join(f"{v.label} {v.error_110:.2f} / {v.error_164:.2f}" for v in UNIT_VARIANTS.values()) + ". "
        "BN after the addition disturbs the clean identity path; pre-activation keeps it clean. "
        "Use the unit-variant picker to redraw the unit for each; the button shows (e).",
        "preact_resnet110", {}, "Unit",
    ),
    Lesson(
        "what_is_x",
        "What is the \"x\" that is added back?",
        "x is the unit's input: the whole feature map (C x H x W) that enters the unit, before its first "
        "weight layer. The shortcut carries it around the unit's layers and adds it to their output "
        "F(x). In the shape checks, `in_shape` is x and `out_shape` is F(x). In the CIFAR ResNet-20 the "
        "button shows, x entering layer2.0 is 16x32x32 while F(x) is 32x16x16: option A subsamples x "
        "and pads 16 zero channels before adding.",
        "resnet20", {}, "Unit",
    ),
    Lesson(
        "weight_layer",
        "Is a \"weight layer\" just a conv?",
        "Yes: in the papers' figures a weight layer is a convolution (3x3, or 1x1 in a bottleneck) and, "
        "at the end, the fully connected classifier. BN and ReLU are not counted. ResNet-50 is 1 stem "
        "conv + 16 bottlenecks x 3 convs + 1 fc = 50 weight layers; projection shortcuts are not "
        "counted either. The layer-level diagram shows every conv with its kernel, stride and width.",
        "resnet50", {}, "Diagram", "layers",
    ),
    Lesson(
        "resnet_d",
        "Why does ResNet-D average before projecting, and what does SE add?",
        "Where a stage halves the resolution, the original projection W_s is a 1x1 conv with stride 2: "
        "it reads one position in every 2x2 window, so the shortcut ignores three quarters of x. "
        "ResNet-D (He et al. 2019, \"Bag of Tricks\") first averages each 2x2 window (no parameters, "
        "no multiply-adds counted) and then projects with a stride-1 1x1 conv: every input position "
        "reaches the sum, for the same parameters. Table 5 gives ImageNet top-1 **76.21 %** for "
        "ResNet-50, **76.66 %** with the stride on the 3x3 (B), **76.87 %** with the deep stem (C) and "
        "**77.16 %** with the average pool too (D). Squeeze-and-excitation (Hu et al. 2018) adds a "
        "gate to each branch: it averages F(x) over space, passes the C numbers through two small "
        "1x1 convs (C -> C/16 -> C) and a sigmoid, and scales each channel of F(x) by its gate before "
        "the addition. Table 2: top-1 error **24.80 % -> 23.29 %** for ResNet-50 at 3.86 -> 3.87 "
        "GFLOPs, about 2.5 M more parameters. The button builds resnet50d: the unit figure shows the "
        "average pool on the shortcut; set attention to se to see the gate.",
        "resnet50d", {}, "Unit",
    ),
    Lesson(
        "degradation",
        "Why shortcuts at all?",
        "Deeper plain networks train worse than shallower ones (the degradation problem): on ImageNet "
        "plain-34 has 28.54 % top-1 error against 27.94 % for plain-18, while with shortcuts "
        "ResNet-34 reaches 25.03 % against 27.88 % for ResNet-18 (He et al. 2015, Table 2). The "
        "button builds plain-34; the Lab tab trains plain and residual nets side by side.",
        "plain34", {}, "Summary",
    ),
]
