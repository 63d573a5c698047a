"""Run the lab's ready experiments at their defaults; print wall time and final numbers per run.

    python benchmarks/bench_lab.py [EXPERIMENT ...] [--seed S]

Also compares each experiment's wall time with its stored `expected_seconds` and refits the
time model behind `estimate_seconds` (seconds per multiply-add and per layer-step) from the
runs just made plus a short multiply-add-heavy calibration run (resnet18's widths), so both
constants can be updated from one measurement.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import torch  # noqa: E402

from explorer import lab, preset  # noqa: E402
from explorer.facts.summary import measure_summary  # noqa: E402

READY = [n for n in lab.EXPERIMENTS if n != "custom"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="*", default=READY, help="default: " + " ".join(READY))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    fit_rows = []  # (macs x samples, layer-steps, epoch seconds)
    data = lab.load_digits()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {lab.TRAIN_THREADS} training thread(s)")
    for name in args.experiments:
        exp = lab.get_experiment(name)
        start = time.perf_counter()
        res = lab.run_experiment(name, seed=args.seed)
        wall = time.perf_counter() - start
        s = res.settings
        print(f"\n{name}: {exp.title}")
        print(f"  {s.optimizer} lr {s.resolved_lr:g} ({s.schedule}), batch {s.batch_size}, "
              f"{s.epochs} epochs, seed {s.seed}")
        print(f"  {'run':<30}{'depth':>6}{'train_loss':>12}{'train_acc':>11}{'val_acc':>9}"
              f"{'best_val':>10}{'seconds':>9}")
        for row in res.to_rows():
            print(f"  {row['run']:<30}{row['depth']:>6}{row['train_loss']:>12.4f}"
                  f"{100 * row['train_acc']:>10.1f}%{100 * row['val_acc']:>8.1f}%"
                  f"{100 * row['best_val_acc']:>9.1f}%{row['seconds']:>9.1f}"
                  f"{'  diverged' if row['diverged'] else ''}")
        ratio = wall / exp.expected_seconds if exp.expected_seconds else float("nan")
        print(f"  wall {wall:.1f} s; stored expected_seconds {exp.expected_seconds} "
              f"(ratio {ratio:.2f}); model estimate {lab.estimate_seconds(exp.configs):.1f} s")
        fit_rows += _fit_rows(res, len(data.x_val))
    # The ready nets all have about the same multiply-adds per layer; a wide net separates
    # the two terms of the time model.
    calib = lab.run_experiment([preset("resnet18")], epochs=3, seed=args.seed)
    print(f"\ncalibration: resnet18 widths on the digits, 3 epochs, {calib.seconds:.1f} s "
          f"(model estimate {lab.estimate_seconds([preset('resnet18')], epochs=3):.1f} s)")
    fit_rows += _fit_rows(calib, len(data.x_val))
    if len(fit_rows) >= 2:
        a = torch.tensor([r[:2] for r in fit_rows], dtype=torch.float64)
        b = torch.tensor([r[2] for r in fit_rows], dtype=torch.float64)
        coef = torch.linalg.lstsq(a, b.unsqueeze(1)).solution.flatten()
        print(f"\nfitted time model: SECONDS_PER_MAC = {coef[0]:.3g} (stored {lab.SECONDS_PER_MAC:.3g}), "
              f"SECONDS_PER_LAYER_STEP = {coef[1]:.3g} (stored {lab.SECONDS_PER_LAYER_STEP:.3g})")
    return 0


def _fit_rows(res: lab.ExperimentResult, n_val: int) -> list[tuple[float, float, float]]:
    """(multiply-adds x samples, layer-steps, seconds) per epoch, the first (warm-up) left out."""
    rows = []
    for run in res.runs:
        info = measure_summary(run.config)
        steps = -(-run.n_train // run.settings.batch_size)
        for h in run.history[1:]:
            rows.append((info["macs"] * (3 * run.n_train + n_val), info["depth"] * steps, h["seconds"]))
    return rows


if __name__ == "__main__":
    sys.exit(main())
