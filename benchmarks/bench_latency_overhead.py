"""Does the builder's generality cost anything at run time?

Times the built resnet50 against a plain hand-written ResNet-50 (benchmarks/reference_resnet50.py)
with the same weights, in eval mode under inference_mode, through the same measurement engine
(explorer.timing). Rounds alternate which model goes first so drift in the machine's load hits
both alike; samples are pooled over rounds. Prints both medians and built / reference per batch.
Target: a ratio of at most 1.05. On CPU (fp32) each round also times the built model with
torch.utils.benchmark's blocked_autorange and prints the engine's median over the library's
(agreement of the two methods).

    python benchmarks/bench_latency_overhead.py [--device cpu] [--batches 1 32] [--threads 1]
"""
from __future__ import annotations

import argparse
import copy
import resource
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import torch  # noqa: E402

import explorer  # noqa: E402
from explorer.trace import trace_memory  # noqa: E402
from explorer.timing import device_label, measure_latency, resolve_device  # noqa: E402
from reference_resnet50 import ReferenceResNet50  # noqa: E402

TARGET = 1.05


def build_pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    """The built resnet50 and the reference holding the same weights; checks they agree."""
    built = explorer.build_model(explorer.preset("resnet50")).eval()
    ref = ReferenceResNet50().eval()
    ref.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        diff = (built(x) - ref(x)).abs().max().item()
    if diff > 1e-4:
        raise SystemExit(f"built and reference disagree (max |diff| {diff:.2e}): not the same network")
    return built, ref


def compare(built, ref, device: str, batch: int, rounds: int, budget: float, threads: int | None,
            dtype: str, channels_last: bool, cross_check: bool) -> dict:
    """Pooled per-pass samples of the built and reference models through the engine, rounds alternating.

    With `cross_check`, each round also times the built model with torch.utils.benchmark's
    blocked_autorange (per-pass means of the blocks it sizes itself), so the engine's median can
    be compared with the library's on samples taken at the same times.
    """
    pooled: dict[str, list[float]] = {"built": [], "reference": [], "timer": []}
    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    for r in range(rounds):
        order = [("built", built), ("reference", ref)] + ([("timer", built)] if cross_check else [])
        if r % 2:
            order.reverse()
        for name, model in order:
            if name == "timer":
                pooled[name] += timer_samples(model, x, threads, budget)
                continue
            res = measure_latency(model, device=device, batch=batch, budget_s=budget, warmup=1,
                                  min_samples=3, threads=threads, input_shape=(3, 224, 224),
                                  dtype=dtype, channels_last=channels_last)
            pooled[name] += res.times_ms
    med = {k: statistics.median(v) if v else None for k, v in pooled.items()}
    return {"batch": batch, "built_ms": med["built"], "reference_ms": med["reference"], "timer_ms": med["timer"],
            "ratio": med["built"] / med["reference"], "samples": {k: len(v) for k, v in pooled.items()}}


def timer_samples(model, x: torch.Tensor, threads: int, budget: float) -> list[float]:
    """Per-pass milliseconds of each block torch.utils.benchmark's blocked_autorange times.

    It times a copy prepared as the engine prepares its own (eval mode, no gradients), so the
    two methods see the same module.
    """
    from torch.utils import benchmark

    model = copy.deepcopy(model).eval().requires_grad_(False)
    timer = benchmark.Timer(stmt="model(x)", globals={"model": model, "x": x}, num_threads=threads)
    with torch.inference_mode():
        m = timer.blocked_autorange(min_run_time=budget)
    return [t * 1e3 for t in m.times]


def allocation_report(built, ref, batch: int) -> str:
    """Why the two could differ on a CPU: fresh tensors a pass allocates, and the page faults they cost."""
    parts = []
    for name, model in (("built", built), ("reference", ref)):
        meta = copy.deepcopy(model).to("meta")
        mem = trace_memory(meta, (1, 3, 224, 224))
        x = torch.randn(batch, 3, 224, 224)
        with torch.inference_mode():
            model(x)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            model(x)
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        parts.append(f"{name} {mem['fresh_ops']} fresh tensors, {mem['activation_bytes'] / 2**20:.1f} MiB/image, "
                     f"{faults:,} page faults/pass at batch {batch}")
    return "; ".join(parts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--budget", type=float, default=2.0, help="seconds per model per round")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default: torch's; 1 is steadier on a shared machine)")
    p.add_argument("--dtype", default="fp32")
    p.add_argument("--channels-last", action="store_true")
    args = p.parse_args(argv)
    dev = resolve_device(args.device)
    threads = args.threads if args.threads is not None else torch.get_num_threads()
    built, ref = build_pair()
    print(f"resnet50 built vs reference on {dev.type} ({device_label(dev, threads)}), torch {torch.__version__}, "
          f"{args.dtype}{', channels_last' if args.channels_last else ''}, {args.rounds} alternating rounds")
    worst = 0.0
    cross_check = dev.type == "cpu" and args.dtype == "fp32" and not args.channels_last
    for batch in args.batches:
        row = compare(built, ref, args.device, batch, args.rounds, args.budget, threads, args.dtype,
                      args.channels_last, cross_check)
        worst = max(worst, row["ratio"])
        print(f"  batch {batch:>4}: built {row['built_ms']:9.3f} ms  reference {row['reference_ms']:9.3f} ms  "
              f"ratio {row['ratio']:.3f}  (samples {row['samples']['built']}/{row['samples']['reference']})",
              flush=True)
        if row["timer_ms"] is not None:
            print(f"              built by torch.utils.benchmark {row['timer_ms']:9.3f} ms  "
                  f"engine / torch.utils.benchmark {row['built_ms'] / row['timer_ms']:.3f}  "
                  f"({row['samples']['timer']} blocks)", flush=True)
    print(f"  worst ratio {worst:.3f} (target <= {TARGET}): {'ok' if worst <= TARGET else 'OVER TARGET'}")
    if dev.type == "cpu":
        torch.set_num_threads(threads)
        print("  allocations: " + allocation_report(built, ref, max(args.batches)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
