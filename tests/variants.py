"""Unit variants the tests sweep: He et al. 2016 Fig. 4 (a)-(e) plus no BatchNorm at all,
written out from the paper as (bn_position, relu_position)."""

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
