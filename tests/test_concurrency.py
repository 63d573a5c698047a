"""Eight browser sessions at once against one `streamlit run` server, several timing latency together.

Each session opens its own shared link (a different preset, name and input size), some change the
skip span in the sidebar while others press "Measure latency" within a fraction of a second of
each other. Every page must show only its own settings and its own result, no page an exception,
and the server's latency runs must not overlap.

The server runs with a `sitecustomize` that wraps `measure_latency` to record, per call, the
wall-clock times of the first and last progress report: both are made while the measurement holds
`device_lock()`, so the recorded spans of serialised runs are disjoint. The wrapper is set where
the function lives (`explorer.timing.measure`) and where the app looks it up (the `explorer.timing`
package). The measurement itself
is untouched (the wrapper passes every argument through and returns its result).
"""
import json
import re
import textwrap
import threading
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import torch
from playwright.sync_api import sync_playwright
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

import explorer
from explorer.trace import trace_module
from browser_util import CHROMIUM_FLAGS, EXCEPTION, IDLE, MAIN, chromium_path, streamlit_server, title

# (preset, session name, input size): different networks, labels and input shapes per session.
SESSIONS = [
    ("resnet20", "alpha-r20", 32),
    ("resnet32", "bravo-r32", 28),
    ("plain20", "charlie-p20", 36),
    ("resnet20", "delta-r20", 24),
    ("resnet44", "echo-r44", 20),
    ("resnet20", "foxtrot-r20", 40),
    ("plain20", "golf-p20", 16),
    ("resnet32", "hotel-r32", 44),
]
MEASURE = range(0, 5)            # these sessions press "Measure latency" together
CHANGE_SPAN = {5: 1, 6: 3, 7: 1}  # these change the skip span in the sidebar at the same time

SPY = textwrap.dedent('''
    """Test instrumentation: log when each latency measurement reports progress (inside the lock)."""
    import json, os, threading, time
    import explorer.timing as _timing
    import explorer.timing.measure as _home

    _measure = _home.measure_latency
    _log_lock = threading.Lock()

    def measure_latency(model_or_cfg, *args, progress=None, **kwargs):
        stamps = []

        def spy(fraction):
            stamps.append(time.time())
            return progress(fraction) if progress is not None else None

        try:
            return _measure(model_or_cfg, *args, progress=spy, **kwargs)
        finally:
            with _log_lock, open(os.environ["LATENCY_SPY_LOG"], "a") as f:
                f.write(json.dumps({"name": getattr(model_or_cfg, "name", "?"),
                                    "first": stamps[0] if stamps else None,
                                    "last": stamps[-1] if stamps else None}) + "\\n")

    _home.measure_latency = measure_latency    # where it lives
    _timing.measure_latency = measure_latency  # where the app looks it up
''')


def forward_during_diagram_trace() -> Exception | None:
    """Run a real forward pass in this thread while another thread is inside a diagram trace.

    A tracer that patches process-wide state (as torch.fx does with `torch.nn.Module.__call__`)
    would route the forward here into the other thread's trace and break it. A forward pre-hook holds the trace open at a known point. Returns the
    exception the forward raised, or None.
    """
    cfg = explorer.preset("resnet20").replace(widths=[8, 16, 32], stem_width=8, num_classes=10)
    with torch.device("meta"):
        traced = explorer.build_model(cfg)
    inside, go = threading.Event(), threading.Event()

    def hold(module, args):
        inside.set()
        go.wait(10)

    traced.layer1[0].register_forward_pre_hook(hold)
    tracer = threading.Thread(target=trace_module, args=(traced,), daemon=True)
    tracer.start()
    try:
        if not inside.wait(10):
            raise RuntimeError("the diagram trace never reached layer1.0")
        model = explorer.build_model(cfg).eval()
        try:
            with torch.no_grad():
                model(torch.randn(1, 3, 32, 32))  # (B, C, H, W)
        except Exception as exc:  # reported to the caller: any exception here is the finding
            return exc
        return None
    finally:
        go.set()
        tracer.join(10)


def test_forward_pass_is_unaffected_by_a_diagram_trace_in_another_thread():
    assert forward_during_diagram_trace() is None


class _OpLog(TorchDispatchMode):
    """Records the name of every aten op dispatched while it is active."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


class _CallLog(TorchFunctionMode):
    """Records the name of every torch function called while it is active."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def ops_seen_by_a_mode_in_another_thread(mode, seen) -> tuple[list[str], list[str]]:
    """Enter `mode` in one thread, run `torch.mul` in this thread meanwhile, then `torch.sub` in the mode's.

    Returns (what the mode saw while only this thread ran an op, what it saw in all).
    """
    entered, other_done = threading.Event(), threading.Event()
    during: list[str] = []

    def hold():
        with mode:
            entered.set()
            other_done.wait(10)
            during.extend(seen())
            torch.sub(torch.ones(2), 1)  # its own op: the mode must see this one

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    assert entered.wait(10)
    try:
        torch.mul(torch.ones(3), 2)  # another thread's op while the mode is active
    finally:
        other_done.set()
        t.join(10)
    return during, seen()


def test_dispatch_and_function_modes_are_thread_local():
    """A TorchDispatchMode (FlopCounterMode is one) or TorchFunctionMode is active only in the thread
    that entered it: ops another thread runs meanwhile never reach it, so it needs no lock to keep
    other threads' work out of its counts (a lock is still needed for anything process-wide it reads,
    such as CUDA memory statistics)."""
    dispatch = _OpLog()
    during, total = ops_seen_by_a_mode_in_another_thread(dispatch, lambda: list(dispatch.ops))
    assert during == [] and any("sub" in op for op in total) and not any("mul" in op for op in total)

    function = _CallLog()
    during, total = ops_seen_by_a_mode_in_another_thread(function, lambda: list(function.calls))
    assert during == [] and "sub" in total and "mul" not in total


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of this module's own: the latency spy must be in its process from the start, and
    the session's shared server (conftest.app_url) runs the app as users get it, uninstrumented."""
    spy_dir = tmp_path_factory.mktemp("spy")
    (spy_dir / "sitecustomize.py").write_text(SPY)
    log = spy_dir / "latency.jsonl"
    env = {"PYTHONPATH": str(spy_dir), "LATENCY_SPY_LOG": str(log)}
    with streamlit_server(env=env, log_path=spy_dir / "server.log") as (url, _):
        yield url, log


def link(server_url, preset, name, size):
    return f"{server_url}/?{urlencode({'preset': preset, 'name': name, 'input_size': size})}"


def wait_shown(pg, condition: str, arg, timeout=180_000):
    """Wait until the JS `condition(arg)` holds on the page or it shows an exception; fail on the latter."""
    pg.wait_for_function(f"a => document.querySelector('{EXCEPTION}') !== null || ({condition})(a)", arg=arg,
                         timeout=timeout)
    assert pg.locator(EXCEPTION).count() == 0, f"exception shown: {pg.locator(EXCEPTION).first.inner_text()[:500]}"


HAS_TITLE = ("n => { const h = document.querySelector('[data-testid=\"stMain\"] h3');"
             " return !!h && h.innerText.trim() === n; }")
HAS_TEXT = "t => (document.querySelector('[data-testid=\"stMain\"]') || {innerText: ''}).innerText.includes(t)"


def main_text(pg):
    return pg.locator(MAIN).inner_text()


def wait_idle(pg, timeout=120_000):
    pg.wait_for_timeout(300)
    pg.wait_for_selector(IDLE, timeout=timeout)


def test_eight_sessions_keep_their_own_settings_and_latency_results(server):
    url, log = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            pages = []
            # The sessions open one after another, each page's first run done before the next page
            # loads, so no more pages are busy loading at once than the machine has cores; all of
            # them stay open for the presses below.
            for preset, name, size in SESSIONS:  # one context per session: separate cookies and sockets
                pg = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
                pg.set_default_timeout(120_000)
                pg.goto(link(url, preset, name, size), wait_until="commit")
                wait_shown(pg, HAS_TITLE, name)
                wait_idle(pg)
                pages.append(pg)

            # Open the Latency tab on the measuring pages, then press all their buttons together
            # while the other sessions change their skip span.
            for i in MEASURE:
                pages[i].get_by_role("tab", name="Latency").click()
            for i in MEASURE:
                pages[i].wait_for_selector(".st-key-lat_run button")
                wait_idle(pages[i])
            for i in MEASURE:
                pages[i].locator(".st-key-lat_run button").click(no_wait_after=True)
            for i, span in CHANGE_SPAN.items():
                box = pages[i].locator(".st-key-cfg_skip_span input")
                box.fill(str(span))
                box.press("Enter")

            for i in MEASURE:
                wait_shown(pages[i], HAS_TEXT, "Measured on")
                wait_idle(pages[i])
            for i, span in CHANGE_SPAN.items():
                wait_shown(pages[i], HAS_TEXT, f"skip span {span} ·")
                wait_idle(pages[i])

            for i, (pg, (preset, name, size)) in enumerate(zip(pages, SESSIONS)):
                assert pg.locator(EXCEPTION).count() == 0, f"{name}: exception shown"
                assert title(pg) == name
                query = {k: v[0] for k, v in parse_qs(urlparse(pg.url).query).items()}
                assert query["name"] == name and query["input_size"] == str(size)
                if i in CHANGE_SPAN:
                    assert query["skip_span"] == str(CHANGE_SPAN[i])
                text = main_text(pg)
                others = [n for _, n, _ in SESSIONS if n != name]
                assert not any(o in text for o in others), f"{name} shows another session's name"
                if i in MEASURE:
                    # Its own result: the input shape in the caption is this session's input size.
                    caption = pg.locator('[data-testid="stCaptionContainer"]', has_text="Measured on").first
                    assert f"input 1x3x{size}x{size}" in caption.inner_text()
                    median = pg.locator('[data-testid="stMetric"]', has_text="Median")
                    # in engineering units: "3.21 ms", or "1.20 s" when a loaded machine makes it slow
                    assert median.count() == 1 and re.search(r"\d (µs|ms|s)\b", median.inner_text())
                else:
                    assert "Measured on" not in text
        finally:
            browser.close()

    # The server timed each pressing session once, and never two at the same time.
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    measured = {SESSIONS[i][1] for i in MEASURE}
    assert sorted(r["name"] for r in runs) == sorted(measured)
    assert all(r["first"] is not None for r in runs)
    spans = sorted((r["first"], r["last"]) for r in runs)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start, f"latency runs overlapped: {spans}"
