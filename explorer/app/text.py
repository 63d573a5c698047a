"""Text the views show: user text made safe for Markdown, file names, published figures, titles."""
from __future__ import annotations

from typing import Any

from explorer import ArchConfig
from explorer.arch.presets import describe_changes, display_stem, preset_changes
from explorer.errors import ConfigError, for_browser
from explorer.facts.results import Summary
from explorer.labels import INLINE_SPECIALS, escape_markdown, fmt_count

plain_text = escape_markdown  # user text shown through Markdown: one line, its specials escaped


def inline_text(text: str) -> str:
    """Text read off a machine or an imported run (a device or host name, a version) shown inside
    Markdown: what could start a link, an image, HTML or emphasis escaped, the rest as written."""
    return escape_markdown(str(text), INLINE_SPECIALS)


def plain_lines(text: str) -> str:
    """A message holding user text (an error naming a value, a link's problems) shown through
    Markdown: each of its lines as plain text, kept as a line."""
    return "  \n".join(plain_text(line) for line in str(text).splitlines() if line.strip())


def error_text(exc: BaseException, key_shown: bool = False) -> str:
    """An error as the page says it, as Markdown-safe lines: without the server's environment
    variables (the command line names them), and without its key where the page names it already."""
    text = exc.without_key if key_shown and isinstance(exc, ConfigError) else str(exc)
    return plain_lines(for_browser(text))


def safe_name(cfg: ArchConfig) -> str:
    """The file name stem of the config's display name: "resnet50", "resnet50_skip_span-1" for a
    changed preset."""
    return display_stem(cfg)


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


def headline(s: Summary) -> str:
    """The one-line caption under the network's name."""
    return (f"{fmt_count(s.params, short=True)} params · {fmt_count(s.macs, short=True)} MACs · "
            f"{s.depth:,} weight layers · "
            f"skip span {s.skip_span} · {s.residual_units} shortcuts "
            f"({s.shortcuts.projection} projections)")
