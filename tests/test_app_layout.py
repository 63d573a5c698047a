"""Layouts the page can abandon (explorer.app.layout): the same SVG as the graphviz package makes,
the child process killed when the page's note raises (Streamlit's stop at a newer change), and
finished layouts kept."""
import os
from pathlib import Path

import pytest

import explorer
from explorer import diagram
from explorer.app import layout


class Stopped(BaseException):
    """Stands for Streamlit's StopException / RerunException (BaseExceptions too)."""


def children() -> set[int]:
    pids = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids.update(int(p) for p in (task / "children").read_text().split())
    return pids


def test_same_svg_as_the_graphviz_package():
    graph = diagram.build_graph(explorer.preset("resnet20"), "layers")
    assert layout.layout_svg(graph.source, lambda s: None) == diagram.to_bytes(graph, "svg").decode()


def test_node_count_counts_node_statements_only():
    graph = diagram.build_graph(explorer.preset("resnet20"), "stages")
    names = [line for line in graph.source.splitlines() if " [" in line and " -> " not in line.split(" [")[0]]
    assert layout.node_count(graph.source) == len(names) - 2  # less the node and edge defaults
    assert layout.node_count('digraph {\n a [label="x -> y"]\n "b.c" [x=1]\n a -> "b.c" [y=2]\n}') == 2


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads child processes from /proc")
def test_a_note_that_raises_kills_the_layout():
    source = diagram.build_graph(explorer.preset("resnet1202"), "layers", roll=False).source
    seen: set[int] = set()
    before = children()  # others this process runs (a browser, a server) are not this layout's

    def note(elapsed: float) -> None:
        seen.update(children() - before)
        raise Stopped

    with pytest.raises(Stopped):
        layout.run_graphviz(source, note)
    assert seen  # the note came while Graphviz ran
    for pid in seen:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed and reaped


def test_finished_layouts_are_kept():
    source = diagram.build_graph(explorer.preset("resnet18"), "units").source
    first = layout.layout_svg(source, lambda s: None)

    def never(elapsed: float) -> None:
        raise AssertionError("laid out again")

    assert layout.layout_svg(source, never) is first  # the kept string itself: not laid out again
    assert len(layout._kept) <= layout.KEPT_LAYOUTS  # noqa: SLF001


def test_kept_layouts_stay_within_their_budget(monkeypatch):
    monkeypatch.setattr(layout, "KEPT_CHARS", 1)  # room for the newest layout only
    sources = [diagram.build_graph(explorer.preset(n), "stages").source for n in ("resnet18", "resnet34")]
    for source in sources:
        layout.layout_svg(source, lambda s: None)
    assert len(layout._kept) == 1  # noqa: SLF001
    assert list(layout._kept.values()) == [layout.run_graphviz(sources[-1], lambda s: None)]  # noqa: SLF001


def test_missing_graphviz_is_reported(monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(diagram.GraphvizMissing):
        layout.run_graphviz("digraph { a }", lambda s: None)
