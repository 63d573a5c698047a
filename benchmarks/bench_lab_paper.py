"""The paper recipe's time model: seconds per training iteration (batch 128, 32x32 CIFAR-shaped
input, SGD momentum 0.9, weight decay 1e-4, augmentation included) of the degradation table's
networks on this machine, and what 64k iterations of each imply.

    python benchmarks/bench_lab_paper.py [NETWORK ...] [--threads T] [--steps N] [--device cpu|cuda]

Random images stand in for CIFAR (a step costs the same); on a GPU the steps run as the Lab's
do there (bf16 autocast, channels_last). Prints the median and the fastest of N timed steps after
two untimed (on a busy machine the fastest is nearer what the machine can do).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import torch  # noqa: E402

from explorer import build_model, lab, preset  # noqa: E402
from explorer.lab.cifar import augment  # noqa: E402
from explorer.lab.training import make_optimizer, train_step  # noqa: E402

ITERATIONS = lab.PAPER["iterations"]


def seconds_per_step(name: str, steps: int, device: str) -> tuple[float, float]:
    settings = lab.TrainSettings().with_overrides(recipe="paper")
    model = build_model(lab.lab_config(preset(name), "cifar10")).to(device)
    if device == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, settings)
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(2 + steps):
        t0 = time.perf_counter()
        x = augment(torch.randn(128, 3, 32, 32), gen).to(device)
        y = torch.randint(0, 10, (128,)).to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            train_step(model, opt, x, y)[1].item()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[2:]), min(times[2:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("networks", nargs="*", default=["resnet20", "resnet56"])
    parser.add_argument("--threads", type=int, default=lab.TRAIN_THREADS)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.threads} thread(s), device {args.device}")
    for name in args.networks:
        s, best = seconds_per_step(name, args.steps, args.device)
        print(f"{name:>10}: {s:.3f} s per iteration at batch 128 (fastest {best:.3f} s); {ITERATIONS} "
              f"iterations: {s * ITERATIONS / 3600:.1f} h ({best * ITERATIONS / 3600:.1f} h at the fastest)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
