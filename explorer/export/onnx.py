"""ONNX export of a config's network, for Netron and ONNX Runtime.

torch.onnx offers two exporters: the torch.export-based one (the default since torch 2.9, which
needs onnxscript) and the TorchScript tracer (`dynamo=False`). A ResNet is one static graph, so
the tracer exports it whole, with fewer dependencies and in a few seconds for ResNet-50.
"""
from __future__ import annotations

import io
import warnings

import torch
from torch import nn

from explorer.arch.builder import build_model
from explorer.arch.config import ArchConfig
from explorer.export.limits import ExportError, onnx_size_problem

OPSET = 17                   # ONNX Runtime 1.16+ and Netron read it; covers every op a ResNet uses
INPUT_NAME, OUTPUT_NAME = "input", "logits"


def weight_bytes(cfg: ArchConfig, model: nn.Module | None = None) -> int:
    """Bytes of float32 parameters and buffers the ONNX file will hold (meta build, no weights)."""
    if model is None:
        with torch.device("meta"):
            model = build_model(cfg)
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * 4 for t in tensors if t.is_floating_point())


def check_onnx_size(cfg: ArchConfig, model: nn.Module | None = None) -> None:
    """ExportError if the network's weights do not fit in one ONNX file."""
    problem = onnx_size_problem(cfg.name, weight_bytes(cfg, model))
    if problem:
        raise ExportError(problem)


def to_onnx_bytes(cfg: ArchConfig, model: nn.Module | None = None) -> bytes:
    """The network as an ONNX model (opset 17): input `input` (B, C, H, W), output `logits`.

    Args:
        cfg: the config; its `input_size` and `in_channels` fix H, W and C; the batch is dynamic.
        model: a module built from `cfg` (e.g. trained); default: a freshly initialised one.

    Returns:
        The serialised ONNX model in inference mode (BN uses its running statistics). The config
        is stored as JSON in the model's metadata (key `resnet_explorer_config`).

    Raises:
        ExportError: the weights exceed ONNX's 2 GiB, or the exporter failed.
    """
    check_onnx_size(cfg, model)
    if model is None:
        model = build_model(cfg)
    was_training = model.training
    model.eval()
    x = torch.zeros(1, cfg.in_channels, cfg.input_size, cfg.input_size)  # (B, C, H, W)
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's deprecation notice says nothing to a user
            torch.onnx.export(
                model, (x,), buf, dynamo=False, opset_version=OPSET,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
    except MemoryError as exc:
        raise ExportError(f"not enough memory to export {cfg.name!r} to ONNX") from exc
    except Exception as exc:  # the exporter's many failure types: one message for the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"ONNX export of {cfg.name!r} failed: {first[:300]}") from exc
    finally:
        model.train(was_training)
    return _with_metadata(buf.getvalue(), cfg)


def _with_metadata(data: bytes, cfg: ArchConfig) -> bytes:
    """Store the config in the model's metadata (Netron shows it under the model properties)."""
    try:
        import onnx
    except ImportError as exc:
        raise ExportError("ONNX export needs the onnx package: pip install -r requirements.txt") from exc
    proto = onnx.load_from_string(data)
    proto.producer_name = "ResNet Explorer"
    proto.doc_string = f"{cfg.name}: input {INPUT_NAME} (B, {cfg.in_channels}, {cfg.input_size}, " \
                       f"{cfg.input_size}), output {OUTPUT_NAME} (B, {cfg.num_classes})"
    entry = proto.metadata_props.add()
    entry.key, entry.value = "resnet_explorer_config", cfg.to_json(indent=None)
    return proto.SerializeToString()
