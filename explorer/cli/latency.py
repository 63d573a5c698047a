"""`latency`: measured forward-pass time on the best (or a chosen) device, a batch sweep, or a
per-layer profile."""
from __future__ import annotations

import argparse
import json
import sys

from explorer.cli.common import add_config_args, load_config
from explorer.cli.runs import add_store_args, run_keeper
from explorer.errors import ConfigError
from explorer.labels import fmt_bytes, fmt_ms, fmt_rate, fmt_share
from explorer.limits import LATENCY_BUDGET_S, PROFILE_BUDGET_S, SWEEP_BUDGET_S
from explorer.runs import Keeper
from explorer.runs.timing_runs import kept_measurement, run_settings
from explorer.timing import (
    DEVICES, DTYPES, NOISY_IQR, PROFILE_TOP, LatencyResult, ProfileResult, SweepResult, batch_sweep,
    measure_latency, profile_latency,
)


def register(sub) -> None:
    p = sub.add_parser("latency", help="measured latency and throughput (CUDA when present, else CPU)")
    add_config_args(p)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--batch", type=int, default=1, help="images per forward pass (default 1)")
    p.add_argument("--dtype", default="fp32", help="fp32 | bf16 | fp16 (fp16 on CUDA only)")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    p.add_argument("--compile", action="store_true", help="torch.compile first; compile time reported apart")
    p.add_argument("--budget", type=float, default=None, metavar="S",
                   help=f"seconds of warm-up plus timing (default {LATENCY_BUDGET_S:g}; {SWEEP_BUDGET_S:g} for "
                        f"--sweep; {PROFILE_BUDGET_S:g} for --profile)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--sweep", action="store_true", help="batch sweep 1, 8, 32, 128, ... within the budget")
    p.add_argument("--profile", action="store_true",
                   help="per-layer profile: time of every module and of the residual additions")
    p.add_argument("--top", type=int, default=PROFILE_TOP, metavar="N",
                   help=f"--profile: modules listed (default {PROFILE_TOP})")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_store_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.set)
    result = measure(cfg, args, run_keeper(args))
    if args.json:
        doc = {"config": cfg.to_dict(), **result.to_dict()}
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif isinstance(result, ProfileResult):
        print_profile(result, args.top)
    elif isinstance(result, SweepResult):
        print_sweep(cfg.name, result)
    else:
        print_result(result)
    return 0


def measure(cfg, args: argparse.Namespace, keeper: Keeper | None = None) -> LatencyResult | SweepResult | ProfileResult:
    """The latency, sweep or profile the arguments ask for, each at its own default budget, kept
    by `keeper` as it ends (complete, cancelled or failed)."""
    options = dict(device=args.device, dtype=args.dtype, channels_last=args.channels_last, threads=args.threads)
    if args.profile:
        if args.sweep or args.compile:
            flag = "--sweep" if args.sweep else "--compile"
            raise ConfigError(flag, True, "not with --profile",
                              "A profile hooks the modules of one eager (uncompiled) model at one batch")
        if args.top < 1:
            raise ConfigError("--top", args.top, "a positive number of modules")
        kind, work = "profile", profile_latency
        options.update(batch=args.batch, budget_s=PROFILE_BUDGET_S if args.budget is None else args.budget)
    elif args.sweep:
        kind, work = "sweep", batch_sweep  # its own batch sizes, never compiled
        options.update(budget_s=SWEEP_BUDGET_S if args.budget is None else args.budget)
    else:
        kind, work = "latency", measure_latency
        options.update(batch=args.batch, compile=args.compile,
                       budget_s=LATENCY_BUDGET_S if args.budget is None else args.budget)
    return kept_measurement(keeper, kind, cfg, run_settings(kind, options),
                            lambda progress: work(cfg, progress=progress, **options))


def print_result(r: LatencyResult, out=None) -> None:
    w = (out or sys.stdout).write
    layout = ", channels_last" if r.channels_last else ""
    w(f"{r.name} on {r.device_name}, torch {r.torch_version}\n")
    w(f"  batch {r.batch} {r.dtype}{layout}{', compiled' if r.compile else ''}: "
      f"median {fmt_ms(r.median_ms)} (p10 {fmt_ms(r.p10_ms)}, p90 {fmt_ms(r.p90_ms)}, IQR {fmt_ms(r.iqr_ms)})\n")
    w(f"  throughput {fmt_rate(r.throughput, 'images/s')}; {r.samples} samples after {r.warmup} warm-up passes "
      f"in {fmt_ms(1000 * r.elapsed_s)}\n")
    if r.compile_s is not None:
        w(f"  compile    {fmt_ms(1000 * r.compile_s)} (first pass, not in the figures above)\n")
    if r.peak_memory_bytes is not None:
        w(f"  memory     {fmt_bytes(r.peak_memory_bytes)} peak above weights and input\n")
    if r.noisy:
        w(f"  warning: noisy: the spread (IQR) is over {NOISY_IQR:.0%} of the median; compare with care\n")
    for note in r.warnings:
        w(f"  warning: {note}\n")


def print_sweep(name: str, s: SweepResult, out=None) -> None:
    w = (out or sys.stdout).write
    w(f"{name} batch sweep on {s.device_name}\n")
    w("   batch      median         p10         p90   per image      images/s  samples\n")
    for r in s.rows:
        w(f"  {r.batch:>6}{fmt_ms(r.median_ms):>12}{fmt_ms(r.p10_ms):>12}{fmt_ms(r.p90_ms):>12}"
          f"{fmt_ms(r.ms_per_image):>12}{fmt_rate(r.throughput, ''):>14}{r.samples:>9}"
          f"{'  noisy' if r.noisy else ''}\n")
    w(f"  {s.stop_text()}\n")
    for note in s.warnings:
        w(f"  warning: {note}\n")


def print_profile(p: ProfileResult, top: int = PROFILE_TOP, out=None) -> None:
    w = (out or sys.stdout).write
    layout = ", channels_last" if p.channels_last else ""
    w(f"{p.name} per-layer profile on {p.device_name}, torch {p.torch_version}\n")
    w(f"  batch {p.batch} {p.dtype}{layout}; {p.method}; {p.passes} profiled passes between as many plain ones\n")
    shown = p.top(top)
    width = max([len("module"), *(len(r.module) for r in shown)])
    w(f"  {'module':<{width}}  {'kind':<8} {'stage':<7} {'time':>9} {'share':>7}\n")
    for r in shown:
        w(f"  {r.module:<{width}}  {r.kind:<8} {r.stage:<7} {fmt_ms(r.ms):>9} {fmt_share(r.share):>7}\n")
    if len(p.rows) > len(shown):
        rest = sum(r.ms for r in p.rows) - sum(r.ms for r in shown)
        w(f"  ... {len(p.rows) - len(shown)} more rows, {fmt_ms(rest)} ({fmt_share(rest / p.total_ms)})\n")
    w("  stages: " + ", ".join(f"{s} {fmt_share(share)}" for s, _ms, share in p.stages) + "\n")
    w(f"  sum check: rows {fmt_ms(p.total_ms)} = {fmt_share(p.coverage)} of the whole-model median "
      f"{fmt_ms(p.whole_ms)}; {fmt_ms(p.unattributed_ms)} between modules in no row; instrumentation overhead "
      f"{'+' if p.overhead >= 0 else ''}{fmt_share(p.overhead)}\n")
    if p.note:
        w(f"  note: {p.note}\n")
    for note in p.warnings:
        w(f"  warning: {note}\n")


__all__ = ["register", "run", "DEVICES", "DTYPES"]
