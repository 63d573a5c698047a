"""A config from the bytes of a file: a command line's FILE.json and an app upload read alike.

Every failure is one ConfigError naming the file (never its content): text that is not UTF-8,
JSON that does not parse (by line and column), numbers too long to read, nesting too deep. A
UTF-8 byte-order mark is accepted. The app's and the command line's own JSON documents that hold
a config (a summary, a latency result, a kept run) give that config; the ones that hold none (a
comparison table, a diff, a Lab result) are named, so the user knows what the file is.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Mapping

from explorer.arch.config import ArchConfig
from explorer.errors import ConfigError
from explorer.limits import MAX_CONFIG_BYTES

WHAT = "a JSON config"


def config_from_bytes(key: str, source: str, data: bytes) -> ArchConfig:
    """The config a file's bytes hold; ConfigError(key, source, ...) when they hold none.

    Sizes are not checked here beyond MAX_CONFIG_BYTES; the server's limits apply where work starts."""
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(key, source, f"{WHAT} of at most {MAX_CONFIG_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(key, source, f"{WHAT} in UTF-8 text", f"Byte {exc.start} is not UTF-8") from None
    return ArchConfig.from_dict(config_in(key, source, parse_json(key, source, text)))


def parse_json(key: str, source: str, text: str) -> Any:
    """The JSON value of `text`, or ConfigError saying where and why it does not parse."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"Line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise ConfigError(key, source, WHAT, f"{where}; this is not valid JSON") from None
    except RecursionError:
        raise ConfigError(key, source, WHAT, "It is nested too deeply") from None
    except ValueError:  # an integer longer than Python converts (sys.get_int_max_str_digits)
        digits = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 4300
        raise ConfigError(key, source, WHAT, f"A number in it has over {digits} digits") from None


def config_in(key: str, source: str, doc: Any) -> Any:
    """The config part of a document: the document itself, or the `config` of one of this
    product's own result files; a known file that holds no config is refused by what it is."""
    if isinstance(doc, Mapping) and isinstance(doc.get("config"), Mapping):
        return doc["config"]
    kind = document_kind(doc)
    if kind:
        raise ConfigError(key, source, WHAT, f"This file is {kind}, which holds no full config: "
                                             "load a config JSON, or a summary JSON, which holds its config")
    return doc


def document_kind(doc: Any) -> str | None:
    """What one of the product's own config-less JSON files is, or None."""
    if isinstance(doc, list) and doc and all(isinstance(r, Mapping) and "params" in r and "name" in r for r in doc):
        return f"a comparison table of {len(doc)} network{'s' * (len(doc) != 1)}"
    if isinstance(doc, Mapping) and isinstance(doc.get("rows"), list) and "differing_keys" in doc:
        return "a comparison (compare --json)"
    if isinstance(doc, Mapping) and "diff" in doc and "diff_total" in doc:
        return "a diff of two networks"
    if isinstance(doc, Mapping) and "experiment" in doc and ("runs" in doc or "variants" in doc):
        return "a Lab result"
    return None
