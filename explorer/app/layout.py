"""Graphviz layouts the page can abandon: a newer change supersedes an older layout.

A big diagram (ResNet-1202 unrolled at layer detail) takes Graphviz seconds to lay out. Run in
process, the page would wait for it before it could act on a newer setting. Here `dot` runs as
a child process and the script waits for it in short steps, each of which updates a note on the
page ("Laying out ... nodes"). Streamlit stops a running script at its next element call when a
widget changes; that call is this note, so the stop arrives within one step, the child is
killed, and the newer run starts at once. Finished layouts are kept (bounded, shared by all
sessions), so going back to a drawing costs nothing.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import threading
import time
from collections import OrderedDict
from typing import Callable

from explorer.diagram import GraphvizMissing

STEP_S = 0.05          # how long the script waits for Graphviz between two looks at the page
NOTE_AFTER_S = 0.3     # layouts quicker than this show no note
KEPT_LAYOUTS = 32      # finished SVGs kept in memory, the least recently used dropped first,
KEPT_CHARS = 64 * 2**20  # and no more characters of them than this (an unrolled ResNet-1202 is MBs)

_kept: OrderedDict[str, str] = OrderedDict()
_lock = threading.Lock()


_NODE = re.compile(r'^\s*("(?:[^"\\]|\\.)*"|\w[\w.]*) \[', re.M)  # a name, then its attributes
_DEFAULTS = ("graph", "node", "edge")


def node_count(source: str) -> int:
    """How many nodes a DOT source declares (statements `name [attributes]`, not the defaults)."""
    return sum(1 for m in _NODE.finditer(source) if m[1] not in _DEFAULTS)


def layout_svg(source: str, note: Callable[[float], None], engine: str = "dot") -> str:
    """`source` laid out as SVG by Graphviz (`engine`), as the graphviz package's pipe makes it.

    While Graphviz runs, `note(seconds so far)` is called every STEP_S from NOTE_AFTER_S on: a
    Streamlit element call, where a newer run stops this one (any exception raised in `note`
    kills the child and goes on up).

    Raises:
        GraphvizMissing: when the `dot` program is not installed.
        subprocess.CalledProcessError: when Graphviz fails on the source.
    """
    key = hashlib.sha256(f"{engine}\n{source}".encode()).hexdigest()
    with _lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    svg = run_graphviz(source, note, engine)
    with _lock:
        _kept[key] = svg
        while len(_kept) > KEPT_LAYOUTS or (len(_kept) > 1 and sum(map(len, _kept.values())) > KEPT_CHARS):
            _kept.popitem(last=False)
    return svg


def run_graphviz(source: str, note: Callable[[float], None], engine: str = "dot") -> str:
    """One `dot -Tsvg` child on `source`, abandoned (killed) when `note` raises."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing()
    cmd = [exe, f"-K{engine}", "-Tsvg"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    start = time.monotonic()
    data: bytes | None = source.encode("utf-8")
    try:
        while True:
            try:
                out, err = proc.communicate(data, timeout=STEP_S)
                break
            except subprocess.TimeoutExpired:
                data = None  # sent already: later waits only read
                elapsed = time.monotonic() - start
                if elapsed >= NOTE_AFTER_S:
                    note(elapsed)
    except BaseException:  # a newer run (Streamlit's stop), or anything else: no orphan layout
        proc.kill()
        proc.communicate()
        raise
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd, out, err)
    return out.decode("utf-8")


def layout_on_page(source: str) -> str:
    """`layout_svg` of `source` with its note on the page, where this is called: how many nodes
    and seconds, and that a change starts the newer drawing at once. The note goes when done."""
    import streamlit as st

    note, nodes = st.empty(), node_count(source)

    def show(elapsed: float) -> None:
        note.info(f"Graphviz is laying out {nodes:,} nodes ({elapsed:.0f} s so far). The page stays "
                  "usable: change a setting and the newer drawing starts at once.", icon="⏳")

    svg = layout_svg(source, show)
    note.empty()
    return svg
