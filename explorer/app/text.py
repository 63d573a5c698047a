"""Text the views show: user text made safe for Markdown, shapes, file names, published figures."""
from __future__ import annotations

from typing import Any

from explorer import ArchConfig
from explorer.app.inputs import describe_changes, preset_changes
from explorer.labels import fmt_count, fmt_shape  # noqa: F401  (fmt_shape: the one shape formatter)

MARKDOWN_SPECIALS = "\\`*_{}[]()#+-.!|<>~&:$"


def plain_text(text: str) -> str:
    """User text shown through Markdown: every Markdown/HTML character escaped, one line."""
    text = " ".join(text.split())
    return "".join("\\" + ch if ch in MARKDOWN_SPECIALS else ch for ch in text)


def safe_name(cfg: ArchConfig) -> str:
    """The config's name as a file name stem."""
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in cfg.name)
    return keep.strip("._") or "resnet"


def published_figure(value: Any) -> str:
    """A published figure as text ('—' where the source gives none)."""
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def title(cfg: ArchConfig) -> str:
    """The network's name, saying so when it is a preset's name but no longer that preset:
    "resnet50 (modified: skip_span 1)"."""
    changes = preset_changes(cfg)
    return f"{cfg.name} (modified: {describe_changes(changes)})" if changes else cfg.name


def headline(summary: dict) -> str:
    """The one-line caption under the network's name."""
    s = summary
    return (f"{fmt_count(s['params'], short=True)} params · {fmt_count(s['macs'], short=True)} MACs · "
            f"{s['depth']} weight layers · "
            f"skip span {s['skip_span']} · {s['residual_units']} shortcuts "
            f"({s['shortcuts']['projection']} projections)")
