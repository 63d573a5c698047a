#!/usr/bin/env bash
# GPU check: measured latency of resnet18/50/152 at batch 1 and 256 (fp32, bf16; channels_last),
# the estimated vs measured activation peak, and the built-vs-reference speed ratio.
# Run from anywhere on a CUDA machine: bash scripts/gpu_check.sh   (needs python3 with torch; installs nothing)
# Optional: GPU_CHECK_COMPILE=1 adds a torch.compile run (about a minute more);
#           GPU_CHECK_TESTS=1 also runs the CUDA tests when pytest is importable.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

"$PY" - <<'PYEOF'
import os, sys, time
import torch
if not torch.cuda.is_available():
    sys.exit("gpu_check: torch sees no CUDA device; nothing to check")
import explorer
from explorer.cost import measure_costs
from explorer.latency import device_label, measure_latency

t_start = time.perf_counter()
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
      f"{device_label('cuda')}", flush=True)
print(f"{'model':<10}{'batch':>6}{'dtype':>6}  {'median ms':>10}{'p10':>9}{'p90':>9}{'img/s':>11}"
      f"{'samples':>8}  notes")
for name in ("resnet18", "resnet50", "resnet152"):
    cfg = explorer.preset(name)
    for batch in (1, 256):
        for dtype in ("fp32", "bf16"):
            r = measure_latency(cfg, device="cuda", batch=batch, dtype=dtype, channels_last=True, budget_s=2.0)
            notes = "; ".join((["noisy"] if r.noisy else []) + list(r.warnings))
            print(f"{name:<10}{r.batch:>6}{dtype:>6}  {r.median_ms:>10.3f}{r.p10_ms:>9.3f}{r.p90_ms:>9.3f}"
                  f"{r.throughput:>11,.0f}{r.samples:>8}  {notes}", flush=True)

c = measure_costs(explorer.preset("resnet50"), 32, measure_cuda=True)
print(f"resnet50 batch 32 fp32 activation peak: estimated {c['peak_bytes'] / 2**20:.0f} MiB, "
      f"measured {c['measured_peak_bytes'] / 2**20:.0f} MiB (allocator, cudnn workspace included)", flush=True)

if os.environ.get("GPU_CHECK_COMPILE") == "1":
    r = measure_latency(explorer.preset("resnet50"), device="cuda", batch=256, dtype="bf16",
                        channels_last=True, compile=True, budget_s=2.0)
    print(f"resnet50 batch 256 bf16 compiled: median {r.median_ms:.3f} ms, compile {r.compile_s:.1f} s", flush=True)
print(f"latency table took {time.perf_counter() - t_start:.0f} s", flush=True)
PYEOF

echo
"$PY" benchmarks/bench_latency_overhead.py --device cuda --batches 1 32 --rounds 4 --budget 1
"$PY" benchmarks/bench_latency_overhead.py --device cuda --batches 32 --rounds 4 --budget 1 --dtype bf16 --channels-last
echo
"$PY" benchmarks/bench_latency_overhead.py --device cpu --batches 1 32 --rounds 3 --budget 1.5

if [[ "${GPU_CHECK_TESTS:-0}" == 1 ]] && "$PY" -c "import pytest" 2>/dev/null; then
    echo
    "$PY" -m pytest -q -p no:cacheprovider tests/test_latency.py tests/test_cost.py -k "cuda" || true
fi
