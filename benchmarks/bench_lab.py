"""Run the lab's ready experiments at their defaults; print wall time and final numbers per run.

    python benchmarks/bench_lab.py [EXPERIMENT ...] [--seed S] [--seeds N]

Each variant trains at N seeds (default lab.DEFAULT_SEEDS) in parallel worker processes where
there are cores; the table gives mean ± std over the seeds, and the conclusions under it.

Also prints this machine's calibration (the rates behind `estimate_seconds`; on the 2-core
reference machine they are the figures to store as `explorer.lab.estimate.REFERENCE`) and,
per experiment and per run, the estimate against the measured wall time, and the stored
`expected_seconds` (measured on the reference machine at one seed) against this machine's
when run with --seeds 1.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import torch  # noqa: E402

from explorer import lab  # noqa: E402
from explorer.lab.estimate import run_seconds  # noqa: E402

READY = [n for n in lab.EXPERIMENTS if n != "custom"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="*", default=READY, help="default: " + " ".join(READY))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=lab.DEFAULT_SEEDS)
    args = parser.parse_args()

    data = lab.load_digits()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {lab.TRAIN_THREADS} training thread(s) "
          f"per run, {args.seeds} seeds on {lab.workers_for(args.seeds)} worker(s)")
    start = time.perf_counter()
    cal = lab.calibrate()
    print(f"calibration ({time.perf_counter() - start:.2f} s): {cal.seconds_per_mac:.3g} s per MAC, "
          f"{cal.seconds_per_layer_step:.3g} s per layer-step, {cal.seconds_per_layer_build:.3g} s "
          f"per layer built (reference: {lab.REFERENCE.seconds_per_mac:.3g}, "
          f"{lab.REFERENCE.seconds_per_layer_step:.3g}, {lab.REFERENCE.seconds_per_layer_build:.3g})")
    ratios = []
    for name in args.experiments:
        exp = lab.get_experiment(name)
        expected = lab.estimate_seconds(name, seed=args.seed, seeds=args.seeds)
        start = time.perf_counter()
        res = lab.run_experiment(name, seed=args.seed, seeds=args.seeds)
        wall = time.perf_counter() - start
        ratios.append(expected / wall)
        s = res.settings
        runs = lab.prepare_runs(name, seed=args.seed, seeds=args.seeds)
        print(f"\n{name}: {exp.title}")
        print(f"  {s.optimizer} lr {s.resolved_lr:g} ({s.schedule}), batch {s.batch_size}, "
              f"{s.epochs} epochs, seeds {', '.join(map(str, res.seeds))}")
        print(f"  {'run':<30}{'depth':>6}{'train_loss':>20}{'val_acc':>16}{'run s':>8}{'estimate':>10}")
        for row, size in zip(res.to_rows(), runs.sizes):
            est = run_seconds(size, s, len(data.x_train), len(data.x_val), cal)
            loss = lab.format_spread(res.spread_of(row["run"], "train_loss"), "train_loss")
            acc = lab.format_spread(res.spread_of(row["run"], "val_acc"), "val_acc")
            print(f"  {row['run']:<30}{row['depth']:>6}{loss:>20}{acc:>16}"
                  f"{row['seconds'] / max(row['seeds'], 1):>8.1f}{est:>10.1f}"
                  f"{'  diverged' if row['diverged'] else ''}")
        for line in res.conclusion_lines():
            print(f"  {line}")
        stored = exp.expected_seconds if args.seeds == 1 else None  # recorded at one seed
        print(f"  wall {wall:.1f} s; estimate {expected:.1f} s (estimate / wall {expected / wall:.2f})"
              + (f"; reference machine {stored} s (this machine / reference {wall / stored:.2f})"
                 if stored else ""))
    if ratios:
        print(f"\nestimate / wall: {', '.join(f'{r:.2f}' for r in ratios)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
