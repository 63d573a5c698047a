"""`summary`: parameters, MACs, stages and per-unit shape checks."""
from __future__ import annotations

import argparse
import json
import sys

from explorer.cli.common import add_config_args, load_config
from explorer.facts.results import Summary
from explorer.facts.summary import layer_table, measure_summary
from explorer.labels import fmt_shape
from explorer.vocab import SHORTCUT_TEXT


def register(sub) -> None:
    p = sub.add_parser("summary", help="parameters, MACs, stages and per-unit shape checks")
    add_config_args(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--layers", action="store_true", help="also print the per-layer table (torchinfo)")
    p.set_defaults(func=run)


def timm_keys(cfg) -> str:
    """", stem deep, avg_down, attention se": the timm keys that differ from their defaults."""
    parts = ([f"stem {cfg.stem_type}"] if cfg.stem_type != "single" else []) + (["avg_down"] if cfg.avg_down else []) \
        + ([f"attention {cfg.attention}"] if cfg.attention != "none" else [])
    return "".join(f", {p}" for p in parts)


def print_summary(s: Summary, out=None) -> None:
    """The summary as text: headline figures, the published line, stages, units, warnings."""
    cfg = s.config
    w = (out or sys.stdout).write
    w(f"{s.name}: {cfg.block} blocks {list(cfg.depths)}, widths {list(cfg.widths)}, "
      f"skip_span {s.skip_span}, BN {cfg.bn_position}, ReLU {cfg.relu_position}, "
      f"shortcut {cfg.shortcut}{timm_keys(cfg)}\n")
    w(f"  params       {s.params:,} (trainable {s.trainable_params:,})\n")
    w(f"  MACs         {s.macs / 1e9:.3f} G at {fmt_shape(s.input_shape[1:])}, batch 1\n")
    w(f"  depth        {s.depth} weight layers; output {list(s.output_shape)}\n")
    sc = s.shortcuts
    word = {k: t.word for k, t in SHORTCUT_TEXT.items()}
    w(f"  shortcuts    {s.residual_units} units: {sc.identity} {word['identity']}, {sc.zero_pad} {word['zero_pad']}, "
      f"{sc.projection} {word['projection']} ({s.projection_params:,} params, "
      f"{s.projection_macs / 1e6:.1f} M MACs)\n")
    if s.published:
        p = s.published
        w(f"  published    {p.preset}: {p.info.source}")
        if p.info.error is not None:
            w(f"; {p.info.error_metric} {p.info.error}")
        w("\n")
    w("\n  stage     units      params       MACs  output\n")
    for st in s.stages:
        w(f"  {st.name:<8}{st.units:>6}{st.params:>12,}{st.macs / 1e6:>10.1f}M  {fmt_shape(st.out_shape)}\n")
    if s.units:
        w("\n  unit          layers  in            out           shortcut    params\n")
        for u in s.units:
            w(f"  {u.name:<14}{u.layers:>6}  {fmt_shape(u.in_shape):<14}"
              f"{fmt_shape(u.out_shape):<14}{u.shortcut:<12}{u.shortcut_params:>8,}\n")
    for warning in s.warnings:
        w(f"\n  warning: {warning}")
    if s.warnings:
        w("\n")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.set)
    s = measure_summary(cfg)
    if args.json:
        json.dump(s.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print_summary(s)
        if args.layers:
            sys.stdout.write("\n" + layer_table(cfg) + "\n")
    return 0


