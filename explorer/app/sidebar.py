"""The settings sidebar: every config key as a widget `cfg_<key>`, with a message slot under each."""
from __future__ import annotations

import streamlit as st

import explorer
from explorer import ArchConfig, lessons
from explorer.app.cache import summary_of
from explorer.app.inputs import CUSTOM, WIDGET_PREFIX as W
from explorer.app.state import apply_uploaded, on_preset, on_setting, on_unit_variant
from explorer.app.text import plain_lines, safe_name
from explorer.arch.config import INT_BOUNDS, choices
from explorer.arch.presets import named_for_changes
from explorer.limits import MAX_NAME, MAX_SPAN

UPLOAD_MB = 1  # the uploader's own bound; inputs.config_from_upload then allows 64 KiB


def variant_label(key: str) -> str:
    return lessons.UNIT_VARIANTS[key].label if key in lessons.UNIT_VARIANTS else "custom"


def settings_sidebar() -> dict:
    """Draw every setting; returns a message slot per config key (errors show next to their widget)."""
    sb = st.sidebar
    slots: dict = {}
    sb.title("ResNet Explorer")
    sb.selectbox("Preset", [*explorer.PRESETS, CUSTOM], key="preset", on_change=on_preset,
                 help="Start from a published network; every knob below stays live. Shows the preset the "
                      "settings are, or custom once they match none.")
    sb.selectbox("Unit variant (He et al. 2016, Fig. 4)", [*lessons.UNIT_VARIANTS, "custom"], key="unit_variant",
                 format_func=variant_label, on_change=on_unit_variant,
                 help="Sets the BN and ReLU positions together.")
    sb.text_input("Name", **_changes("name"), max_chars=MAX_NAME)
    _slot(slots, "name")
    _block_settings(slots)
    _stage_settings(slots)
    sb.checkbox("Zero-init last BN of each branch", **_changes("zero_init_residual"))
    _slot(slots, "zero_init_residual", "config")
    return slots


def _changes(key: str) -> dict:
    """A widget's key and the callback that notes it as the setting changed last."""
    return dict(key=W + key, on_change=on_setting, args=(key,))


def _slot(slots: dict, *keys: str) -> None:
    """A message slot under the widget just drawn, for each of `keys`."""
    for key in keys:
        slots[key] = st.sidebar.empty()


def _int_pair(slots: dict, *labelled: tuple[str, str]) -> None:
    """Two whole-number settings side by side, (label, key) each."""
    for col, (label, key) in zip(st.sidebar.columns(2), labelled):
        col.number_input(label, min_value=1, max_value=INT_BOUNDS[key][1], **_changes(key))
    _slot(slots, *(key for _, key in labelled))


def _block_settings(slots: dict) -> None:
    sb = st.sidebar
    sb.subheader("Blocks and shortcuts")
    sb.selectbox("Block", choices("block"), **_changes("block"),
                 help="basic = [3x3, 3x3]; bottleneck = [1x1 reduce, 3x3, 1x1 expand x4]")
    _slot(slots, "block")
    sb.number_input("Skip span (weight layers per shortcut)", min_value=0, max_value=MAX_SPAN, step=1,
                    **_changes("skip_span"),
                    help="The block's own length (2 basic, 3 bottleneck) is the papers' unit and follows the "
                         "block; 1 skips a single weight layer; 0 = plain network, no shortcuts.")
    _slot(slots, "skip_span")
    sb.selectbox("BatchNorm position", choices("bn_position"), **_changes("bn_position"),
                 help="after_conv: conv-BN in each layer (He et al. 2015, torchvision); before_conv: BN-ReLU-conv, "
                      "full pre-activation (He et al. 2016, Fig. 4e); after_add: one BN after the addition "
                      "(Fig. 4b); none: no BatchNorm, each conv gets a bias.")
    _slot(slots, "bn_position")
    sb.selectbox("ReLU position", choices("relu_position"), **_changes("relu_position"),
                 help="after_add: ReLU after the addition (the original unit); before_add: at the end of the "
                      "branch, so the shortcut is a clean identity (Fig. 4c); before_conv: pre-activation, "
                      "ReLU before each conv (Fig. 4d, e).")
    _slot(slots, "relu_position")
    sb.selectbox("Shortcut option", choices("shortcut"), **_changes("shortcut"),
                 help="A: identity, zero-padded channels (no parameters); B: 1x1 projection where the shape "
                      "changes; C: projection on every shortcut.")
    _slot(slots, "shortcut")
    sb.selectbox("Stride on", choices("stride_on"), **_changes("stride_on"),
                 help="3x3 = torchvision v1.5; first = the paper's first conv of the stage.")
    _slot(slots, "stride_on")
    sb.checkbox("Average-pool shortcut (ResNet-D)", **_changes("avg_down"),
                help="A strided 1x1 projection reads only 1 in 4 of its input's positions. ResNet-D (He et al. "
                     "2019, Bag of Tricks, Fig. 2c; timm's avg_down) averages 2x2 first, then projects with a "
                     "stride-1 1x1 conv: same parameters, every position read. Needs shortcut B or C.")
    _slot(slots, "avg_down")
    sb.selectbox("Channel attention", choices("attention"), **_changes("attention"),
                 help="Scales each channel of the branch output F(x) by a learned gate before the addition. "
                      "se: squeeze-excitation (Hu et al. 2018; timm's SEModule): global mean, 1x1 conv to C/16 "
                      "(a multiple of 8), ReLU, 1x1 conv back, sigmoid. eca: ECA (Wang et al. 2020; timm's "
                      "EcaModule): global mean, one 1-D conv across the channels (kernel 3 to 7, from C), "
                      "sigmoid: a handful of parameters per unit.")
    _slot(slots, "attention")


def _stage_settings(slots: dict) -> None:
    sb = st.sidebar
    sb.subheader("Stages")
    sb.text_input("Depths (blocks per stage)", **_changes("depths"), help="e.g. 3, 4, 6, 3")
    _slot(slots, "depths")
    sb.text_input("Widths (per stage)", **_changes("widths"), help="e.g. 64, 128, 256, 512")
    _slot(slots, "widths")
    _int_pair(slots, ("Groups", "groups"), ("Width per group", "width_per_group"))
    sb.subheader("Stem, input, head")
    sb.selectbox("Stem", choices("stem"), **_changes("stem"),
                 help="imagenet: 7x7/2 conv + 3x3/2 max-pool; cifar: one 3x3/1 conv")
    _slot(slots, "stem")
    sb.selectbox("Stem type", choices("stem_type"), **_changes("stem_type"),
                 help="single: the one conv above. deep: three 3x3 convs (widths w/2, w/2, w for stem width w), "
                      "the first with the stem's stride, BN-ReLU between them: ResNet-C (He et al. 2019, Bag "
                      "of Tricks) and timm's stem_type='deep'. deep_tiered: widths 3w/8, w/2, w (timm's "
                      "resnet50t). Needs an even stem width of at least 8.")
    _slot(slots, "stem_type")
    _int_pair(slots, ("Stem width", "stem_width"), ("Input size", "input_size"))
    _int_pair(slots, ("In channels", "in_channels"), ("Classes", "num_classes"))


def export_bytes(cfg: ArchConfig, fmt: str) -> bytes:
    """The PyTorch code or ONNX file of `cfg` under its display name, made when its button is clicked."""
    from explorer import export  # loads the writers (and torch.onnx) only when asked

    return export.to_bytes(named_for_changes(cfg), fmt)


def export_buttons(cfg: ArchConfig) -> None:
    """Download the network as standalone PyTorch code (torch only) or as ONNX (Netron, ONNX Runtime)."""
    from explorer.export.limits import onnx_size_problem

    st.download_button("Download PyTorch code", data=lambda: export_bytes(cfg, "pytorch"),  # made on click
                       file_name=f"{safe_name(cfg)}.py", mime="text/x-python", key="download_pytorch",
                       on_click="ignore",
                       help="One .py file that needs torch alone: build_model() returns this network, and "
                            "this app's state_dict loads into it with strict=True.")
    problem = onnx_size_problem(named_for_changes(cfg).name, 4 * summary_of(cfg).params)
    if problem:
        st.caption(problem)
        return
    onnx_download(cfg)


ONNX_HELP = ("Opens in Netron, runs in ONNX Runtime: input (B, C, H, W) at this input size, fresh weights, "
             "inference mode. Takes a few seconds for ResNet-50.")
ONNX_FILE = "onnx_file"     # session key: (config, bytes) of the ONNX file prepared in this session


def onnx_download(cfg: ArchConfig) -> None:
    """The ONNX download: made on click where the export is quick; else prepared first in a child
    process, with progress and Cancel (a closed page stops it too), then offered."""
    from explorer.export.background import expected_export_s, is_quick

    named = named_for_changes(cfg)
    ready = st.session_state.get(ONNX_FILE)
    if is_quick(named, "onnx") or (ready is not None and ready[0] == named):
        data = ready[1] if ready is not None and ready[0] == named else (lambda: export_bytes(cfg, "onnx"))
        st.download_button("Download ONNX", data=data, file_name=f"{safe_name(cfg)}.onnx",
                           mime="application/octet-stream", key="download_onnx", on_click="ignore", help=ONNX_HELP)
        return
    expected = expected_export_s(named, "onnx")
    if st.button(f"Prepare ONNX (about {expected:.0f} s)", key="prepare_onnx",
                 help=ONNX_HELP.replace("a few seconds for ResNet-50", f"about {expected:.0f} s for this network")):
        prepare_onnx(cfg)


def prepare_onnx(cfg: ArchConfig) -> None:
    """Export in a child process under a progress bar and a Cancel button (whose click reruns the
    page, which ends the child), then offer the file."""
    from explorer.app.measuring import bar_progress
    from explorer.export import ExportError
    from explorer.export.background import export_in_child

    named = named_for_changes(cfg)
    cancel = st.empty()
    cancel.button("Cancel", key="onnx_cancel", help="Stops the export.")
    bar = st.progress(0.0, text="exporting to ONNX…")
    try:
        st.session_state[ONNX_FILE] = (named, export_in_child(named, "onnx", bar_progress(bar, "exporting to ONNX…")))
    except ExportError as exc:
        st.error(plain_lines(str(exc)))
    bar.empty()
    cancel.empty()
    if ONNX_FILE in st.session_state and st.session_state[ONNX_FILE][0] == named:
        st.rerun()  # drawn again with the file ready to download


def config_io(cfg: ArchConfig) -> None:
    with st.sidebar.expander("Import / export config"):
        # A changed preset goes out under its display name, so the file says which network it is.
        st.download_button("Download config JSON", named_for_changes(cfg).to_json(), file_name=f"{safe_name(cfg)}.json",
                           mime="application/json", key="download_config", on_click="ignore")
        export_buttons(cfg)
        st.file_uploader("Load a config JSON", type=["json"],
                         key="upload_config", on_change=apply_uploaded, max_upload_size=UPLOAD_MB)
        if st.session_state.get("upload_error"):
            st.error(plain_lines(st.session_state.upload_error))
        st.caption("The page address holds the settings: copy it to share this view.")
