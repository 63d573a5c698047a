"""Command line: python -m explorer COMMAND NAME|FILE.json [--set key=value ...].

One module per command, each adding its sub-command through `register(sub)`. Only the module of
the command being run is imported, so `summary` never pays for the Lab's data or the timing code.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from explorer.errors import ConfigError, LatencyError

COMMANDS = ("summary", "graph", "latency", "compare", "lab", "export", "runs")


def make_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every command, or with `only` that one (imports only its module)."""
    parser = argparse.ArgumentParser(
        prog="python -m explorer",
        description="Build ResNet variants from settings and report what they are and cost.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in (only,) if only else COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = make_parser(command if command in COMMANDS else None).parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LatencyError as exc:  # the model failed to run (not a bad setting)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
