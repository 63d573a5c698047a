"""`export`: the network as standalone PyTorch code (imports torch only) or as ONNX."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from explorer.arch.presets import display_stem
from explorer.cli.common import add_config_args, load_config
from explorer.export import FORMATS, SUFFIXES, ExportError, to_bytes


def register(sub) -> None:
    p = sub.add_parser("export", help="write the network as standalone PyTorch code or ONNX")
    add_config_args(p)
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="pytorch: one .py file with build_model(), needing torch alone; onnx: for "
                        "Netron and ONNX Runtime (dynamic batch). Default: from the -o extension")
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="output file, '-' for stdout (default: NAME.py or NAME.onnx)")
    p.set_defaults(func=run)


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    suffix = Path(args.output or "").suffix.lower()
    return next((fmt for fmt, s in SUFFIXES.items() if s == suffix), "pytorch")


def _default_output(cfg, fmt: str) -> str:
    return display_stem(cfg) + SUFFIXES[fmt]


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.set)
    fmt = _format(args)
    output = args.output or _default_output(cfg, fmt)
    if output == "-" and fmt == "onnx" and sys.stdout.isatty():
        print("error: ONNX is binary; give -o FILE.onnx or redirect stdout", file=sys.stderr)
        return 1
    start = time.perf_counter()
    try:
        data = to_bytes(cfg, fmt)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        print(f"error: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {output} ({fmt}, {len(data):,} bytes, {seconds:.1f} s)", file=sys.stderr)
    return 0
