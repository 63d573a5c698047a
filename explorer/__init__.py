"""ResNet Explorer: build residual-network variants from settings and see what they cost."""
from explorer.arch.config import ArchConfig
from explorer.arch.presets import PRESET_INFO, PRESETS, preset
from explorer.errors import ConfigError

__version__ = "1.1.0"

__all__ = ["ArchConfig", "ConfigError", "PRESETS", "PRESET_INFO", "build_model", "preset"]


def __getattr__(name: str):
    # torch loads with the builder, on first use: configs, presets and limits need no torch, so
    # the app can draw its settings while torch is still loading.
    if name == "build_model":
        from explorer.arch.builder import build_model

        return build_model
    raise AttributeError(f"module 'explorer' has no attribute {name!r}")
