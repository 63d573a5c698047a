import os

import torch

# Small, repeatable CPU work: the suite runs on two cores beside other jobs.
torch.set_num_threads(min(2, os.cpu_count() or 1))
