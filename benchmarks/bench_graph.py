"""Diagram speed: DOT source per detail level, `dot` layout to SVG, and torchview as reference.

For resnet50 and resnet152 at each level it prints the median time to produce the DOT source:
from the config, cold (build on meta + the one trace + drawing, trace cache cleared), from
an already built meta model (the trace + drawing: what torchview is given), and warm
(trace cached, drawing only); and the time `dot` takes to lay the graph out as SVG. In the same
run it times torchview's `draw_graph` on the same built resnet50 (a benchmark-only dependency,
see benchmarks/requirements.txt) with every module expanded (`depth` 10, `expand_nested`), the
comparable "layers" detail, on the meta device like ours.
Target: our layer-level DOT from the built model at least 5x faster than torchview's.

Run: .venv/bin/python benchmarks/bench_graph.py [--repeat N] [--layout-repeat N]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import explorer  # noqa: E402
from explorer.diagram import DETAILS, build_graph, to_bytes  # noqa: E402
from explorer.trace import trace, trace_module  # noqa: E402

TARGET_RATIO = 5.0
FACTS_TARGET = 0.20  # tooltips and a colour overlay add at most this to generation (DOT + layout)


def median_ms(fn, repeat: int) -> float:
    fn()  # warm-up: imports, dispatcher caches
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def cold(cfg, detail):
    def run():
        trace.cache_clear()
        return build_graph(cfg, detail).source
    return run


def from_model(model, detail):
    def run():
        return build_graph(trace_module(model), detail).source
    return run


def warm(cfg, detail):
    def run():
        return build_graph(cfg, detail).source
    return run


def meta_model(cfg):
    with torch.device("meta"):
        return explorer.build_model(cfg)


def torchview_ms(cfg, repeat: int) -> float | None:
    try:
        from torchview import draw_graph
    except ImportError:
        print("torchview not installed (pip install -r benchmarks/requirements.txt): no reference")
        return None
    model = meta_model(cfg)
    shape = (1, cfg.in_channels, cfg.input_size, cfg.input_size)

    def run():
        return draw_graph(model, input_size=shape, depth=10, expand_nested=True, device="meta",
                          graph_name=cfg.name).visual_graph.source
    return median_ms(run, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--layout-repeat", type=int, default=3)
    args = parser.parse_args()
    has_dot = shutil.which("dot") is not None
    ours = {}
    print("median ms; DOT from: config (cold) | built meta model | cached trace; then dot layout")
    print(f"{'model':<10} {'detail':<7} {'config':>8} {'model':>8} {'cached':>8} {'dot->SVG':>9}")
    for name in ("resnet50", "resnet152"):
        cfg = explorer.preset(name)
        model = meta_model(cfg)
        for detail in DETAILS:
            c = median_ms(cold(cfg, detail), args.repeat)
            m = median_ms(from_model(model, detail), args.repeat)
            w = median_ms(warm(cfg, detail), args.repeat)
            graph = build_graph(cfg, detail)
            lay = median_ms(lambda: to_bytes(graph, "svg"), args.layout_repeat) if has_dot else float("nan")
            print(f"{name:<10} {detail:<7} {c:8.1f} {m:8.1f} {w:8.1f} {lay:9.1f}")
            ours[name, detail] = (c, m)
    if has_dot:
        facts_cost(args.layout_repeat)
    ref = torchview_ms(explorer.preset("resnet50"), args.repeat)
    if ref is not None:
        c, m = ours["resnet50", "layers"]
        print(f"\ntorchview draw_graph, built resnet50 (depth 10, expand_nested, meta): {ref:.1f} ms")
        print(f"ours, layers, from the built model: {m:.1f} ms  -> {ref / m:.1f}x faster  "
              f"(target >= {TARGET_RATIO:.0f}x: {'OK' if ref / m >= TARGET_RATIO else 'UNDER'})")
        print(f"ours, layers, from the config (model build included): {c:.1f} ms  -> {ref / c:.1f}x")


def facts_cost(repeat: int) -> None:
    """Diagram generation (DOT text + layout to SVG) with every node's tooltip and a params
    overlay, against the same drawing with the annotation step switched off, interleaved."""
    from explorer.diagram import graph as drawing

    real = drawing._annotate
    print(f"\nfacts on nodes: generation with tooltips + params overlay vs without (target <= "
          f"+{FACTS_TARGET:.0%})")
    for name in ("resnet50", "resnet152"):
        cfg = explorer.preset(name)
        for detail in ("units", "layers"):
            with_facts, without = [], []
            for _ in range(max(repeat, 3)):
                for store, annotate, color_by in ((with_facts, real, "params"), (without, None, "none")):
                    drawing._annotate = annotate or (lambda *a, **k: None)
                    t0 = time.perf_counter()
                    to_bytes(build_graph(cfg, detail, color_by=color_by), "svg")
                    store.append((time.perf_counter() - t0) * 1e3)
            drawing._annotate = real
            a, b = statistics.median(with_facts), statistics.median(without)
            print(f"  {name:<10} {detail:<7} {a:8.1f} ms vs {b:8.1f} ms  {a / b - 1:+.0%}  "
                  f"{'OK' if a / b - 1 <= FACTS_TARGET else 'OVER'}")


if __name__ == "__main__":
    main()
