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
