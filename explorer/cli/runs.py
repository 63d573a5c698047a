"""`runs`: list, show, export, import and delete the runs kept in the run store."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from explorer.errors import ConfigError
from explorer.limits import MAX_IMPORT_BYTES
from explorer.runs import RUN_KINDS, Keeper, RunRecord, RunStore, StoreError, headline, open_store


def add_store_args(p: argparse.ArgumentParser) -> None:
    """--store PATH / --no-store, shared by every command that keeps runs."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--store", metavar="PATH", help="run store file (default: $RESNET_EXPLORER_STORE, else "
                   "$XDG_DATA_HOME/resnet-explorer/runs.sqlite)")
    g.add_argument("--no-store", action="store_true", help="keep nothing in the run store")


def store_of(args: argparse.Namespace) -> RunStore | None:
    return open_store(getattr(args, "store", None), off=getattr(args, "no_store", False))


def run_keeper(args: argparse.Namespace) -> Keeper:
    """Where a measuring command keeps its runs; a store that fails says so once, on stderr, and
    the command goes on."""
    return Keeper(store_of(args), report=lambda reason: print(f"warning: {reason}; the run was not kept",
                                                              file=sys.stderr))


def register(sub) -> None:
    p = sub.add_parser("runs", help="runs kept in the run store: list, show, export, import, delete")
    actions = p.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="kept runs, newest first")
    _filters(ls)
    ls.add_argument("--json", action="store_true", help="print the records as a JSON list")
    show = actions.add_parser("show", help="one run in full")
    show.add_argument("id", help="run id (or a unique prefix of at least 4 characters)")
    show.add_argument("--json", action="store_true", help="print the record as JSON")
    export = actions.add_parser("export", help="write runs to a JSONL file (one record per line)")
    _filters(export)
    export.add_argument("-o", "--output", required=True, metavar="FILE.jsonl")
    imp = actions.add_parser("import", help="keep the runs of a JSONL file (runs already kept are skipped)")
    imp.add_argument("file", metavar="FILE.jsonl")
    delete = actions.add_parser("delete", help="forget runs")
    delete.add_argument("ids", nargs="+", metavar="ID")
    for q in (ls, show, export, imp, delete):
        add_store_args(q)
    p.set_defaults(func=run)


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", choices=RUN_KINDS, help="only runs of this kind")
    p.add_argument("--config", metavar="NAME|FILE", help="only runs of this network (a preset or a JSON file, "
                   "with --set applied); the name does not matter")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="with --config")
    p.add_argument("--device", metavar="TEXT", help="only runs whose device label contains TEXT")
    p.add_argument("--limit", type=int, metavar="N", help="at most N runs")


def run(args: argparse.Namespace) -> int:
    store = store_of(args)
    if store is None:
        raise ConfigError("--store", "off", "a run store: storing is off (RESNET_EXPLORER_STORE=off or --no-store)")
    try:
        return _ACTIONS[args.action](store, args)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _selected(store: RunStore, args: argparse.Namespace) -> list[RunRecord]:
    network = None
    if args.config:
        from explorer.cli.common import load_config

        network = load_config(args.config, args.set).arch_key()
    return store.list(kind=args.kind, network=network, device=args.device, limit=args.limit)


def _list(store: RunStore, args: argparse.Namespace) -> int:
    records = _selected(store, args)
    if args.json:
        _print_json([r.to_dict() for r in records])
        return 0
    if not records:
        print(f"no runs kept in {store.path}" + (" match" if any((args.kind, args.config, args.device)) else ""))
        return 0
    print(f"{'id':<10}{'kind':<9}{'when (UTC)':<21}{'status':<11}{'network':<28}{'device':<30}result")
    for r in records:
        print(f"{r.id[:8]:<10}{r.kind:<9}{r.when:<21}{r.status:<11}"
              f"{_clip(r.name, 26):<28}{_clip(r.device, 28):<30}{headline(r)}")
    return 0


def _show(store: RunStore, args: argparse.Namespace) -> int:
    record = store.get(args.id)
    if record is None:
        raise ConfigError("id", args.id, "the id (or a unique prefix) of a kept run; see `runs list`")
    if args.json:
        _print_json(record.to_dict())
        return 0
    d = record.to_dict()
    for key in ("id", "kind", "name", "status", "message", "device", "host", "started", "ended",
                "torch_version", "version"):
        if d[key]:
            print(f"{key:<14}{d[key]}")
    print(f"{'settings':<14}{json.dumps(record.settings, ensure_ascii=False)}")
    print(f"{'config':<14}{json.dumps(record.config, ensure_ascii=False)}")
    print("result")
    print(json.dumps(record.result, indent=2, ensure_ascii=False))
    return 0


def _export(store: RunStore, args: argparse.Namespace) -> int:
    records = _selected(store, args)
    try:
        with open(args.output, "w", encoding="utf-8") as f:
            for r in records:
                f.write(r.to_json() + "\n")
    except OSError as exc:
        raise ConfigError("-o", args.output, f"a file that can be written ({exc.strerror})") from None
    print(f"wrote {len(records)} run{'s' if len(records) != 1 else ''} to {args.output}")
    return 0


def _import(store: RunStore, args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise ConfigError("file", args.file, f"a JSONL file of at most {MAX_IMPORT_BYTES // 2**20} MiB")
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            report = store.import_lines(f)
    except OSError as exc:
        raise ConfigError("file", args.file, f"a readable JSONL file ({exc.strerror})") from None
    for number, why in report.errors:
        print(f"{args.file}:{number}: skipped: {why}", file=sys.stderr)
    print(f"imported {report.added} run{'s' if report.added != 1 else ''}"
          + (f"; {report.present} already kept" if report.present else "")
          + (f"; {len(report.errors)} bad line{'s' if len(report.errors) != 1 else ''} skipped" if report.errors else ""))
    return 1 if report.errors and not report.added and not report.present else 0


def _delete(store: RunStore, args: argparse.Namespace) -> int:
    ids = []
    for given in args.ids:
        record = store.get(given)
        if record is None:
            raise ConfigError("id", given, "the id (or a unique prefix) of a kept run; see `runs list`")
        ids.append(record.id)
    n = store.delete(ids)
    print(f"deleted {n} run{'s' if n != 1 else ''}")
    return 0


_ACTIONS = {"list": _list, "show": _show, "export": _export, "import": _import, "delete": _delete}


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _print_json(doc) -> None:
    json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")

