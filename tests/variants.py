"""Unit variants the tests sweep: He et al. 2016 Fig. 4 (a)-(e) plus no BatchNorm at all,
written out from the paper as (bn_position, relu_position)."""
import torch

FIG4_UNITS = {
    "a": ("after_conv", "after_add"),
    "b": ("after_add", "after_add"),
    "c": ("after_conv", "before_add"),
    "d": ("after_conv", "before_conv"),
    "e": ("before_conv", "before_conv"),
    "nobn": ("none", "after_add"),
}

# Pre-activation networks (ReLU before the conv): (d), (e) and (e) without BN. The stem's
# BN/ReLU is their first unit's pre-activation.
PREACT_UNITS = {
    "d": FIG4_UNITS["d"],
    "e": FIG4_UNITS["e"],
    "nobn_pre": ("none", "before_conv"),
}

# timm's refinements (config keys stem_type, avg_down, attention), each value the random variants
# of the fuzz and property tests draw from: the deep stems of ResNet-C/S/T, ResNet-D's
# average-pool projection, and channel attention (SE, ECA).
TIMM_KNOBS = {
    "stem_type": ["single", "deep", "deep_tiered"],
    "avg_down": [False, True],
    "attention": ["none", "se", "eca"],
}


def randomize_bn(model: torch.nn.Module) -> torch.nn.Module:
    """BN statistics and affine parameters away from their defaults, so eval mode tests them."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
    return model.eval()
