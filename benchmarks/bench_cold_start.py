"""Cold start: whole CLI processes against `import torch`, and the app's first render in a real browser
against a hello-world Streamlit app that imports torch and graphviz.

(a) CLI: `python -m explorer summary resnet50` and `python -m explorer graph resnet50 --format svg`
    each as a fresh process, against `python -c "import torch"`, rounds interleaved. Prints medians,
    peak RSS (per child, from its rusage) and the ratio to `import torch`. Target: <= 1.5x.
(b) Browser: a fresh `streamlit run` server per measurement (health check ok first), then the time
    from `page.goto` until the first useful view is visible: the app's diagram image, the hello
    app's title. Rounds interleaved. Targets: the app under 4 s and at most 1.3x the hello app.

Run: .venv/bin/python benchmarks/bench_cold_start.py [--rounds N] [--skip-cli] [--skip-browser]
Timing is reported, never asserted.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from browser_util import CHROMIUM_FLAGS, DIAGRAM, chromium_path, streamlit_server  # noqa: E402

CLI_TARGET = 1.5        # whole process / `import torch`
BROWSER_TARGET_S = 4.0  # page.goto -> first diagram visible
BROWSER_RATIO = 1.3     # app / hello app
HELLO = '''import graphviz
import streamlit as st
import torch

st.title("Hello")
'''
HELLO_SELECTOR = '[data-testid="stMain"] h1'


# -- (a) whole processes -----------------------------------------------------------------------
def run_child(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process, which must succeed."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage: ru_maxrss in KiB on Linux
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.read().decode()[-500:]}")
    proc.stderr.close()
    return wall, usage.ru_maxrss / 1024


def interleaved(commands: dict[str, list[str]], rounds: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall seconds and peak RSS (MiB) of each command over `rounds` interleaved rounds (so drift on
    the machine falls on all alike), after one untimed pass: the files in the page cache, as for a user."""
    for argv in commands.values():
        run_child(argv)
    walls: dict[str, list[float]] = {k: [] for k in commands}
    rss: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(rounds):
        for name, argv in commands.items():
            w, r = run_child(argv)
            walls[name].append(w)
            rss[name].append(r)
    return walls, rss


def bench_cli(rounds: int) -> None:
    py = sys.executable
    out = Path(tempfile.gettempdir()) / "bench_cold_start.svg"
    commands = {
        "import torch": [py, "-c", "import torch"],
        "summary resnet50": [py, "-m", "explorer", "summary", "resnet50"],
        "graph resnet50 --format svg": [py, "-m", "explorer", "graph", "resnet50", "--format", "svg", "-o", str(out)],
    }
    walls, rss = interleaved(commands, rounds)
    base = statistics.median(walls["import torch"])
    print(f"(a) whole processes, {rounds} interleaved rounds (target: <= {CLI_TARGET}x import torch)")
    print(f"  {'command':<30} {'median':>9} {'min':>8} {'peak RSS':>10} {'ratio':>6}")
    for name in commands:
        med = statistics.median(walls[name])
        ratio = med / base
        verdict = "" if name == "import torch" else ("  OK" if ratio <= CLI_TARGET else "  OVER")
        print(f"  {name:<30} {med:8.2f}s {min(walls[name]):7.2f}s {max(rss[name]):8.0f}MiB {ratio:6.2f}{verdict}")


# -- (b) first render in a browser -------------------------------------------------------------
def first_render_s(browser, script: Path, selector: str) -> float:
    """Seconds from page.goto to `selector` visible, on a fresh server for `script`."""
    with streamlit_server(script=script) as (url, _):
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        pg = ctx.new_page()
        try:
            t0 = time.perf_counter()
            pg.goto(url)
            pg.wait_for_selector(selector, state="visible", timeout=120_000)
            return time.perf_counter() - t0
        finally:
            ctx.close()


def bench_browser(rounds: int) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        hello = Path(tmp) / "hello.py"
        hello.write_text(HELLO)
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            apps = {"app.py (diagram)": (ROOT / "app.py", DIAGRAM), "hello (torch+graphviz)": (hello, HELLO_SELECTOR)}
            times: dict[str, list[float]] = {k: [] for k in apps}
            for i in range(rounds):
                order = list(apps) if i % 2 == 0 else list(reversed(apps))  # neither always goes first
                for name in order:
                    times[name].append(first_render_s(browser, *apps[name]))
        finally:
            browser.close()
    app_med = statistics.median(times["app.py (diagram)"])
    hello_med = statistics.median(times["hello (torch+graphviz)"])
    print(f"(b) first render in headless Chromium, fresh server each, {rounds} interleaved rounds")
    for name, values in times.items():
        print(f"  {name:<24} median {statistics.median(values):5.2f}s  "
              f"[{', '.join(f'{v:.2f}' for v in values)}]")
    print(f"  app median {app_med:.2f}s (target < {BROWSER_TARGET_S:.0f} s: "
          f"{'OK' if app_med < BROWSER_TARGET_S else 'OVER'}); app / hello {app_med / hello_med:.2f} "
          f"(target <= {BROWSER_RATIO}: {'OK' if app_med / hello_med <= BROWSER_RATIO else 'OVER'})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--skip-browser", action="store_true")
    args = ap.parse_args()
    if not args.skip_cli:
        bench_cli(args.rounds)
    if not args.skip_browser:
        bench_browser(args.rounds)


if __name__ == "__main__":
    main()
