"""Take a network with you: standalone PyTorch code (torch only) and ONNX.

Both are written from the module `build_model` builds, so they hold the same layers under the
same names: this package's state_dict loads into the PyTorch code with strict=True. The writers
load torch when first used; the limits below do not.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from explorer.export.limits import ExportError, onnx_size_problem
from explorer.limits import ONNX_MAX_BYTES

if TYPE_CHECKING:
    from explorer.arch.config import ArchConfig

FORMATS = ("pytorch", "onnx")
SUFFIXES = {"pytorch": ".py", "onnx": ".onnx"}
MIMES = {"pytorch": "text/x-python", "onnx": "application/octet-stream"}


def to_bytes(cfg: "ArchConfig", fmt: str) -> bytes:
    """The export of `cfg` in `fmt` (pytorch | onnx) as file contents; ExportError if impossible."""
    if fmt == "pytorch":
        from explorer.export.pytorch import to_pytorch_code

        return to_pytorch_code(cfg).encode()
    if fmt == "onnx":
        from explorer.export.onnx import to_onnx_bytes

        return to_onnx_bytes(cfg)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


__all__ = ["FORMATS", "MIMES", "ONNX_MAX_BYTES", "SUFFIXES", "ExportError", "onnx_size_problem", "to_bytes"]
