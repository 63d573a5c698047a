"""Memory around a measurement: will a CPU run fit before it starts, and the CUDA peak of one pass."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from explorer.arch.builder import build_model
from explorer.arch.config import ArchConfig
from explorer.errors import ConfigError, LatencyError
from explorer.facts.costs import measure_costs
from explorer.trace import trace_memory
from explorer.facts.limits import check_limits
from explorer.timing.devices import DTYPES, device_label, free_memory_bytes
from explorer.timing.gate import exclusive_measurement

MEMORY_SHARE = 0.5          # a CPU batch may use at most this share of the free memory


def check_cpu_memory(cfg_or_copy: ArchConfig | nn.Module, name: str, shape: tuple[int, ...], batch: int,
                     dtype: str, dev: torch.device) -> None:
    """Refuse a CPU run whose weights and peak activations would crowd out the machine.

    For a config this runs before anything is built: weights and activations are estimated on
    the meta device. For a module (the measurement's private copy, whose weights already exist)
    only the activations count, traced at one image of `shape` (C, H, W).
    """
    free = free_memory_bytes(dev)
    built = isinstance(cfg_or_copy, nn.Module)
    if free is None or (built and batch == 1):  # one image next to weights that exist
        return
    limit = int(free * MEMORY_SHARE)
    if built:
        per_image, weights = trace_memory(cfg_or_copy, (1, *shape), device=dev, dtype=DTYPES[dtype])["peak_bytes"], 0
    else:
        costs = measure_costs(cfg_or_copy, 1, dtype)
        per_image, weights = costs.peak_bytes, costs.weight_bytes
    if weights > limit:
        raise LatencyError(f"{name}: its weights alone need {weights / 2**30:.1f} GiB, "
                           f"more than half of the {free / 2**30:.1f} GiB free on {device_label(dev)}")
    if weights + per_image * batch > limit:
        fits = max(1, (limit - weights) // max(per_image, 1))
        raise ConfigError("batch", batch, f"at most {fits} on this machine",
                          f"one pass would need about {(weights + per_image * batch) / 2**30:.1f} GiB "
                          f"(weights and activations) of {free / 2**30:.1f} GiB free")


def fits_cpu_memory(model_or_cfg: ArchConfig | nn.Module, dev: torch.device, batch: int, dtype: str,
                    input_shape: Sequence[int] | None) -> bool:
    """Cheap pre-check for a config at its own input size on the CPU (others are checked when measured)."""
    if dev.type != "cpu" or not isinstance(model_or_cfg, ArchConfig) or input_shape is not None:
        return True
    cfg = model_or_cfg
    try:
        check_cpu_memory(cfg, cfg.name, (cfg.in_channels, cfg.input_size, cfg.input_size), batch, dtype, dev)
    except (ConfigError, LatencyError):
        return False
    return True


def measure_cuda_peak(cfg: ArchConfig, batch: int, dtype: str) -> tuple[int | None, str]:
    """Peak CUDA memory above weights and input during one inference pass (None on OOM)."""
    check_limits(cfg)  # the server's size limits apply where work starts
    dev = torch.device("cuda", torch.cuda.current_device())
    with exclusive_measurement():
        label = device_label(str(dev))
        model = x = None
        try:
            with torch.device(dev):
                model = build_model(cfg).eval().to(DTYPES[dtype])
            x = torch.randn(batch, cfg.in_channels, cfg.input_size, cfg.input_size,
                            device=dev, dtype=DTYPES[dtype])  # (B, C, H, W)
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
            with torch.inference_mode():
                model(x)
            torch.cuda.synchronize(dev)
            peak = torch.cuda.max_memory_allocated(dev) - base
        except torch.cuda.OutOfMemoryError:
            peak = None
        finally:
            del model, x
            torch.cuda.empty_cache()
    return peak, label
