"""Shared pieces of the real-browser tests and the benchmarks that drive a browser: a
`streamlit run` server on loopback, headless Chromium, widget lookup by key, and waits for the
app's reruns. The tests reach the server and the browser through fixtures in conftest.py
(`app_url`: one server per test session; `browser`; `new_page`: a fresh context per call)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
MAIN = '[data-testid="stMain"]'
EXCEPTION = '[data-testid="stException"]'
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
IMG = ".diagram img"               # a static SVG (Unit and Compare views)
DIAGRAM = ".dv-stage svg"          # the Diagram view's interactive drawing
FRAME = ".dv"                      # its frame: data-version (of the SVG), data-selected (drawn id)


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("Chromium is not installed: run scripts/setup_system.sh --test (make test does)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(env: Mapping[str, str] | None = None, start_timeout_s: float = 90.0,
                     log_path: Path | None = None,
                     script: Path = ROOT / "app.py") -> Iterator[tuple[str, subprocess.Popen]]:
    """`streamlit run app.py` (or `script`) on 127.0.0.1 and a free port; yields (url, process).

    Error details are shown in full (a test must see an exception to fail on it) and the file
    watcher is off (files edited while the server runs do not reload modules under it).
    """
    port = free_port()
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (full_env.get("PYTHONPATH", ""), str(ROOT)) if p)
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none", "--client.showErrorDetails", "full"],
        cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, start_timeout_s)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if log_path:
            log.close()


def wait_healthy(url: str, proc: subprocess.Popen | None, timeout_s: float) -> None:
    """Return once `url` answers its health check; raise if it never does or the process exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"streamlit did not answer at {url} within {timeout_s:.0f} s")


def key_css(key: str) -> str:
    """CSS selector of the widget whose Streamlit key is `key`."""
    return f".st-key-{key}"


def choose(pg, key: str, option: str) -> None:
    """Pick `option` in the selectbox whose widget key is `key`."""
    pg.locator(f"{key_css(key)} input").click()
    pg.keyboard.type(option)
    pg.get_by_role("option", name=option, exact=True).click()


def enter(pg, key: str, value) -> None:
    """Type `value` into the text or number input whose widget key is `key`, then press Enter."""
    box = pg.locator(f"{key_css(key)} input")
    box.fill(str(value))
    box.press("Enter")


def start_lab_run(pg, epochs: int, seeds: int = 1) -> None:
    """In the open Lab view: set the epochs and seeds, then press Start training (its end not awaited)."""
    enter(pg, "lab_epochs", epochs)
    settle(pg)
    choose(pg, "lab_seeds", str(seeds))
    settle(pg)
    pg.locator(f"{key_css('lab_run')} button").click()


def settle(pg, timeout_ms: int = 120_000) -> None:
    """Wait until the app has finished its rerun."""
    pg.wait_for_timeout(300)  # let a just-triggered rerun start
    pg.wait_for_selector(IDLE, timeout=timeout_ms)
    pg.wait_for_timeout(500)  # and its elements paint


def title(pg) -> str:
    return pg.locator(f"{MAIN} h3").first.inner_text().strip()


def diagram_version(pg) -> str | None:
    """The version (a checksum) of the SVG the Diagram view shows, None before it shows one."""
    frame = pg.locator(FRAME)
    return frame.first.get_attribute("data-version") if frame.count() else None


def wait_diagram_change(pg, before: str | None, timeout: int = 60_000) -> float:
    """Seconds until the Diagram view shows an SVG other than version `before`."""
    t0 = time.perf_counter()
    pg.wait_for_function(
        "v => { const f = document.querySelector('.dv'); return f && f.querySelector('svg') && f.dataset.version !== v; }",
        arg=before, timeout=timeout)
    return time.perf_counter() - t0


def diagram_node(pg, node_id: str):
    """The drawn node (a Graphviz <g class="node">) whose id is `node_id`."""
    return pg.locator(f"xpath=//*[contains(@class,'dv-stage')]//*[local-name()='g'][contains(@class,'node')]"
                      f"[*[local-name()='title' and text()='{node_id}']]")


def view_box(pg) -> list[float]:
    return [float(v) for v in pg.locator(DIAGRAM).get_attribute("viewBox").split()]


# Text cut short: an element with text of its own whose content is wider than its box (where its
# overflow is hidden or ellipsised), or whose text ends in "…". Hidden elements are skipped.
CUT_TEXT_JS = """
scope => {
  const out = [];
  for (const root of document.querySelectorAll(scope)) {
    for (const el of root.querySelectorAll('*')) {
      const own = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim();
      if (!own || !el.offsetParent || el.clientWidth === 0) continue;
      if (el.closest('[role="tooltip"], [data-testid="stTooltipContent"], .stCode, pre, iframe')) continue;
      if (el.closest('svg')) continue;  // drawings pan and zoom inside their own frame
      const st = getComputedStyle(el);
      const clips = st.overflowX !== 'visible' || st.textOverflow === 'ellipsis';
      // text running past the edge of an ancestor that hides what overflows (a cut label)
      let hidden = false;
      const right = el.getBoundingClientRect().left + el.scrollWidth;
      for (let a = el.parentElement; a && a !== root.parentElement; a = a.parentElement) {
        const as = getComputedStyle(a);
        if (as.overflowX === 'hidden' || as.overflowX === 'clip') {
          hidden = right > a.getBoundingClientRect().right + 1;
          break;
        }
      }
      if ((clips && el.scrollWidth > el.clientWidth + 1) || hidden || own.endsWith('…'))
        out.push({text: el.innerText.slice(0, 80), scroll: el.scrollWidth, client: el.clientWidth,
                  tag: el.tagName, testid: el.closest('[data-testid]')?.dataset.testid});
    }
    // a box that ends its text in an ellipsis when it is too narrow (labels of toggles, metrics)
    for (const el of root.querySelectorAll('*')) {
      if (!el.offsetParent || el.closest('svg')) continue;
      const st = getComputedStyle(el);
      if (st.textOverflow === 'ellipsis' && st.overflowX !== 'visible' && el.scrollWidth > el.clientWidth + 1
          && el.innerText.trim())
        out.push({text: el.innerText.slice(0, 80), scroll: el.scrollWidth, client: el.clientWidth,
                  tag: el.tagName, testid: el.closest('[data-testid]')?.dataset.testid});
    }
    // a table wider than its frame hides columns behind a scroll bar
    for (const frame of root.querySelectorAll('[data-testid="stTable"]')) {
      const table = frame.querySelector('table');
      if (table && frame.offsetParent && table.offsetWidth > frame.clientWidth + 1)
        out.push({text: table.innerText.slice(0, 80), scroll: table.offsetWidth, client: frame.clientWidth,
                  tag: 'TABLE', testid: 'stTable'});
    }
  }
  return out;
}
"""


def cut_text(pg, scope: str = f'{MAIN}, [data-testid="stSidebar"]') -> list[dict]:
    """Elements under `scope` (CSS) whose text is cut short: [{text, scroll, client, tag, testid}]."""
    return pg.evaluate(CUT_TEXT_JS, scope)


def open_tab(pg, name: str) -> None:
    """Open the view tab called `name` and wait for its run."""
    pg.get_by_role("tab", name=name).click()
    settle(pg)
