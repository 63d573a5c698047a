"""Spread across seeds, and the rule that decides when one variant beats another.

A claim is read off means over seeds, and only where the gap between two means is larger than
the noise of training: `judge` calls a variant better when the difference of the means exceeds
the sum of the two (sample) standard deviations, i.e. when the mean ± std bands of the charts
do not overlap. Otherwise there is no difference at this budget.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Literal, Sequence

from explorer.labels import fmt_num

Metric = Literal["train_loss", "val_acc"]
METRICS: dict[str, tuple[str, bool]] = {   # metric -> (label, lower is better)
    "train_loss": ("training loss", True),
    "val_acc": ("validation accuracy", False),
}
RULE = ("A variant is called better only where its mean differs from the other's by more than "
        "the sum of their standard deviations across seeds (the mean ± std bands do not "
        "overlap); otherwise: no difference at this budget.")
NO_DIFFERENCE = "no difference at this budget"


@dataclass(frozen=True)
class Spread:
    """One number of one variant across its seeds."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (n - 1); None below two seeds, where it is unknown."""
        if self.n < 2 or not all(math.isfinite(v) for v in self.values):
            return None if self.n < 2 else math.nan
        return statistics.stdev(self.values)

    @property
    def min(self) -> float | None:
        return min(self.values) if self.values else None

    @property
    def max(self) -> float | None:
        return max(self.values) if self.values else None


def spread(values: Sequence[float | None]) -> Spread:
    """A Spread of the given numbers (None, a missing result, is left out)."""
    return Spread(tuple(float(v) for v in values if v is not None))


@dataclass(frozen=True)
class Verdict:
    """Variant `a` against variant `b` on one metric."""

    metric: str
    a: str
    b: str
    spread_a: Spread
    spread_b: Spread
    better: str | None       # the better variant's name; None: no difference at this budget
    reason: str = ""         # why no verdict could be reached, when it could not
    cut_short: tuple[str, ...] = ()  # variants whose numbers come from runs a stop cut short: not judged

    @property
    def gap(self) -> float | None:
        """|mean a - mean b|."""
        if self.spread_a.mean is None or self.spread_b.mean is None:
            return None
        return abs(self.spread_a.mean - self.spread_b.mean)

    @property
    def text(self) -> str:
        label, lower = METRICS[self.metric]
        a, b = format_spread(self.spread_a, self.metric), format_spread(self.spread_b, self.metric)
        means = [format_spread(Spread((x.mean,)), self.metric) for x in (self.spread_a, self.spread_b)]
        if self.better is not None and means[0] == means[1]:
            # a real gap that three figures would hide: more figures
            a, b = (format_spread(s, self.metric, figures=5) for s in (self.spread_a, self.spread_b))
        numbers = f"{a} vs {b}"
        if self.cut_short:
            names = " and ".join(self.cut_short)
            return f"{label}: not judged, {names} {'was' if len(self.cut_short) == 1 else 'were'} cut short ({numbers})"
        if self.better is None:
            return f"{label}: {NO_DIFFERENCE}{self.reason} ({numbers})"
        word = ("lower" if lower else "higher")
        return f"{label}: {self.better} {word} ({numbers})"


def judge(a: str, spread_a: Spread, b: str, spread_b: Spread, metric: Metric) -> Verdict:
    """The better of `a` and `b` on `metric` under RULE, or no difference (`better` None)."""
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r}: one of {', '.join(METRICS)}")
    if spread_a.n < 2 or spread_b.n < 2:
        return Verdict(metric, a, b, spread_a, spread_b, None, reason=" (one seed has no spread: run two or more)")
    mean_a, mean_b, std_a, std_b = spread_a.mean, spread_b.mean, spread_a.std, spread_b.std
    if not all(math.isfinite(v) for v in (mean_a, mean_b, std_a, std_b)):
        return Verdict(metric, a, b, spread_a, spread_b, None, reason=" (a run diverged)")
    if abs(mean_a - mean_b) <= std_a + std_b:
        return Verdict(metric, a, b, spread_a, spread_b, None)
    lower_is_better = METRICS[metric][1]
    a_wins = (mean_a < mean_b) == lower_is_better
    return Verdict(metric, a, b, spread_a, spread_b, a if a_wins else b)


def format_spread(s: Spread, metric: str, figures: int = 3) -> str:
    """'2.33 ± 0.012' (loss) or '96.9 ± 0.40 %' (accuracy): the mean to three significant
    figures, as in the Lab's tables (more `figures` tell close means apart); no ± with one seed."""
    if s.mean is None:
        return "-"
    pct = metric.endswith("_acc")
    scale = 100.0 if pct else 1.0
    fmt = fmt_num if figures == 3 else (lambda v: _fixed(v, figures))
    text = fmt(scale * s.mean) if s.std is None else f"{fmt(scale * s.mean)} ± {fmt_num(scale * s.std)}"
    return text + (" %" if pct else "")


def _fixed(v: float, figures: int) -> str:
    """`v` to `figures` significant figures, never with an exponent."""
    if not math.isfinite(v) or v == 0:
        return fmt_num(v)
    return f"{v:.{max(0, figures - 1 - math.floor(math.log10(abs(v))))}f}"
