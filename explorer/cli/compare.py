"""`compare`: several configs side by side, one row each (params, MACs, depth, memory, latency)."""
from __future__ import annotations

import argparse
import json
import sys

from explorer.arch.config import ArchConfig
from explorer.arch.presets import display_name, named_for_changes
from explorer.cli.common import load_config
from explorer.cli.runs import add_store_args
from explorer.compare import compare_table, differing_keys, to_csv_bytes
from explorer.diff import count_line, diff_configs, diff_document, total_line
from explorer.errors import ConfigError
from explorer.limits import LATENCY_BUDGET_S


def register(sub) -> None:
    p = sub.add_parser("compare", help="several configs side by side")
    p.add_argument("configs", nargs="+", metavar="NAME|FILE.json", help="preset names or JSON files")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key in every config (value parsed as JSON when it parses)")
    p.add_argument("--batch", type=int, default=1, help="batch for memory and latency (default 1)")
    p.add_argument("--latency", action="store_true", help="also measure latency (seconds per config)")
    p.add_argument("--device", default="auto", help="latency device: auto | cpu | cuda (default auto)")
    p.add_argument("--budget", type=float, default=LATENCY_BUDGET_S, metavar="S",
                   help=f"seconds of timing per config (default {LATENCY_BUDGET_S:g})")
    p.add_argument("--json", action="store_true", help="print rows as JSON")
    p.add_argument("--csv", action="store_true", help="print rows as CSV")
    p.add_argument("--diff", action="store_true",
                   help="with two configs: list what changes from the first to the second, unit by unit")
    add_store_args(p)
    p.set_defaults(func=run)


def kept_timer(args: argparse.Namespace):
    """What times each config of `compare --latency`, keeping each measurement as a "compare" run."""
    from explorer.cli.runs import run_keeper
    from explorer.runs.timing_runs import kept_measurement, run_settings
    from explorer.timing import measure_latency

    keeper = run_keeper(args)

    def measure(cfg: ArchConfig, options: dict):
        return kept_measurement(keeper, "compare", cfg, run_settings("compare", options),
                                lambda progress: measure_latency(cfg, progress=progress, **options))
    return measure


def run(args: argparse.Namespace) -> int:
    # A changed preset is listed under its display name ("resnet50 (skip_span 1)"), as the app names it.
    cfgs = [named_for_changes(load_config(source, args.set)) for source in args.configs]
    if args.diff and len(cfgs) != 2:
        raise ConfigError("--diff", f"{len(cfgs)} configs", "exactly two configs (A B)")
    latency = {"device": args.device, "budget_s": args.budget} if args.latency else None
    rows = compare_table(cfgs, latency=latency, batch=args.batch, measure=kept_timer(args) if latency else None)
    if args.json:
        doc = {"differing_keys": differing_keys(cfgs), "rows": rows}
        if args.diff:
            d = diff_document(*cfgs)
            doc["diff"], doc["diff_total"] = d["diff"], d["diff_total"]
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif args.csv:
        sys.stdout.write(to_csv_bytes(rows).decode("utf-8"))
    else:
        print_table(rows, differing_keys(cfgs))
        if args.diff:
            print_diff(*cfgs)
    return 0


def print_diff(a: ArchConfig, b: ArchConfig, out=None) -> None:
    """The changes from `a` to `b`, one line each, then the total."""
    w = (out or sys.stdout).write
    changes = diff_configs(a, b)
    w(f"\n{display_name(a)} -> {display_name(b)}: ")
    if not changes:
        w("no structural differences (the same network is built)\n")
        return
    w(count_line(changes) + "\n")
    for c in changes:
        w(f"  {c.text()}  [{c.kind}]\n")
    w("  " + total_line(a, b) + "\n")


def print_table(rows, differing, out=None) -> None:
    w = (out or sys.stdout).write
    if differing:
        w("differs in: " + ", ".join(differing) + "\n")
    timed = any("median_ms" in r for r in rows)
    head = (f"{'name':<22}{'params':>13}{'GMACs':>8}{'depth':>7}{'proj':>6}{'act MiB':>9}{'peak MiB':>10}"
            f"{'RF px':>7}")
    if timed:
        head += f"{'ms':>10}{'img/s':>10}"
    w(head + "\n")
    for r in rows:
        line = (f"{r['name'][:21]:<22}{r['params']:>13,}{r['macs'] / 1e9:>8.3f}{r['depth']:>7}{r['projections']:>6}"
                f"{r['activation_bytes'] / 2**20:>9.1f}{r['peak_bytes'] / 2**20:>10.1f}{r['receptive_field']:>7}")
        if timed:
            line += f"{r['median_ms']:>10.2f}{r['throughput']:>10.1f}"
        w(line + "\n")
    if timed:
        w(f"latency: batch {rows[0]['batch']}, {rows[0]['dtype']}, on {rows[0]['device_name']}\n")
