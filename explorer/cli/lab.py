"""`lab`: train an experiment's variants on the digits and report the papers' claims tested."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from explorer.cli.common import load_config
from explorer.lab import (EXPERIMENTS, ExperimentResult, RunResult, estimate_time, get_experiment,
                          run_experiment)


def register(sub) -> None:
    p = sub.add_parser(
        "lab", help="train variants on handwritten digits: " + ", ".join(EXPERIMENTS),
        description="Train an experiment's networks on scikit-learn's 8x8 digits and print "
                    "the final loss and accuracies. Progress goes to stderr.",
    )
    p.add_argument("experiment", help="one of " + ", ".join(EXPERIMENTS))
    p.add_argument("--epochs", type=int, help="epochs per run (default: the experiment's)")
    p.add_argument("--seed", type=int, help="initialisation and batch-order seed (default 0)")
    p.add_argument("--optimizer", help="sgd (momentum 0.9) or adam")
    p.add_argument("--lr", type=float, help="learning rate (default 0.1 for sgd, 0.001 for adam)")
    p.add_argument("--batch-size", type=int, dest="batch_size", help="training batch size")
    p.add_argument("--max-train", type=int, dest="max_train",
                   help="train on the first N training images only")
    p.add_argument("--config", action="append", default=[], metavar="NAME|FILE.json",
                   help="a config for the custom experiment (repeat for several)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of every --config")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    exp = get_experiment(args.experiment)
    configs = [load_config(c, args.set) for c in args.config] or None
    overrides = dict(epochs=args.epochs, seed=args.seed, optimizer=args.optimizer, lr=args.lr,
                     batch_size=args.batch_size, max_train=args.max_train)
    # Checks every config and setting (and the size limits) before the header and any training.
    expected = estimate_time(exp, configs=configs, **overrides)
    total = len(configs or exp.configs)
    print(f"{exp.title}: {total} run{'s' if total != 1 else ''}, expected {expected.label}",
          file=sys.stderr, flush=True)
    shown: set[tuple[str, int]] = set()

    def on_update(partial: ExperimentResult) -> None:
        """One stderr line per finished epoch."""
        run = partial.runs[-1] if partial.runs else None
        if run is None or not run.history or (run.name, len(run.history)) in shown:
            return
        shown.add((run.name, len(run.history)))
        print(_progress_line(run, len(partial.runs), partial.total_runs), file=sys.stderr, flush=True)

    result = run_experiment(exp, configs=configs, on_update=on_update, **overrides)
    if args.json:
        sys.stdout.buffer.write(result.to_json_bytes() + b"\n")
        sys.stdout.flush()
    else:
        print_results(result)
    return 0


def _progress_line(run: RunResult, number: int, total: int) -> str:
    row = run.history[-1]
    return (f"[{number}/{total}] {row['run']} epoch {row['epoch']}/{run.settings.epochs}: "
            f"loss {row['train_loss']:.4f}  train {_pct(row['train_acc'])}  "
            f"val {_pct(row['val_acc'])}  ({row['seconds']:.1f} s)")


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def print_results(result: ExperimentResult, out=None) -> None:
    s = result.settings
    w = (out or sys.stdout).write
    w(f"{result.title}\n")
    w(f"  {s.optimizer} lr {s.resolved_lr:g} ({s.schedule}), batch {s.batch_size}, "
      f"{s.epochs} epochs, seed {s.seed}; {result.seconds:.1f} s"
      f"{' (cancelled)' if result.cancelled else ''}\n\n")
    rows = result.to_rows()
    width = max([len(r["run"]) for r in rows] + [3])
    w(f"  {'run':<{width}}  depth  span     params  train_loss  train_acc  val_acc  best_val  seconds\n")
    for r in rows:
        note = " diverged" if r["diverged"] else (" cancelled" if r["cancelled"] else "")
        w(f"  {r['run']:<{width}}  {r['depth']:>5}  {r['skip_span']:>4}  {r['params']:>9,}  "
          f"{_num(r['train_loss'], '10.4f')}  {_pct(r['train_acc']):>9}  {_pct(r['val_acc']):>7}  "
          f"{_pct(r['best_val_acc']):>8}  {r['seconds']:>7.1f}{note}\n")
