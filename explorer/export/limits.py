"""What an export can hold, and the error it raises when a valid config cannot be written.

No torch here: the app checks the ONNX size limit from the cached parameter count before it
offers the download.
"""
from __future__ import annotations

from explorer.limits import ONNX_MAX_BYTES


class ExportError(RuntimeError):
    """An export that could not be made (a file format's size limit, a failed conversion)."""


def onnx_size_problem(name: str, weight_bytes: int) -> str | None:
    """Why `weight_bytes` of float32 weights do not fit in one ONNX file, or None."""
    if weight_bytes < ONNX_MAX_BYTES:
        return None
    return (f"cannot export {name!r} to ONNX: its weights take {weight_bytes / 1024**3:.2f} GiB and one "
            "ONNX file holds at most 2 GiB; use fewer or narrower stages, or export PyTorch code")
