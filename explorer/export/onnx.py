"""ONNX export of a config's network, for Netron and ONNX Runtime.

torch.onnx offers two exporters: the torch.export-based one (the default since torch 2.9, which
needs onnxscript) and the TorchScript tracer (`dynamo=False`). A ResNet is one static graph, so
the tracer exports it whole, with fewer dependencies and in a few seconds for ResNet-50.

The tracer's graph is tidied for Netron: it shares equal initializers (the zero biases of folded
BNs) through Identity nodes, which clutter the drawing, so each consumer gets its own copy; and
shape inference stores every intermediate tensor's shape (value_info), so each edge is labelled.
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
    proto = tidy_graph(onnx.load_from_string(data))
    proto.producer_name = "ResNet Explorer"
    proto.doc_string = f"{cfg.name}: input {INPUT_NAME} (B, {cfg.in_channels}, {cfg.input_size}, " \
                       f"{cfg.input_size}), output {OUTPUT_NAME} (B, {cfg.num_classes})"
    entry = proto.metadata_props.add()
    entry.key, entry.value = "resnet_explorer_config", cfg.to_json(indent=None)
    return proto.SerializeToString()


def drop_identities(graph) -> None:
    """Remove Identity nodes: an initializer they pass on is copied under the output's name, any
    other input is read by the consumers directly (a graph output keeps its name)."""
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    for node in [n for n in graph.node if n.op_type == "Identity"]:
        src, dst = node.input[0], node.output[0]
        if src in inits:
            graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(inits[src]), dst))
        elif dst in outputs:
            continue  # the output's name is the file's interface: keep this one
        else:
            for other in graph.node:
                other.input[:] = [src if name == dst else name for name in other.input]
        graph.node.remove(node)
    used = {name for n in graph.node for name in n.input} | outputs
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def tidy_graph(proto):
    """The exported model without Identity nodes and with every intermediate shape stored."""
    import onnx

    drop_identities(proto.graph)
    del proto.graph.value_info[:]
    return onnx.shape_inference.infer_shapes(proto, strict_mode=True, data_prop=True)
