"""ResNet Explorer: build residual-network variants from settings and see what they cost."""
from .builder import build_model
from .config import ArchConfig
from .errors import ConfigError
from .presets import PRESET_INFO, PRESETS, preset

__all__ = ["ArchConfig", "ConfigError", "PRESETS", "PRESET_INFO", "build_model", "preset"]
