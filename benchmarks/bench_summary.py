"""Warm in-process median time of a full summary against torchinfo's, measured in one run.

Ours: build on meta, one trace (shapes, params, MACs, memory per op), shape-check every unit,
caches cleared each time. torchinfo: `torchinfo.summary` of the same network built on meta
(the per-layer table a user would ask it for, with MACs). Targets on a 2-core CPU machine:
resnet50 under 100 ms, resnet152 under 300 ms, and faster than torchinfo.
Run: .venv/bin/python benchmarks/bench_summary.py [--repeat N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torchinfo  # noqa: E402

import explorer  # noqa: E402
from explorer.facts import summary  # noqa: E402
from explorer.trace import trace  # noqa: E402

TARGETS_MS = {"resnet50": 100.0, "resnet152": 300.0}


def ours(cfg):
    trace.cache_clear()
    summary.measure_summary.cache_clear()
    return summary.measure_summary(cfg)


def theirs(cfg):
    with torch.device("meta"):
        model = explorer.build_model(cfg)
    return torchinfo.summary(model, input_size=(1, 3, cfg.input_size, cfg.input_size), device="meta",
                             verbose=0, col_names=("output_size", "num_params", "mult_adds"))


def median_ms(fn, cfg, repeat: int) -> tuple[float, list[float]]:
    fn(cfg)  # warm-up: imports, dispatcher caches
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(cfg)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    for name, target in TARGETS_MS.items():
        cfg = explorer.preset(name)
        med, times = median_ms(ours, cfg, args.repeat)
        ref, _ = median_ms(theirs, cfg, max(3, args.repeat // 3))
        print(f"{name:<10} summary median {med:7.1f} ms  (p10 {sorted(times)[len(times) // 10]:.1f}, "
              f"max {max(times):.1f}; n={len(times)})  target {target:.0f} ms  "
              f"{'OK' if med <= target else 'OVER'};  torchinfo {ref:7.1f} ms  ratio torchinfo/ours "
              f"{ref / med:.1f}x")


if __name__ == "__main__":
    main()
