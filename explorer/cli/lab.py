"""`lab`: train an experiment's variants on the digits at several seeds and report the papers'
claims tested, each with its spread."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from contextlib import contextmanager, redirect_stdout
from typing import Any, Iterator, get_args

from explorer.cli.common import load_config
from explorer.cli.runs import add_store_args, run_keeper
from explorer.labels import fmt_duration, fmt_num, fmt_share
from explorer.lab import (DEFAULT_SEEDS, EXPERIMENTS, RULE, TRAIN_THREADS, EpochRecord, LabResult, RunResult,
                          estimate_time, format_spread, get_experiment, prepare_runs, run_experiment)
from explorer.lab.ray_runs import EXECUTORS, Executor
from explorer.lab.data import DATA_DIR_VAR, DATASETS
from explorer.lab.settings import Device, Recipe
from explorer.lab.training import torch_threads
from explorer.runs.lab_runs import LabRecorder

INTERRUPTED = 130  # exit status after Ctrl-C (128 + SIGINT), with the partial results printed
STOPPED = "Stopped (Ctrl-C)"


def register(sub) -> None:
    p = sub.add_parser(
        "lab", help="train variants on handwritten digits or CIFAR: " + ", ".join(EXPERIMENTS),
        description="Train an experiment's networks on scikit-learn's 8x8 digits (or CIFAR-10/100) at several seeds "
                    "and print the mean and standard deviation of the final loss and accuracies, "
                    "and which differences exceed the spread. Progress goes to stderr; Ctrl-C "
                    "stops and prints what finished.",
    )
    p.add_argument("experiment", help="one of " + ", ".join(EXPERIMENTS))
    p.add_argument("--epochs", type=int, help="epochs per run (default: the experiment's)")
    p.add_argument("--seed", type=int, help="first initialisation and batch-order seed (default 0)")
    p.add_argument("--seeds", type=int, default=DEFAULT_SEEDS,
                   help=f"seeds per variant: --seed, --seed + 1, ... (default {DEFAULT_SEEDS}); "
                        "they train in parallel processes, one per core")
    p.add_argument("--optimizer", help="sgd (momentum 0.9) or adam")
    p.add_argument("--lr", type=float, help="learning rate (default 0.1 for sgd, 0.001 for adam)")
    p.add_argument("--batch-size", type=int, dest="batch_size", help="training batch size")
    p.add_argument("--max-train", type=int, dest="max_train",
                   help="train on the first N training images only")
    p.add_argument("--dataset", choices=DATASETS,
                   help="digits (embedded, the default) or cifar10 / cifar100 (from --data-dir)")
    p.add_argument("--data-dir", dest="data_dir", metavar="DIR",
                   help="where CIFAR's official python archive (.tar.gz) or its extracted folder lies "
                        f"(default: ${DATA_DIR_VAR}, else $XDG_DATA_HOME/resnet-explorer/data)")
    p.add_argument("--download", action="store_true",
                   help="fetch the CIFAR archive into --data-dir when it is not there (MD5 verified)")
    p.add_argument("--recipe", choices=get_args(Recipe),
                   help="quick (the default: a few epochs) or paper (He et al. 2015: SGD 0.9, weight "
                        "decay 1e-4, batch 128, lr 0.1 / 10 at 32k and 48k of 64k iterations)")
    p.add_argument("--iterations", type=int, help="optimiser steps per run (the paper recipe: 64000)")
    p.add_argument("--device", choices=get_args(Device),
                   help="auto (a CUDA GPU for CIFAR when there is one, bf16; the default), cpu or cuda")
    p.add_argument("--config", action="append", default=[], metavar="NAME|FILE.json",
                   help="a config for the custom experiment (repeat for several)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of every --config")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="where the runs train: local (this machine's worker processes, the default) "
                        "or ray (each variant x seed a Ray task: one GPU each where the cluster has "
                        "GPUs, else one CPU)")
    p.add_argument("--ray-address", dest="ray_address", metavar="ADDR",
                   help="with --executor ray: the address of a running Ray cluster (host:6379, or "
                        "auto); without it a local Ray cluster is started")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    add_store_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    exp = get_experiment(args.experiment)
    configs = [load_config(c, args.set) for c in args.config] or None
    overrides = dict(epochs=args.epochs, seed=args.seed, optimizer=args.optimizer, lr=args.lr,
                     batch_size=args.batch_size, max_train=args.max_train, dataset=args.dataset,
                     data_dir=args.data_dir, recipe=args.recipe, iterations=args.iterations, device=args.device)
    # Checks every config and setting (and the size limits) and reads (or fetches) the data
    # before the header and any training.
    runs = prepare_runs(exp, configs=configs, seeds=args.seeds, download=args.download, **overrides)
    executor = Executor(args.executor, args.ray_address, on_note=lambda text: print(text, file=sys.stderr, flush=True))
    # The command owns its process (nothing measures here): its runs train at TRAIN_THREADS, as
    # the workers do; on a busy machine one thread per run trains several times faster than two.
    # stdout carries only the results: what Ray prints there (a worker lost) goes to stderr
    with torch_threads(TRAIN_THREADS), _ctrl_c_stops() as interrupted, redirect_stdout(sys.stderr):
        expected = estimate_time(exp, configs=configs, seeds=args.seeds, **overrides)
        workers = runs.workers if executor.kind == "local" else 0
        print(_header(exp.title, len(runs.configs), len(runs.seeds), workers)
              + (f", expected {expected.label}" if workers else ""), file=sys.stderr, flush=True)
        recorder = LabRecorder(run_keeper(args))  # every run kept as each of its epochs ends
        printer = _progress_printer()

        def on_update(partial: LabResult) -> None:
            printer(partial)
            recorder.update(partial)

        result = run_experiment(runs, on_update=on_update, on_end=recorder.finish, should_stop=interrupted.is_set,
                                executor=executor)
    if args.json:
        if result.cancelled:  # the JSON has it too (`stop_message`); said here for the terminal
            print(result.stop_message(cause=STOPPED), file=sys.stderr, flush=True)
        sys.stdout.buffer.write(result.to_json_bytes() + b"\n")
        sys.stdout.flush()
    else:
        print_results(result)
    return INTERRUPTED if interrupted.is_set() else 0


def _progress_printer():
    """An `on_update` that prints one stderr line per finished epoch of any run."""
    shown: set[tuple[str, int, int]] = set()

    def on_update(partial: LabResult) -> None:
        for run in partial.runs:
            for record in run.history:
                if (run.name, run.seed, record.epoch) not in shown:
                    shown.add((run.name, run.seed, record.epoch))
                    print(_progress_line(partial, run, record), file=sys.stderr, flush=True)
    return on_update


@contextmanager
def _ctrl_c_stops() -> Iterator[threading.Event]:
    """The first Ctrl-C sets the event (the run stops at its next batch and keeps its results);
    a second one interrupts as usual."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        stop.set()
        signal.signal(signal.SIGINT, previous)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _header(title: str, variants: int, seeds: int, workers: int) -> str:
    text = f"{title}: {variants} run{'s' if variants != 1 else ''}"
    if seeds > 1:
        text += (f" x {seeds} seeds on {workers} worker process{'es' if workers != 1 else ''}"
                 if workers > 1 else f" x {seeds} seeds")
    return text


def _progress_line(result: LabResult, run: RunResult, record: EpochRecord) -> str:
    n_seeds = len(result.seeds)
    variant = result.variants().index(run.name)
    number = variant * n_seeds + result.seeds.index(run.seed) + 1
    seed = f" seed {run.seed}" if n_seeds > 1 else ""
    return (f"[{number}/{result.total_runs}] {record.run}{seed} epoch {record.epoch}/{run.settings.epochs}: "
            f"loss {_num(record.train_loss)}  train {_pct(record.train_acc)}  "
            f"val {_pct(record.val_acc)}  ({fmt_duration(record.seconds)})")


def _pct(value: Any) -> str:
    return "-" if value is None else fmt_share(value)


def _num(value: Any) -> str:
    return "-" if value is None else fmt_num(value)


def print_results(result: LabResult, out=None) -> None:
    s = result.settings
    w = (out or sys.stdout).write
    seeds = ", ".join(map(str, result.seeds))
    w(f"{result.title}\n")
    budget = f"{s.iterations} iterations ({s.epochs} epochs)" if s.iterations is not None else f"{s.epochs} epochs"
    w(f"  {s.dataset}, {s.recipe} recipe: {s.optimizer} lr {s.resolved_lr:g} ({s.schedule}), batch {s.batch_size}, "
      f"{budget}, seed{'s' if len(result.seeds) > 1 else ''} {seeds}; {fmt_duration(result.seconds)}"
      f"{' on ' + str(result.workers) + ' worker processes' if result.workers > 1 else ''}"
      f"{' (cancelled)' if result.cancelled else ''}\n")
    if result.cancelled:
        w(f"  {result.stop_message(cause=STOPPED)}\n")
    w("\n")
    rows = result.to_rows()
    width = max([len(r["run"]) for r in rows] + [3])
    w(f"  {'run':<{width}}  depth  span     params  seeds        train_loss  train_acc        val_acc"
      f"  best_val  seconds\n")
    for r in rows:
        note = " diverged" if r["diverged"] else (" cancelled" if r["cancelled"] else "")
        if r["cancelled"] and r["epochs"]:
            note += f" (at epoch {r['epochs']})"
        loss = format_spread(result.spread_of(r["run"], "train_loss"), "train_loss")
        acc = format_spread(result.spread_of(r["run"], "val_acc"), "val_acc")
        w(f"  {r['run']:<{width}}  {r['depth']:>5}  {r['skip_span']:>4}  {r['params']:>9,}  {r['seeds']:>5}  "
          f"{loss:>16}  {_pct(r['train_acc']):>9}  {acc:>13}  {_pct(r['best_val_acc']):>8}  "
          f"{r['seconds']:>7.1f}{note}\n")
    lines = result.conclusion_lines()
    if lines:
        w("\n  mean ± std over seeds. " + RULE + "\n")
        for line in lines:
            w(f"  {line}\n")
