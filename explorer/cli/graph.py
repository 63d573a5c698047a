"""`graph`: the network (or one residual unit) drawn with Graphviz, as DOT, SVG, PNG or PDF."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from explorer.cli.common import add_config_args, load_config
from explorer.diagram.roll import ROLL_ABOVE
from explorer.diagram import (
    DETAILS, DIRECTIONS, FORMATS, PNG_MAX_PX, GraphvizMissing, build_graph, build_unit_figure, png_size,
    to_bytes,
)


def register(sub) -> None:
    p = sub.add_parser("graph", help="draw the network with Graphviz (dot, svg, png, pdf)")
    add_config_args(p)
    p.add_argument("--detail", choices=DETAILS, default="units",
                   help="stages, residual units (default) or every layer")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="output format; default: from the -o extension, else dot")
    p.add_argument("-o", "--output", default="-", metavar="FILE", help="output file (default: stdout)")
    p.add_argument("--direction", choices=DIRECTIONS, default="TB", help="top-to-bottom or left-to-right")
    p.add_argument("--no-shapes", action="store_true", help="leave tensor shapes off the edges")
    p.add_argument("--fold", action="store_true", help="draw BN/ReLU inside their conv (layer detail)")
    p.add_argument("--color-by", choices=("params", "macs", "memory", "time"), default=None, dest="color_by",
                   help="fill each node by its parameters, MACs, activation memory or measured time "
                        "(time profiles the model on --device first), with a legend")
    p.add_argument("--roll", action=argparse.BooleanOptionalAction, default=None,
                   help="draw runs of identical units once with their count, e.g. 'layer2.1 - layer2.199 x 199' "
                        "(units and layers detail); default: rolled for networks of more than "
                        f"{ROLL_ABOVE} units; --no-roll draws every unit")
    p.add_argument("--device", default="auto", help="device of the --color-by time profile: auto | cpu | cuda")
    p.add_argument("--unit-figure", action="store_true",
                   help="draw one residual unit in the papers' style instead of the network")
    p.add_argument("--unit", default=None, metavar="PATH",
                   help="the unit for --unit-figure, e.g. layer2.0 (default: first with a projection)")
    p.set_defaults(func=run)


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    suffix = Path(args.output).suffix.lower().lstrip(".")
    return suffix if suffix in FORMATS else "dot"


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.set)
    fmt = _format(args)
    if args.unit_figure:
        graph = build_unit_figure(cfg, args.unit, direction=args.direction, shapes=not args.no_shapes)
    else:
        times = None
        if args.color_by == "time":
            from explorer.timing import profile_latency

            profile = profile_latency(cfg, device=args.device)
            times = profile.times()
            print(f"profiled on {profile.device_name}: {profile.total_ms:.3g} ms in modules, "
                  f"{profile.whole_ms:.3g} ms whole", file=sys.stderr)
        graph = build_graph(cfg, args.detail, direction=args.direction, shapes=not args.no_shapes,
                            fold=args.fold, color_by=args.color_by or "none", times=times, roll=args.roll)
    try:
        data = to_bytes(graph, fmt)
    except GraphvizMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    size = png_size(data) if fmt == "png" else None
    if size and max(size) >= PNG_MAX_PX:
        print(f"warning: the drawing is taller or wider than {PNG_MAX_PX:,} pixels, the most a PNG can "
              f"have here, so it was shrunk to {size[0]}x{size[1]} px and may be hard "
              "to read; SVG and PDF keep it at full size", file=sys.stderr)
    if args.output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    try:
        Path(args.output).write_bytes(data)
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({fmt}, {len(data):,} bytes)", file=sys.stderr)
    return 0
