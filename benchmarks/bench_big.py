"""Big networks at interactive speed: every ratio and figure of the target, measured in one run.

In-process (warm imports, caches cleared before each call):
- the full summary of resnet50 (meta build + trace + summary), median ms (target <= 20 ms), and
  how many times faster it is than build + torchinfo.summary with MACs (target >= 15x). "Build"
  is the hand-written ResNet-50 of benchmarks/reference_resnet50.py, the network a user writes
  instead of using this tool: built as PyTorch builds it by default (CPU, initialised weights;
  torchinfo then runs a real forward pass), and built on meta (no weights, no arithmetic). Both
  ratios are printed; the CPU one is the target's. explorer.build_model is not the baseline: it
  shares this tool's meta speed-ups (copied repeated units, no initialisation);
- the layer-level DOT source of resnet50 from its config (build + trace + drawing), against
  torchview's draw_graph on the meta-built net, every module expanded (target >= 5x).
Whole process, each command run `--process-repeat` times interleaved with the others, medians:
- `python -m explorer graph resnet1202 --detail units --format svg` (target <= 2x) and
  `--detail layers` (<= 3x), against `python -c "import torch"`.
In the browser (headless Chromium on a `streamlit run` server; skipped with --no-browser):
- a change to resnet1202 to its diagram shown, units (target 2 s) and layers (3 s); resnet50
  changes at p95 (0.5 s) — from benchmarks/bench_diagram_browser.py.

torchinfo and torchview: pip install -r benchmarks/requirements.txt.
Run: .venv/bin/python benchmarks/bench_big.py [--repeat N] [--process-repeat N] [--big-rounds N] [--no-browser]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

import torch  # noqa: E402

import explorer  # noqa: E402
from explorer.diagram import build_graph  # noqa: E402
from explorer.facts import summary  # noqa: E402
from explorer.trace import trace  # noqa: E402
from bench_cold_start import interleaved  # noqa: E402
from bench_graph import median_ms  # noqa: E402

SUMMARY_MS, SUMMARY_RATIO, DOT_RATIO = 20.0, 15.0, 5.0
PROCESS_RATIOS = {"units": 2.0, "layers": 3.0}


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def our_summary(cfg):
    trace.cache_clear()
    summary.measure_summary.cache_clear()
    return summary.measure_summary(cfg)


def torchinfo_summary(device: str):
    """The hand-written ResNet-50 built on `device` and summarised by torchinfo (with MACs)."""
    import torchinfo
    from reference_resnet50 import ReferenceResNet50

    with torch.device(device):
        model = ReferenceResNet50()
    return torchinfo.summary(model, input_size=(1, 3, 224, 224), device=device, verbose=0,
                             col_names=("output_size", "num_params", "mult_adds"))


def our_layer_dot(cfg):
    trace.cache_clear()
    return build_graph(cfg, "layers").source


def torchview_dot(model, cfg):
    from torchview import draw_graph

    return draw_graph(model, input_size=(1, cfg.in_channels, cfg.input_size, cfg.input_size), depth=10,
                      expand_nested=True, device="meta", graph_name=cfg.name).visual_graph.source


def in_process(repeat: int) -> None:
    cfg = explorer.preset("resnet50")
    ours = median_ms(lambda: our_summary(cfg), repeat)
    try:
        cpu = median_ms(lambda: torchinfo_summary("cpu"), max(3, repeat // 3))
        meta = median_ms(lambda: torchinfo_summary("meta"), max(3, repeat // 3))
    except ImportError:
        cpu = meta = float("nan")
        print("torchinfo not installed (pip install -r benchmarks/requirements.txt)")
    print(f"resnet50 full summary: median {ours:.1f} ms (target <= {SUMMARY_MS:.0f} ms: {verdict(ours <= SUMMARY_MS)})")
    print(f"  hand-written ResNet-50 built on CPU + torchinfo {cpu:.1f} ms -> {cpu / ours:.1f}x "
          f"(target >= {SUMMARY_RATIO:.0f}x: {verdict(cpu / ours >= SUMMARY_RATIO)})")
    print(f"  the same built on meta + torchinfo on meta {meta:.1f} ms -> {meta / ours:.1f}x")
    dot = median_ms(lambda: our_layer_dot(cfg), repeat)
    try:
        with torch.device("meta"):
            model = explorer.build_model(cfg)
        ref = median_ms(lambda: torchview_dot(model, cfg), max(3, repeat // 3))
    except ImportError:
        ref = float("nan")
        print("torchview not installed (pip install -r benchmarks/requirements.txt)")
    print(f"resnet50 layer DOT from the config: median {dot:.1f} ms; torchview draw_graph on the meta-built net "
          f"{ref:.1f} ms -> {ref / dot:.1f}x (target >= {DOT_RATIO:.0f}x: {verdict(ref / dot >= DOT_RATIO)})")


def whole_process(repeat: int) -> None:
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        cmds = {"import torch": [py, "-c", "import torch"]}
        for detail in PROCESS_RATIOS:
            cmds[detail] = [py, "-m", "explorer", "graph", "resnet1202", "--detail", detail, "--format", "svg",
                            "-o", str(Path(tmp) / f"{detail}.svg")]
        times, _ = interleaved(cmds, repeat)
    base = statistics.median(times["import torch"])
    print(f"whole process, median of {repeat}: python -c 'import torch' {base:.2f} s")
    for detail, target in PROCESS_RATIOS.items():
        m = statistics.median(times[detail])
        print(f"  python -m explorer graph resnet1202 --detail {detail} --format svg: {m:.2f} s -> {m / base:.2f}x "
              f"(target <= {target:.0f}x: {verdict(m / base <= target)})")


def in_browser(rounds: int) -> None:
    from bench_diagram_browser import big_net_figures
    from browser_util import CHROMIUM_FLAGS, chromium_path, streamlit_server
    from playwright.sync_api import sync_playwright

    with streamlit_server() as (url, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        big_net_figures(browser, url, rounds)
        browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15, help="in-process repeats")
    ap.add_argument("--process-repeat", type=int, default=5, help="runs of each whole-process command")
    ap.add_argument("--big-rounds", type=int, default=3, help="browser changes per figure")
    ap.add_argument("--no-browser", action="store_true", help="leave out the browser figures")
    args = ap.parse_args()
    in_process(args.repeat)
    whole_process(args.process_repeat)
    if not args.no_browser:
        in_browser(args.big_rounds)


if __name__ == "__main__":
    main()
