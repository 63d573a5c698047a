import os

import torch
from hypothesis import settings

# Property tests run the same examples on every machine, so a run is repeatable; set
# HYPOTHESIS_PROFILE=explore to draw fresh random examples when hunting for new failures.
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# Small, repeatable CPU work: the suite runs on two cores beside other jobs.
torch.set_num_threads(min(2, os.cpu_count() or 1))
