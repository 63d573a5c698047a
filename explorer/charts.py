"""Axes for the charts: log axes whose ticks read as values ("0.5, 1, 2, 5, 10", not plotly's
bare mantissas "5, 2, 10, 5"), and the measured points of a sweep as an axis's ticks."""
from __future__ import annotations

import math
from typing import Iterable

MANTISSAS = ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9))  # coarse to fine
MAX_TICKS = 9   # beyond this many, the next coarser set of ticks


def tick_text(v: float) -> str:
    """A tick's value in full, never an exponent: "20,000", "2.5", "0.05", "0.0002"."""
    return f"{float(f'{v:.3g}'):,.12f}".rstrip("0").rstrip(".")


def log_axis(values: Iterable[float]) -> dict:
    """A log axis over the positive values: its range, and ticks at 1-2-5 (finer or coarser to
    keep 3 to MAX_TICKS of them) labelled with their values."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v)) and float(v) > 0]
    if not vals:
        return dict(type="log")
    lo, hi = math.log10(min(vals)), math.log10(max(vals))
    pad = max(0.05, 0.05 * (hi - lo))
    lo, hi = lo - pad, hi + pad
    ticks: list[float] = []
    for mantissas in MANTISSAS:
        found = [m * 10.0 ** e for e in range(math.floor(lo), math.ceil(hi) + 1) for m in mantissas
                 if lo <= math.log10(m * 10.0 ** e) <= hi]
        if len(found) > MAX_TICKS and ticks:
            break
        ticks = found
        if len(found) >= 3:
            break
    if len(ticks) < 2:  # within less than a 1-2-5 step: the ends and the middle, to two figures
        ticks = sorted({float(f"{10 ** x:.2g}") for x in (lo + pad, (lo + hi) / 2, hi - pad)})
    ticks = [float(f"{t:.2g}") for t in ticks]  # 2 * 10**-3 as 0.002, not 0.0020000000000000005
    return dict(type="log", range=[lo, hi], tickvals=ticks, ticktext=[tick_text(t) for t in ticks])


def measured_axis(values: Iterable[float]) -> dict:
    """A log axis whose ticks are the measured values themselves (a sweep's batch sizes)."""
    ticks = sorted(set(values))
    exact = [f"{int(t):,}" if float(t).is_integer() else tick_text(t) for t in ticks]  # batch 2,048, not 2,050
    return dict(type="log", tickvals=ticks, ticktext=exact)
