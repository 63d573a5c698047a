"""Computations shared by all sessions, cached by config (a frozen dataclass) and options.

Nothing returned here is mutated by a view. Each function imports its part of the library when
first called, so a page that never opens a view never loads what only that view needs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from explorer import ArchConfig

if TYPE_CHECKING:
    from explorer.facts.results import Costs, Summary

CACHE_TTL_S = 3600  # caches are bounded in entries and age, so memory returns after use


@st.cache_data(max_entries=128, ttl=CACHE_TTL_S, show_spinner=False)
def summary_of(cfg: ArchConfig) -> "Summary":
    from explorer.facts.summary import measure_summary

    return measure_summary(cfg)


@st.cache_data(max_entries=128, ttl=CACHE_TTL_S, show_spinner=False)
def costs_of(cfg: ArchConfig, batch: int = 1) -> "Costs":
    from explorer.facts.costs import measure_costs

    return measure_costs(cfg, batch)


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def layer_table_of(cfg: ArchConfig) -> str:
    from explorer.facts.summary import layer_table

    return layer_table(cfg)


# `times`: a per-layer profile's (module path, ms) pairs, for color_by "time" (a tuple: hashable).
# `roll`: draw runs of identical units once (None: the default rule for the network).
@st.cache_data(max_entries=64, ttl=CACHE_TTL_S, show_spinner=False)
def diagram_source(cfg: ArchConfig, detail: str, direction: str, shapes: bool, fold: bool, color_by: str = "none",
                   times: tuple[tuple[str, float], ...] | None = None, roll: bool | None = None) -> str:
    """The DOT text of a drawing (the page lays it out itself: explorer.app.layout)."""
    from explorer import diagram

    return diagram.build_graph(cfg, detail, direction, shapes, fold, color_by, dict(times) if times else None,
                               roll=roll).source


# many parameters: the cache key is every drawing option, as `diagram_source`'s, and the format
@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def diagram_bytes(cfg: ArchConfig, detail: str, direction: str, shapes: bool, fold: bool, fmt: str,
                  color_by: str = "none", times: tuple[tuple[str, float], ...] | None = None,
                  roll: bool | None = None) -> bytes:
    from explorer import diagram

    graph = diagram.build_graph(cfg, detail, direction, shapes, fold, color_by, dict(times) if times else None,
                                roll=roll)
    return diagram.to_bytes(graph, fmt)


@st.cache_data(max_entries=64, ttl=CACHE_TTL_S, show_spinner=False)
def unit_figure_svg(cfg: ArchConfig, unit: str | None, direction: str = "TB") -> str:
    from explorer import diagram

    return diagram.to_bytes(diagram.build_unit_figure(cfg, unit, direction), "svg").decode()


@st.cache_data(max_entries=64, ttl=CACHE_TTL_S, show_spinner=False)
def unit_equation(cfg: ArchConfig, unit: str | None) -> str:
    from explorer import diagram

    return diagram.equation(cfg, unit)


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def compare_rows(cfgs: tuple[ArchConfig, ...]) -> list[dict]:
    from explorer import compare

    return compare.compare_table(list(cfgs))


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner="Laying out the diagram…")
def highlighted_units_svg(cfg: ArchConfig, highlight: tuple[tuple[str, str], ...]) -> str:
    """The units diagram of `cfg` with a diff's changed nodes outlined (node id, kind of change)."""
    from explorer import diagram

    return diagram.to_bytes(diagram.build_graph(cfg, "units", highlight=dict(highlight)), "svg").decode()
