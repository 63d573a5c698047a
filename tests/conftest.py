import os

import pytest
import torch
from hypothesis import settings

# Property tests run the same examples on every machine, so a run is repeatable; set
# HYPOTHESIS_PROFILE=explore to draw fresh random examples when hunting for new failures.
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# Small, repeatable CPU work: the suite runs on two cores beside other jobs.
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
