"""ResNet Explorer: build residual-network variants from settings and see what they cost."""
from explorer.arch.builder import build_model
from explorer.arch.config import ArchConfig
from explorer.arch.presets import PRESET_INFO, PRESETS, preset
from explorer.errors import ConfigError

__all__ = ["ArchConfig", "ConfigError", "PRESETS", "PRESET_INFO", "build_model", "preset"]
