import os

import pytest
import torch
from hypothesis import settings

# Property tests run the same examples on every machine, so a run is repeatable; set
# HYPOTHESIS_PROFILE=explore to draw fresh random examples when hunting for new failures.
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# Small, repeatable CPU work, often beside other jobs: at most two torch threads, and never more
# than the machine's cores.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def fresh_server_limits(monkeypatch):
    """The server's limits are read from the environment once per process (explorer.limits);
    a test that sets or removes a RESNET_EXPLORER_* variable through `monkeypatch` has them read
    again at once, and every test starts from the environment as it is."""
    from explorer.limits import server_limits

    def rereading(change):
        def changed(*args, **kwargs):
            change(*args, **kwargs)
            server_limits.cache_clear()
        return changed

    monkeypatch.setenv = rereading(monkeypatch.setenv)
    monkeypatch.delenv = rereading(monkeypatch.delenv)
    server_limits.cache_clear()
    yield
    server_limits.cache_clear()


@pytest.fixture(autouse=True)
def private_run_store(tmp_path_factory, monkeypatch):
    """Every test keeps its runs (CLI measurements, app sessions, Lab runs) in a store of its own,
    never in the user's; a test that names a store or turns storing off overrides this."""
    monkeypatch.setenv("RESNET_EXPLORER_STORE", str(tmp_path_factory.mktemp("store") / "runs.sqlite"))


# -- real-browser tests ----------------------------------------------------------------------
# The four tests/test_browser*.py modules share one `streamlit run app.py` server, started the
# first time a test asks for it and stopped when the session ends; each test opens its pages in
# browser contexts of its own (own cookies, storage and Streamlit session), closed after it.

@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """URL of the session's one app server (headless, file watcher off, a free loopback port).
    Runs it records go to a store of this session's own; its log to test-results/browser_server.log."""
    from browser_util import ROOT, streamlit_server

    (ROOT / "test-results").mkdir(exist_ok=True)
    store = tmp_path_factory.mktemp("app_server") / "runs.sqlite"
    with streamlit_server(env={"RESNET_EXPLORER_STORE": str(store)},
                          log_path=ROOT / "test-results" / "browser_server.log") as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, one per browser test module."""
    from browser_util import CHROMIUM_FLAGS, chromium_path
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser):
    """new_page(width, height) -> a page in a fresh browser context (downloads accepted, 60 s
    default timeout); every context this test opened is closed after it."""
    contexts = []

    def open_page(width: int = 1500, height: int = 1000):
        ctx = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        contexts.append(ctx)
        pg = ctx.new_page()
        pg.set_default_timeout(60_000)
        return pg

    yield open_page
    for ctx in contexts:
        ctx.close()
