"""Load test: M headless-browser sessions change settings for K minutes against a local server.

Each session repeatedly changes one setting (alternating preset, skip span and diagram detail),
waits until the page shows it (title, caption or a new diagram) and records how long that took.
Errors (must be 0): an exception shown in a page, a change that never shows, a page error.
The server's memory (RSS of the streamlit process and its children, from /proc) is sampled idle,
after one session alone has used the app for a while (the warm one-user baseline), every few
seconds during the run, and for a cool-down after the sessions close.

    python benchmarks/load_test.py                       # M=8, K=3, server started here
    python benchmarks/load_test.py --sessions 4 --minutes 1 --url http://127.0.0.1:8501

Writes the figures as JSON to --out (default test-results/load_test.json) and prints tables.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from browser_util import (CHROMIUM_FLAGS, EXCEPTION, IDLE, chromium_path, streamlit_server,  # noqa: E402
                          wait_healthy)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PRESETS = ["resnet20", "resnet32", "plain20", "resnet44", "resnet56"]
SPANS = [1, 2, 3]
DETAILS = ["stages", "units", "layers"]
CHANGE_TIMEOUT_S = 90          # a change that has not shown by then counts as an error
MAX_CHANGES = 10_000           # per session: the loop is bounded even if time stood still
OPEN_TRIES = 3                 # page loads per session before it gives up

HAS_TITLE = ("n => { const h = document.querySelector('[data-testid=\"stMain\"] h3');"
             " return !!h && h.innerText.trim() === n; }")
HAS_TEXT = "t => (document.querySelector('[data-testid=\"stMain\"]') || {innerText: ''}).innerText.includes(t)"
# The Diagram view's interactive frame carries the version (a checksum) of the SVG it shows.
NEW_DIAGRAM = ("v => { const f = document.querySelector('.dv');"
               " return !!f && !!f.querySelector('svg') && f.dataset.version !== v; }")


# -- server memory from /proc --------------------------------------------------------------
def children_of(pid: int) -> list[int]:
    """`pid` and all its descendants (by parent id in /proc/*/stat)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [p for p, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def rss_bytes(pid: int) -> int:
    """Resident memory of `pid` and its descendants, bytes."""
    total = 0
    for p in children_of(pid):
        try:
            with open(f"/proc/{p}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def listener_pid(port: int) -> int | None:
    """The process listening on TCP `port` (among those this user may inspect), else None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "0A":  # 0A = LISTEN
                        inodes.add(cols[9])
        except OSError:
            continue
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                link = os.readlink(f"/proc/{entry}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(entry)
        except OSError:
            continue
    return None


class MemorySampler:
    """Samples the server's RSS every `every_s` seconds in a background thread."""

    def __init__(self, pid: int | None, every_s: float) -> None:
        self.pid, self.every_s, self.t0 = pid, every_s, time.monotonic()
        self.samples: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample("run")
            self._stop.wait(self.every_s)

    def sample(self, phase: str) -> None:
        if self.pid is not None:
            self.samples.append({"t_s": round(time.monotonic() - self.t0, 1), "phase": phase,
                                 "rss_mib": round(rss_bytes(self.pid) / 2**20, 1)})

    def start(self) -> "MemorySampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# -- sessions ------------------------------------------------------------------------------
class Session:
    def __init__(self, index: int) -> None:
        self.index = index
        self.times_s: list[float] = []
        self.by_kind: dict[str, list[float]] = {"preset": [], "skip_span": [], "detail": []}
        self.errors: list[str] = []

    def error(self, what: str) -> None:
        self.errors.append(what)


async def idle(pg, timeout_s: float = CHANGE_TIMEOUT_S) -> None:
    await pg.wait_for_timeout(200)
    await pg.wait_for_selector(IDLE, timeout=timeout_s * 1000)


async def shown(pg, condition: str, arg) -> None:
    """Wait until `condition(arg)` holds or the page shows an exception (then raise)."""
    await pg.wait_for_function(f"a => document.querySelector('{EXCEPTION}') !== null || ({condition})(a)",
                               arg=arg, timeout=CHANGE_TIMEOUT_S * 1000, polling=50)
    if await pg.locator(EXCEPTION).count():
        text = (await pg.locator(EXCEPTION).first.inner_text())[:300].replace("\n", " ")
        raise RuntimeError(f"exception shown: {text}")


async def change_preset(pg, name: str) -> None:
    await pg.locator(".st-key-preset input").click()
    await pg.keyboard.type(name)
    await pg.get_by_role("option", name=name, exact=True).click()
    await shown(pg, HAS_TITLE, name)


async def change_span(pg, span: int) -> None:
    box = pg.locator(".st-key-cfg_skip_span input")
    await box.fill(str(span))
    await box.press("Enter")
    await shown(pg, HAS_TEXT, f"skip span {span} ·")


async def change_detail(pg, current: str) -> str:
    """Switch the diagram to the next detail level after `current`; returns the new level."""
    detail = DETAILS[(DETAILS.index(current) + 1) % len(DETAILS)]
    before = await pg.locator(".dv").first.get_attribute("data-version")
    await pg.locator(".st-key-diagram_detail").get_by_text(detail, exact=True).click()
    await shown(pg, NEW_DIAGRAM, before)
    return detail


async def current_detail(pg) -> str:
    """The detail level checked in the diagram's radio (the page may have been reloaded)."""
    for level in DETAILS:
        if await pg.locator(".st-key-diagram_detail").get_by_role("radio", name=level).is_checked():
            return level
    return "units"


async def run_session(browser, url: str, s: Session, deadline: float) -> None:
    """One user: open the app on a preset, then change settings until the deadline."""
    ctx = await browser.new_context(viewport={"width": 1400, "height": 900})
    pg = await ctx.new_page()
    pg.on("pageerror", lambda exc: s.error(f"page error: {exc}"))
    first = PRESETS[s.index % len(PRESETS)]
    for attempt in range(OPEN_TRIES):  # a user whose page failed to load reloads it
        try:
            await pg.goto(f"{url}/?{urlencode({'preset': first})}", timeout=CHANGE_TIMEOUT_S * 1000)
            await shown(pg, HAS_TITLE, first)
            await pg.wait_for_selector(".dv-stage svg", timeout=CHANGE_TIMEOUT_S * 1000)
            await idle(pg)
            break
        except Exception as exc:  # counted as an error
            s.error(f"open: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    else:
        await ctx.close()
        return
    detail = "units"  # the app's default level
    step = s.index  # sessions start at different points of the cycle, so they differ at any moment
    while time.monotonic() < deadline and step - s.index < MAX_CHANGES:
        kind = ("preset", "skip_span", "detail")[step % 3]
        t0 = time.perf_counter()
        try:
            if kind == "preset":
                await change_preset(pg, PRESETS[(step // 3) % len(PRESETS)])
            elif kind == "skip_span":
                await change_span(pg, SPANS[(step // 3) % len(SPANS)])
            else:
                detail = await change_detail(pg, detail)
            took = time.perf_counter() - t0
            s.times_s.append(took)
            s.by_kind[kind].append(took)
            await idle(pg)
        except Exception as exc:  # counted as an error; the session reloads and goes on
            s.error(f"{kind}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            try:
                await pg.reload(timeout=CHANGE_TIMEOUT_S * 1000)
                await idle(pg)
                detail = await current_detail(pg)
            except Exception as exc2:
                s.error(f"reload: {type(exc2).__name__}")
                break
        step += 1
    await ctx.close()


async def drive(url: str, sessions: list[Session], deadline: float) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            await asyncio.gather(*(run_session(browser, url, s, deadline) for s in sessions))
        finally:
            await browser.close()


# -- report --------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _phase(samples: list[dict], phase: str) -> float | None:
    """The last memory sample of a phase (None when there is none)."""
    found = [x["rss_mib"] for x in samples if x["phase"] == phase]
    return found[-1] if found else None


def fmt(x: float | None, unit: str = "s") -> str:
    return "-" if x is None else f"{x:.2f} {unit}"


def report(args, url: str, sessions: list[Session], samples: list[dict], wall_s: float,
           extra_errors: list[str]) -> dict:
    times = [t for s in sessions for t in s.times_s]
    errors = extra_errors + [e for s in sessions for e in s.errors]
    all_mem = [x["rss_mib"] for x in samples]
    result = {
        "url": url, "sessions": args.sessions, "minutes": args.minutes, "wall_s": round(wall_s, 1),
        "changes": len(times), "errors": len(errors), "error_messages": errors[:50],
        "change_s": {"p50": pct(times, 50), "p95": pct(times, 95), "max": max(times) if times else None,
                     "mean": statistics.fmean(times) if times else None},
        "change_s_by_kind": {k: {"n": len(v), "p50": pct(v, 50), "p95": pct(v, 95)}
                             for k, v in ((k, [t for s in sessions for t in s.by_kind[k]])
                                          for k in ("preset", "skip_span", "detail"))},
        "per_session": [{"session": s.index, "changes": len(s.times_s), "errors": len(s.errors),
                         "p50_s": pct(s.times_s, 50), "p95_s": pct(s.times_s, 95)} for s in sessions],
        "memory_mib": {"idle": _phase(samples, "idle"), "one_user": _phase(samples, "one-user"),
                       "peak": max(all_mem) if all_mem else None,
                       "end_of_run": _phase(samples, "run"),
                       "after_cooldown": all_mem[-1] if all_mem else None},
        "memory_samples": samples,
    }
    print(f"\nLoad test: {args.sessions} sessions x {args.minutes} min against {url} ({wall_s:.0f} s wall)")
    print(f"{'session':>8} {'changes':>8} {'errors':>7} {'p50':>9} {'p95':>9}")
    for row in result["per_session"]:
        print(f"{row['session']:>8} {row['changes']:>8} {row['errors']:>7} {fmt(row['p50_s']):>9} "
              f"{fmt(row['p95_s']):>9}")
    c = result["change_s"]
    print(f"{'all':>8} {len(times):>8} {len(errors):>7} {fmt(c['p50']):>9} {fmt(c['p95']):>9}   max {fmt(c['max'])}")
    for kind, row in result["change_s_by_kind"].items():
        print(f"  {kind:<10} n={row['n']:<5} p50 {fmt(row['p50'])}  p95 {fmt(row['p95'])}")
    if samples:
        print(f"\n{'t (s)':>7} {'phase':>9} {'RSS (MiB)':>10}")
        stride = max(1, len(samples) // 24)
        shown_rows = samples[::stride] + ([samples[-1]] if (len(samples) - 1) % stride else [])
        for x in shown_rows:
            print(f"{x['t_s']:>7.0f} {x['phase']:>9} {x['rss_mib']:>10.1f}")
        m = result["memory_mib"]
        print(f"server memory: idle {m['idle']} MiB, one user warm {m['one_user']} MiB, peak {m['peak']} MiB, "
              f"end of run {m['end_of_run']} MiB, after cool-down {m['after_cooldown']} MiB")
        if m["one_user"] and m["after_cooldown"]:
            print(f"after cool-down / one user warm: {m['after_cooldown'] / m['one_user']:.2f}")
    else:
        print("server memory: not available (the server process could not be found in /proc)")
    for e in errors[:10]:
        print("error:", e)
    return result


def check_url(url: str) -> str:
    parts = urlparse(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK:
        raise SystemExit(f"error: --url={url!r} is invalid: a server on loopback only "
                         f"(http://127.0.0.1:PORT or http://localhost:PORT)")
    return url.rstrip("/")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", "-m", type=int, default=8, help="simultaneous browser sessions (M)")
    ap.add_argument("--minutes", "-k", type=float, default=3.0, help="how long the sessions run (K)")
    ap.add_argument("--url", help="a server already running on 127.0.0.1/localhost (default: start one)")
    ap.add_argument("--sample-s", type=float, default=3.0, help="seconds between memory samples")
    ap.add_argument("--baseline-s", type=float, default=30.0,
                    help="one session alone first, for the warm one-user memory baseline (0: skip)")
    ap.add_argument("--cooldown-s", type=float, default=150.0,
                    help="memory sampling after the sessions end (Streamlit drops a closed session's "
                         "state after 120 s)")
    ap.add_argument("--out", default=str(ROOT / "test-results" / "load_test.json"), help="JSON report path")
    args = ap.parse_args(argv)
    if not 1 <= args.sessions <= 64:
        ap.error("--sessions must be from 1 to 64")
    if not 0 < args.minutes <= 60:
        ap.error("--minutes must be above 0 and at most 60")

    def run(url: str, pid: int | None) -> dict:
        sampler = MemorySampler(pid, args.sample_s)
        sampler.sample("idle")
        warm = Session(0)
        if args.baseline_s > 0:  # one user first: the server warm (torch loaded, caches in use)
            asyncio.run(drive(url, [warm], time.monotonic() + args.baseline_s))
            time.sleep(args.sample_s)
            sampler.sample("one-user")
        sessions = [Session(i) for i in range(args.sessions)]
        sampler.start()
        t0 = time.monotonic()
        asyncio.run(drive(url, sessions, t0 + args.minutes * 60))
        wall = time.monotonic() - t0
        sampler.stop()
        end = time.monotonic() + args.cooldown_s
        while time.monotonic() < end:  # sessions closed: does memory come back down?
            time.sleep(args.sample_s)
            sampler.sample("cooldown")
        return report(args, url, sessions, sampler.samples, wall, [f"one-user phase: {e}" for e in warm.errors])

    if args.url:
        url = check_url(args.url)
        wait_healthy(url, None, 30)
        result = run(url, listener_pid(urlparse(url).port or 80))
    else:
        with streamlit_server() as (url, proc):
            result = run(url, proc.pid)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwritten: {out}")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
