"""What does per-layer timing cost, and do the layers add up to the whole?

For each model: `explorer.timing.profile_latency` (forward hooks stamping each leaf module) and,
as the alternative, torch.profiler around a pass (op-level events, the cheapest setting: no
shapes, no stacks, no memory). Plain passes alternate with instrumented ones on the same copy;
prints each method's median pass against the plain median (the overhead), the hooks' coverage
(rows' sum / plain median) and what torch.profiler costs afterwards to turn its events into a table.

    python benchmarks/bench_profile.py [--models resnet18 resnet50] [--threads 1] [--budget 10]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

import explorer  # noqa: E402
from explorer.timing import device_label, profile_latency  # noqa: E402


def profiler_overhead(name: str, threads: int, budget_s: float) -> tuple[float, float, float, float]:
    """Medians on the CPU, ms: plain pass, pass inside the profiler, the profiler's start and stop
    around it as well, building key_averages afterwards."""
    model = explorer.build_model(explorer.preset(name)).eval()
    cfg = model.config
    x = torch.randn(1, cfg.in_channels, cfg.input_size, cfg.input_size)  # (B, C, H, W)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    plain, profiled, with_start, tables = [], [], [], []
    try:
        with torch.inference_mode():
            for _ in range(3):
                model(x)
            t_end = time.perf_counter() + budget_s
            while time.perf_counter() < t_end or len(plain) < 5:
                t0 = time.perf_counter()
                model(x)
                plain.append((time.perf_counter() - t0) * 1e3)
                t_outer = time.perf_counter()
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    t0 = time.perf_counter()
                    model(x)
                    profiled.append((time.perf_counter() - t0) * 1e3)
                with_start.append((time.perf_counter() - t_outer) * 1e3)
                t0 = time.perf_counter()
                prof.key_averages()
                tables.append((time.perf_counter() - t0) * 1e3)
    finally:
        torch.set_num_threads(old)
    return tuple(statistics.median(v) for v in (plain, profiled, with_start, tables))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["resnet18", "resnet50"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--budget", type=float, default=10.0, help="seconds per model and method")
    args = ap.parse_args()
    print(f"CPU: {device_label('cpu', args.threads)}, torch {torch.__version__}, input 224, batch 1")
    for name in args.models:
        r = profile_latency(explorer.preset(name), device="cpu", threads=args.threads, budget_s=args.budget)
        print(f"{name}: hooks      plain {r.whole_ms:8.2f} ms  instrumented {r.instrumented_ms:8.2f} ms  "
              f"overhead {r.overhead:+.1%}  coverage {r.coverage:.1%}  unattributed {r.unattributed_ms:.3f} ms  "
              f"({r.passes} passes, {len(r.rows)} rows)")
        if r.note:
            print(f"  note: {r.note}")
        plain, prof, started, table = profiler_overhead(name, args.threads, args.budget)
        print(f"{name}: profiler   plain {plain:8.2f} ms  instrumented {prof:8.2f} ms  "
              f"overhead {prof / plain - 1:+.1%} ({started / plain - 1:+.1%} with its start and stop)  "
              f"key_averages {table:.1f} ms per pass; op-level rows, no module paths")


if __name__ == "__main__":
    main()
