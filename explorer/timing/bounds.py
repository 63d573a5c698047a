"""How long one pass must at least take, from its multiply-adds, before anything is built.

The rates below are optimistic on purpose (faster than the machines this runs on), so the
estimate is a lower bound: a pass it puts far over a measurement's budget is refused up front,
with the estimate, instead of running for minutes on a shared server. A pass it lets through is
bounded again by the first pass actually run (passes.Clock).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from explorer.arch.config import ArchConfig
from explorer.errors import LatencyError
from explorer.facts.limits import check_limits
from explorer.limits import MAX_PASS_BUDGETS

if TYPE_CHECKING:
    from explorer.timing.core import Run

CPU_MACS_PER_THREAD_S = 50e9    # multiply-adds a second one CPU thread may reach (wide SIMD, fp32)
CUDA_MACS_S = {"fp32": 100e12, "bf16": 500e12, "fp16": 500e12}  # a large data-centre GPU, dense


def pass_macs(cfg: ArchConfig | None, shape: tuple[int, ...], batch: int) -> int | None:
    """Multiply-adds of one pass of `batch` images of `shape` (C, H, W), or None without a config."""
    if cfg is None or len(shape) != 3:
        return None
    per_image = check_limits(cfg).macs * (shape[1] * shape[2]) / max(cfg.input_size ** 2, 1)
    return int(per_image * batch)


def least_pass_s(macs: int, dev: torch.device, dtype: str, threads: int) -> float:
    """The least seconds a pass of `macs` multiply-adds can take on `dev`."""
    rate = CUDA_MACS_S.get(dtype, CUDA_MACS_S["fp32"]) if dev.type == "cuda" else CPU_MACS_PER_THREAD_S * threads
    return macs / rate


class OverBudget(LatencyError):
    """One pass alone would take (or took) far longer than the measurement's budget."""


def refuse_over_budget(name: str, least_s: float, budget_s: float, what: str = "") -> None:
    """OverBudget when one pass alone (at least `least_s`) would take over MAX_PASS_BUDGETS budgets."""
    if budget_s > 0 and least_s > MAX_PASS_BUDGETS * budget_s:
        raise OverBudget(
            (f"{name}: " if name else "")
            + f"one forward pass {what}takes about {fmt_s(least_s)} or more, far over this "
            f"measurement's {budget_s:g} s budget; lower the input size or the batch, or give it a "
            "larger budget where one can be given")


def fmt_s(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def check_pass_budget(run: "Run", cfg: ArchConfig | None, batch: int) -> None:
    """Refuse, before anything is built, a run whose one pass would far exceed its budget."""
    macs = pass_macs(cfg, run.shape, batch)
    if macs is not None:
        least = least_pass_s(macs, run.dev, run.dtype, run.threads)
        refuse_over_budget(run.name, least, run.budget_s, f"of batch {batch} ({macs / 1e9:,.0f} GMACs) ")
