"""Hypothesis over the config space: every dict either builds with consistent views or raises
ConfigError, never anything else."""
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer import ArchConfig, ConfigError, build_model
from explorer.arch.plan import make_plan
from explorer.facts.limits import estimate
from explorer.facts.summary import measure_summary
from variants import TIMM_KNOBS

small_int = st.integers(min_value=1, max_value=4)
junk = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True), st.integers(-5, 10**7),
    st.text(max_size=12), st.lists(st.integers(-2, 5), max_size=5),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)

well_typed = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(min_size=1, max_size=20),
        "block": st.sampled_from(["basic", "bottleneck"]),
        "skip_span": st.one_of(st.none(), st.integers(0, 5)),
        "bn_position": st.sampled_from(["after_conv", "before_conv", "after_add", "none"]),
        "relu_position": st.sampled_from(["after_add", "before_add", "before_conv"]),
        "shortcut": st.sampled_from(["A", "B", "C"]),
        "stride_on": st.sampled_from(["3x3", "first"]),
        "stem": st.sampled_from(["imagenet", "cifar"]),
        "stem_width": st.integers(1, 16),
        "groups": st.integers(1, 4),
        "width_per_group": st.sampled_from([8, 16, 64]),
        "in_channels": st.integers(1, 3),
        "num_classes": st.integers(1, 12),
        "input_size": st.integers(1, 40),
        "zero_init_residual": st.booleans(),
        **{k: st.sampled_from(v) for k, v in TIMM_KNOBS.items()},
    },
).flatmap(lambda d: st.integers(1, 3).flatmap(lambda n: st.fixed_dictionaries({
    **{k: st.just(v) for k, v in d.items()},
    "depths": st.lists(small_int, min_size=n, max_size=n),
    "widths": st.lists(st.integers(1, 16), min_size=n, max_size=n),
})))

ill_typed = st.dictionaries(
    st.sampled_from(["name", "block", "depths", "widths", "skip_span", "bn_position", "shortcut",
                     "input_size", "groups", "zero_init_residual", *TIMM_KNOBS, "unknown", ""]),
    junk, max_size=4,
)


def check(data):
    try:
        cfg = ArchConfig.from_dict(data)
    except ConfigError as exc:
        assert exc.key and str(exc).startswith(f"{exc.key}=")
        return
    summary = measure_summary(cfg)
    with torch.device("meta"):
        model = build_model(cfg).eval()  # inference: BN in training mode rejects a 1x1 map at batch 1
        y = model(torch.empty(1, cfg.in_channels, cfg.input_size, cfg.input_size))
    assert tuple(y.shape) == summary.output_shape == (1, cfg.num_classes)
    assert summary.params == sum(p.numel() for p in model.parameters())
    est = estimate(cfg, make_plan(cfg))  # the limits' arithmetic over the plan is the trace's count
    assert (est.params, est.macs, est.weight_layers) == (summary.params, summary.macs, summary.depth)
    assert ArchConfig.from_json(cfg.to_json()) == cfg


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(well_typed)
def test_well_typed_dicts_build_consistently_or_raise_config_error(data):
    check(data)


@settings(max_examples=150, deadline=None)
@given(ill_typed)
def test_ill_typed_dicts_raise_config_error_only(data):
    check(data)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(well_typed)
def test_real_forward_matches_summary_shape(data):
    try:
        cfg = ArchConfig.from_dict({**data, "input_size": min(data.get("input_size", 8), 24)})
    except ConfigError:
        return
    model = build_model(cfg).eval()
    with torch.no_grad():
        y = model(torch.randn(1, cfg.in_channels, cfg.input_size, cfg.input_size))
    assert tuple(y.shape) == measure_summary(cfg).output_shape
    assert torch.isfinite(y).all() or cfg.bn_position == "none"
