"""Warm in-process median time of a full summary (build on meta, count, shape-check every unit).

Targets on a 2-core CPU machine: resnet50 under 100 ms, resnet152 under 300 ms.
Run: .venv/bin/python benchmarks/bench_summary.py [--repeat N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import explorer  # noqa: E402
from explorer.facts.summary import compute_summary  # noqa: E402  (uncached: the real work)

TARGETS_MS = {"resnet50": 100.0, "resnet152": 300.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    for name, target in TARGETS_MS.items():
        cfg = explorer.preset(name)
        compute_summary(cfg)  # warm-up: imports, dispatcher caches
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            compute_summary(cfg)
            times.append((time.perf_counter() - t0) * 1e3)
        med = statistics.median(times)
        print(f"{name:<10} summary median {med:7.1f} ms  (p10 {sorted(times)[len(times) // 10]:.1f}, "
              f"max {max(times):.1f}; n={len(times)})  target {target:.0f} ms  ratio {med / target:.2f}  "
              f"{'OK' if med <= target else 'OVER'}")


if __name__ == "__main__":
    main()
