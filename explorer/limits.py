"""Every limit and budget, defined once; the app, the command line and the library read them here.

Three kinds:
* bounds of the value type: what a config may say at all (a typo cannot ask for 10^9 stages);
* bounds of one piece of work: batch, timing budgets, epochs, seeds, configs compared, file sizes;
* the server's size limits (`ServerLimits`), which a deployment may lower or raise through
  environment variables, read once at the edge where work starts (`server_limits()`).

No torch and no other part of explorer is imported here, so `import explorer` never depends on
the environment.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from functools import lru_cache

from explorer.errors import ConfigError

# -- the config's own bounds (ArchConfig validation) --------------------------------------------
# Wide enough for every published variant (ResNet-1202 has 200 blocks a stage), narrow enough
# that a typo cannot ask for a network no machine could hold.
MAX_STAGES = 8
MAX_DEPTH = 1000            # blocks in one stage
MAX_WIDTH = 8192            # stage width, stem width, groups, width per group
MAX_SPAN = 1000             # weight layers one shortcut may span
MAX_INPUT = 4096            # input side, pixels
MAX_NAME = 200              # characters of a config name
MAX_IN_CHANNELS = 64
MAX_CLASSES = 100_000

# -- one piece of work ------------------------------------------------------------------------
MAX_BATCH = 4096            # images per timed pass / per memory estimate
LATENCY_BUDGET_S = 3.0      # default seconds of warm-up + timing per latency measurement (app, CLI, Compare)
PROFILE_BUDGET_S = 5.0      # default seconds of interleaved plain and profiled passes
SWEEP_BUDGET_S = 20.0       # default seconds for a whole batch sweep
MAX_BUDGET_S = 600.0        # the most any one measurement may be given
MAX_COMPARE = 8             # configs side by side, in the app and on the command line
MAX_EPOCHS = 1000           # Lab epochs per run
MAX_SEEDS = 20              # Lab seeds per variant
MAX_CONFIG_BYTES = 64 * 1024  # a config file or upload
MAX_SAMPLES = 100_000       # most timed passes one latency measurement may ask for
MAX_WARMUP = 50             # most untimed passes before timing, however short they are
MAX_PASS_BUDGETS = 3.0      # a pass longer than this many budgets (estimated, or the first) is refused
MAX_RESULTS = 20            # latency / Lab results one app session keeps in memory
MAX_PATH = 200              # characters of a module path typed into the diagram's Find box
MAX_IMPORT_BYTES = 256 * 1024 * 1024  # a JSONL file of runs to import
MAX_HISTORY = 500           # newest runs the History view lists at once
ONNX_MAX_BYTES = 2 * 1024**3 - 16 * 1024**2  # one ONNX file is one protobuf (2 GiB), less the graph

ENV_PREFIX = "RESNET_EXPLORER_"


@dataclass(frozen=True)
class ServerLimits:
    """Sizes of work a shared server accepts; each can be set by RESNET_EXPLORER_<NAME>."""

    max_weight_layers: int = 2_500          # convs + fc on the main path (ResNet-1202 has 1,202)
    max_params: int = 1_000_000_000         # the largest preset, wide_resnet101_2, has 127 M
    max_macs: int = 2_000_000_000_000       # per image; resnet152 at 224x224 is 11.5 G
    max_lab_seconds: int = 300              # one Lab experiment in the app (ready ones take < 60)

    @classmethod
    def from_env(cls) -> "ServerLimits":
        """Defaults, overridden by RESNET_EXPLORER_MAX_WEIGHT_LAYERS / _MAX_PARAMS / _MAX_MACS /
        _MAX_LAB_SECONDS; a malformed value is a ConfigError naming the variable."""
        values = {}
        for f in fields(cls):
            var = ENV_PREFIX + f.name.upper()
            text = os.environ.get(var)
            if text:
                try:
                    values[f.name] = int(float(text))
                except ValueError:
                    raise ConfigError(var, text, "a whole number") from None
        return cls(**values)


@lru_cache(maxsize=1)
def server_limits() -> ServerLimits:
    """The environment's limits, read once per process (at the first piece of work)."""
    return ServerLimits.from_env()
