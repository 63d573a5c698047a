"""The app against the command line: the same latency and the same Lab run, measured both ways.

Latency: the median forward-pass time of a model at batch 1 on the CPU that
`python -m explorer latency MODEL --json --threads N` reports, against the median the app's
Latency view shows after *Measure latency* at the same thread count (1, and torch's default).
Lab: the wall time of `python -m explorer lab EXPERIMENT --seeds S --epochs E --json` against
the time from pressing *Start training* in the app until its run has finished and the results
show. The app runs in a real `streamlit run` server driven by headless Chromium; the two sides
alternate (app, CLI, app, CLI, ...) so drift on the machine falls on both.

    python benchmarks/bench_app_vs_cli.py [--rounds 3] [--model resnet50] [--lab-epochs 2] [--lab-seeds 1]
                                          [--skip-latency] [--skip-lab] [--app SCRIPT] [--out FILE.json]

Prints per round and the medians with the ratio app / CLI against the targets (latency within
1.15x, Lab within 1.25x, the Lab's shown estimate within 25% of the app's wall time). The CLI's Lab wall time includes starting Python and importing torch,
which the app's server has done already, so the Lab's own `seconds` (training only) are printed
beside it too.

At torch's default thread count the timed passes use every core, so any other work on the
machine stalls them, and the app's side has more of it than the CLI's: the browser paints the
running page (progress bar, the fading of the previous run's elements) and the server's own
threads wake up (Streamlit polls its config and secrets files every 0.2 s). The app paints no
animation while it runs, and this script waits for the app by looking at the page four times a
second rather than on every frame; it prints the browser's CPU seconds during each side's
measurement so a run shows how much competing work there was (on a quiet machine: at 1 thread
the other core absorbs it, at the default none is left).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from browser_util import (CHROMIUM_FLAGS, MAIN, choose, chromium_path, enter, open_tab, settle,  # noqa: E402
                          streamlit_server)

from explorer import lab  # noqa: E402  (the experiments' titles, as the Lab's selectbox shows them)

LATENCY_TARGET = 1.15
LAB_TARGET = 1.25
ESTIMATE_TARGET = 0.25  # the Lab's "Expected to take about N s" within 25% of the app's wall time
UNITS_MS = {"µs": 1e-3, "ms": 1.0, "s": 1e3}


def parse_ms(text: str) -> float:
    """A duration as the app prints it ("850 µs", "45.2 ms", "1.23 s"), in milliseconds."""
    m = re.fullmatch(r"\s*([\d.,]+)\s*(µs|ms|s)\s*", text)
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return float(m.group(1).replace(",", "")) * UNITS_MS[m.group(2)]


def run_cli(args: list[str]) -> tuple[dict, float]:
    """`python -m explorer ARGS` (JSON on stdout) and its wall time in seconds."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "explorer", *args], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout), time.perf_counter() - t0


SCRIPT_STATE_JS = "() => document.querySelector('[data-testid=\"stApp\"]')?.dataset.testScriptState"
LOOK_EVERY_S = 0.25     # how often the page is looked at while it runs (not on every frame)


def press_and_wait(pg, key: str, timeout_ms: int = 600_000) -> float:
    """Click the button `key` and wait until the rerun it starts has finished; seconds taken.

    The page is looked at every LOOK_EVERY_S: Playwright's own waits poll on every animation
    frame, which keeps the browser painting while the app's passes run on the same cores."""
    t0 = time.perf_counter()
    pg.locator(f".st-key-{key} button").click()
    started = False
    while time.perf_counter() - t0 < timeout_ms / 1000:
        time.sleep(LOOK_EVERY_S)
        state = pg.evaluate(SCRIPT_STATE_JS)
        started = started or state == "running"
        if state == "notRunning" and (started or time.perf_counter() - t0 > 5.0):
            return time.perf_counter() - t0  # (a very short rerun may be over before the first look)
    raise TimeoutError(f"the app was still running after {timeout_ms / 1000:.0f} s")


# -- who else used the CPU -------------------------------------------------------------------
def descendants(pid: int) -> set[int]:
    """`pid` and every process below it (Linux /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
                parents[int(entry)] = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, grew = {pid}, True
    while grew:
        new = {p for p, parent in parents.items() if parent in found} - found
        found |= new
        grew = bool(new)
    return found


def cpu_seconds(pids: set[int]) -> float:
    """User plus system CPU seconds the processes `pids` have used so far."""
    total = 0
    for pid in pids:
        try:
            stat = open(f"/proc/{pid}/stat").read()
            fields = stat[stat.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


class BrowserCpu:
    """CPU seconds the browser (this script's child processes other than the server) used."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid

    def now(self) -> float:
        if not os.path.isdir("/proc") or self.server_pid is None:
            return float("nan")
        mine = descendants(os.getpid()) - descendants(self.server_pid) - {os.getpid()}
        return cpu_seconds(mine)


def alerts(pg) -> list[str]:
    return [t.strip() for t in pg.locator(f'{MAIN} [data-testid="stAlert"]').all_inner_texts()]


# -- latency ---------------------------------------------------------------------------------
def app_latency(pg) -> dict:
    press_and_wait(pg, "lat_run")
    box = pg.locator(".st-key-latency_metrics")
    labels = box.locator('[data-testid="stMetricLabel"]').all_inner_texts()
    values = box.locator('[data-testid="stMetricValue"]').all_inner_texts()
    metrics = dict(zip((x.strip() for x in labels), (v.strip() for v in values)))
    caption = pg.locator(MAIN).get_by_text("Measured on").first.inner_text()
    return {"median_ms": parse_ms(metrics["Median"]), "caption": caption.strip(), "alerts": alerts(pg)}


def cli_latency(model: str, threads: int | None) -> dict:
    args = ["latency", model, "--device", "cpu", "--json"] + ([] if threads is None else ["--threads", str(threads)])
    doc, wall = run_cli(args)
    return {"median_ms": doc["median_ms"], "threads": doc["threads"], "noisy": doc["noisy"],
            "warnings": doc["warnings"], "wall_s": wall}


def bench_latency(pg, url: str, model: str, rounds: int, threads_list: list[int | None],
                  browser_cpu: BrowserCpu) -> list[dict]:
    pg.goto(f"{url}/?preset={model}")
    settle(pg)
    open_tab(pg, "Latency")
    out = []
    for threads in threads_list:
        choose(pg, "lat_threads", "torch default" if threads is None else str(threads))
        settle(pg)
        app, cli = [], []
        for i in range(rounds):
            b0 = browser_cpu.now()
            a = app_latency(pg)
            b1 = browser_cpu.now()
            c = cli_latency(model, threads)
            a["browser_cpu_s"], c["browser_cpu_s"] = b1 - b0, browser_cpu.now() - b1
            app.append(a)
            cli.append(c)
            print(f"  threads {threads or 'default'} round {i + 1}: app {a['median_ms']:.2f} ms, "
                  f"CLI {c['median_ms']:.2f} ms ({c['threads']} threads); browser CPU during each "
                  f"{a['browser_cpu_s']:.2f} s / {c['browser_cpu_s']:.2f} s"
                  + (f"; app alerts: {' | '.join(a['alerts'])}" if a["alerts"] else "")
                  + ("; CLI noisy" if c["noisy"] else ""), flush=True)
        app_med = statistics.median(a["median_ms"] for a in app)
        cli_med = statistics.median(c["median_ms"] for c in cli)
        out.append({"threads": threads, "app_ms": app_med, "cli_ms": cli_med, "ratio": app_med / cli_med,
                    "app_caption": app[-1]["caption"], "app": app, "cli": cli})
    return out


# -- Lab -------------------------------------------------------------------------------------
def bench_lab(pg, url: str, experiment: str, epochs: int, rounds: int, seeds: int = 1) -> dict:
    pg.goto(url)
    settle(pg)
    open_tab(pg, "Lab")
    choose(pg, "lab_experiment", lab.EXPERIMENTS[experiment].title)
    settle(pg)
    choose(pg, "lab_seeds", str(seeds))
    settle(pg)
    enter(pg, "lab_epochs", epochs)
    settle(pg)
    app, cli = [], []
    for i in range(rounds):
        expected = pg.locator(MAIN).get_by_text("Expected to take about").first.inner_text()
        found = re.search(r"about ([\d,.]+) s", expected)
        estimate = float(found.group(1).replace(",", "")) if found else None
        a_wall = press_and_wait(pg, "lab_run")
        caption = pg.locator(MAIN).get_by_text(re.compile(r"variants? × \d+ seed")).first.inner_text()
        doc, c_wall = run_cli(["lab", experiment, "--seeds", str(seeds), "--epochs", str(epochs), "--json"])
        app.append({"wall_s": a_wall, "estimate_s": estimate, "caption": caption.strip(), "alerts": alerts(pg)})
        cli.append({"wall_s": c_wall, "seconds": doc.get("seconds")})
        print(f"  lab round {i + 1}: app {a_wall:.1f} s (estimated {estimate} s; {caption.strip()}), CLI {c_wall:.1f} s "
              f"(training {doc.get('seconds', float('nan')):.1f} s)", flush=True)
    app_med = statistics.median(a["wall_s"] for a in app)
    cli_med = statistics.median(c["wall_s"] for c in cli)
    cli_train = statistics.median(c["seconds"] for c in cli) if all(c["seconds"] for c in cli) else None
    errors = [a["estimate_s"] / a["wall_s"] - 1 for a in app if a["estimate_s"]]
    return {"seeds": seeds, "estimate_error": statistics.median(errors) if errors else None, "estimate_errors": errors,"experiment": experiment, "epochs": epochs, "app_s": app_med, "cli_s": cli_med,
            "cli_training_s": cli_train, "ratio": app_med / cli_med,
            "ratio_to_training": app_med / cli_train if cli_train else None, "app": app, "cli": cli}


def verdict(ratio: float, target: float) -> str:
    return f"{ratio:.2f}x (target <= {target:.2f}x: {'met' if ratio <= target else 'MISSED'})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--model", default="resnet50")
    p.add_argument("--threads", default="1,default", help="comma-separated thread counts; 'default' is torch's")
    p.add_argument("--lab-experiment", default="skip_span")
    p.add_argument("--lab-epochs", type=int, default=2)
    p.add_argument("--lab-seeds", type=int, default=1, help="3 is the Lab's default (workers in parallel)")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--skip-lab", action="store_true")
    p.add_argument("--app", type=Path, default=ROOT / "app.py", help="the Streamlit script to serve")
    p.add_argument("--out", type=Path, default=ROOT / "test-results" / "bench_app_vs_cli.json")
    args = p.parse_args(argv)
    threads_list = [None if t.strip() == "default" else int(t) for t in args.threads.split(",")]

    from playwright.sync_api import sync_playwright

    result: dict = {}
    with streamlit_server(script=args.app.resolve()) as (url, server), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(120_000)
        if not args.skip_latency:
            print(f"latency: {args.model}, batch 1, CPU, {args.rounds} rounds, app and CLI alternating", flush=True)
            result["latency"] = bench_latency(pg, url, args.model, args.rounds, threads_list, BrowserCpu(server.pid))
        if not args.skip_lab:
            print(f"Lab: {args.lab_experiment}, {args.lab_seeds} seed(s), {args.lab_epochs} epochs, {args.rounds} rounds",
                  flush=True)
            result["lab"] = bench_lab(pg, url, args.lab_experiment, args.lab_epochs, args.rounds, args.lab_seeds)
        browser.close()

    print()
    for r in result.get("latency", []):
        print(f"latency {args.model} threads {r['threads'] or 'default'}: app median {r['app_ms']:.2f} ms, "
              f"CLI median {r['cli_ms']:.2f} ms, app / CLI {verdict(r['ratio'], LATENCY_TARGET)}")
        print(f"  app: {r['app_caption']}")
    if "lab" in result:
        r = result["lab"]
        extra = (f"; against the CLI's training time alone ({r['cli_training_s']:.1f} s) {r['ratio_to_training']:.2f}x"
                 if r["ratio_to_training"] else "")
        print(f"Lab {r['experiment']} ({r['epochs']} epochs, {r['seeds']} seed(s)): app median {r['app_s']:.1f} s, "
              f"CLI median {r['cli_s']:.1f} s, app / CLI {verdict(r['ratio'], LAB_TARGET)}{extra}")
        if r["estimate_error"] is None:
            print("  the app showed no estimate")
        else:
            met = abs(r["estimate_error"]) <= ESTIMATE_TARGET
            print(f"  the app's estimate against its wall time: median {r['estimate_error']:+.0%} "
                  f"(per round {', '.join(f'{e:+.0%}' for e in r['estimate_errors'])}; target within "
                  f"{ESTIMATE_TARGET:.0%}: {'met' if met else 'MISSED'})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
