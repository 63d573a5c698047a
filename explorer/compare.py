"""Several configs side by side: one table row each, plotly figures, CSV / JSON export.

Every figure in a row comes from the facts of the built module (summary, costs, and a
LatencyResult when timed, under the result's own field names); nothing here recomputes an
architecture from the config.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from explorer.facts.summary import measure_summary
from explorer.arch.config import ArchConfig, field_names
from explorer.arch.plan import effective_span
from explorer.charts import log_axis, measured_axis
from explorer.facts.costs import measure_costs
from explorer.errors import ConfigError
from explorer.labels import distinct_labels, fmt_num
from explorer.limits import MAX_COMPARE

# times one config for a timed table: (config, measure_latency options) -> a LatencyResult
Timer = Callable[[ArchConfig, dict[str, Any]], Any]

# metric key -> (axis title, scale to apply for display)
METRICS: dict[str, tuple[str, float]] = {
    "params": ("parameters (M)", 1e-6),
    "macs": ("multiply-adds (G)", 1e-9),
    "depth": ("weight layers", 1.0),
    "projections": ("projection shortcuts", 1.0),
    "projection_params": ("projection parameters (M)", 1e-6),
    "activation_bytes": ("activation memory per forward (MiB)", 1 / 2**20),
    "peak_bytes": ("peak inference memory (MiB)", 1 / 2**20),
    "receptive_field": ("receptive field (px)", 1.0),
    "median_ms": ("latency (ms, median)", 1.0),
    "throughput": ("throughput (images/s)", 1.0),
}


# Settings every table shows, whether or not they differ: the knobs the app is about.
SHOWN_SETTINGS = ("block", "depths", "skip_span", "bn_position", "relu_position", "shortcut")


def differing_keys(cfgs: Sequence[ArchConfig], include_name: bool = False) -> list[str]:
    """Config keys whose values are not the same across `cfgs`, in config order (a skip span left
    to its default counts as the block's own length)."""
    _check_cfgs(cfgs)
    keys = [k for k in field_names() if include_name or k != "name"]
    dicts = [setting_values(c) for c in cfgs]
    return [k for k in keys if any(d[k] != dicts[0][k] for d in dicts[1:])]


def setting_values(cfg: ArchConfig) -> dict[str, Any]:
    """Every config key of `cfg` as a table cell: lists joined ("3-4-6-3"), the skip span resolved."""
    out = cfg.to_dict()
    for key in ("depths", "widths"):
        out[key] = "-".join(str(v) for v in out[key])
    out["skip_span"] = effective_span(cfg)
    return out


def setting_columns(cfgs: Sequence[ArchConfig]) -> list[str]:
    """The settings a table of `cfgs` shows: first every key that differs between them, then the
    rest of SHOWN_SETTINGS, each group in config order (what differs is in sight beside the name)."""
    differ = differing_keys(cfgs) if len(cfgs) > 1 else []
    return differ + [k for k in SHOWN_SETTINGS if k not in differ]


def compare_table(cfgs: Sequence[ArchConfig], latency: bool | Mapping[str, Any] | None = None,
                  batch: int = 1, measure: Timer | None = None) -> list[dict[str, Any]]:
    """One row per config: its settings, params, MACs, depth, shortcuts, memory, receptive field
    (+ latency). The settings are SHOWN_SETTINGS and every key that differs between `cfgs`.

    Args:
        cfgs: the configs, in display order.
        latency: None/False for no timing; True or a dict of `measure_latency` options
            (device, dtype, budget_s, ...) to time each config (slow: seconds each).
        batch: batch for the memory figures and the latency.
        measure: what times one config, called as measure(cfg, options) with the
            `measure_latency` options; default `measure_latency` itself (a caller that keeps
            its runs passes one that records each).

    Returns:
        A list of flat dicts with the same keys (ready for `pandas.DataFrame(rows)`); timed
        rows add LATENCY_COLUMNS, named as LatencyResult names them.
    """
    _check_cfgs(cfgs)
    settings = _latency_options(latency, batch) if latency else None
    columns = setting_columns(cfgs)
    rows = []
    for cfg in cfgs:
        s = measure_summary(cfg)
        c = measure_costs(cfg, batch)
        settings_of = setting_values(cfg)
        row: dict[str, Any] = {
            "name": cfg.name,
            **{k: settings_of[k] for k in columns},
            "params": s.params,
            "macs": s.macs,
            "depth": c.depth,
            "residual_units": c.residual_units,
            "identity": c.shortcuts.identity,
            "zero_pad": c.shortcuts.zero_pad,
            "projections": c.projections,
            "projection_params": s.projection_params,
            "batch": batch,
            "activation_bytes": c.activation_bytes,
            "peak_bytes": c.peak_bytes,
            "receptive_field": c.receptive_field[-1].receptive_field,
            "warnings": len(s.warnings),
        }
        if settings is not None:
            row.update(_latency_columns(cfg, settings, measure))
        rows.append(row)
    return rows


# The LatencyResult fields a timed row carries, under the result's names (its `batch` is the row's).
LATENCY_COLUMNS = ("median_ms", "p10_ms", "p90_ms", "throughput", "noisy", "device", "device_name", "dtype",
                   "threads", "channels_last", "compile")


def _latency_options(latency: bool | Mapping[str, Any], batch: int) -> dict[str, Any]:
    """measure_latency options for every row: at the table's batch, never retried at a smaller one."""
    options = dict(latency) if isinstance(latency, Mapping) else {}
    if options.get("batch", batch) != batch:
        raise ConfigError("batch", options["batch"], f"the table's batch ({batch}): memory and latency are "
                          "figures of one batch")
    return {**options, "batch": batch, "retry_smaller": False}


def _latency_columns(cfg: ArchConfig, options: dict[str, Any], measure: Timer | None) -> dict[str, Any]:
    if measure is None:
        from explorer import timing  # imported here: a table without latency never loads the timing code

        r = timing.measure_latency(cfg, **options)
    else:
        r = measure(cfg, options)
    return latency_columns(r)


def latency_columns(result: Any) -> dict[str, Any]:
    """The LATENCY_COLUMNS of a latency result (or of a mapping with its keys)."""
    return {k: value(result, k) for k in LATENCY_COLUMNS}


def with_latency(cfgs: Sequence[ArchConfig], rows: Sequence[Mapping[str, Any]],
                 timed: Mapping[int, Sequence[Any]]) -> list[dict[str, Any]]:
    """The table's rows with the latency measured of each config (`timed`: row index -> its latency
    results, e.g. one per device): one row per config and measurement, its memory figures at the
    measured batch (as a timed `compare_table` row has them); a config not measured keeps its row."""
    at_batch: dict[int, Sequence[Mapping[str, Any]]] = {rows[0]["batch"]: rows} if rows else {}
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        results = timed.get(i, ())
        if not results:
            out.append(dict(row))
        for r in results:
            b = value(r, "batch")
            if b not in at_batch:
                at_batch[b] = compare_table(cfgs, batch=b)
            out.append({**at_batch[b][i], **latency_columns(r)})
    return out


def _check_cfgs(cfgs: Sequence[ArchConfig]) -> None:
    if isinstance(cfgs, ArchConfig) or not isinstance(cfgs, Sequence) or not cfgs:
        raise ConfigError("configs", cfgs, f"a list of 1 to {MAX_COMPARE} configs")
    if len(cfgs) > MAX_COMPARE:
        raise ConfigError("configs", f"{len(cfgs)} configs", f"at most {MAX_COMPARE}")
    for c in cfgs:
        if not isinstance(c, ArchConfig):
            raise ConfigError("configs", type(c).__name__, "ArchConfig items")


def to_frame(rows: Sequence[Mapping[str, Any]]):
    """The rows as a pandas DataFrame (one row per config)."""
    import pandas as pd

    return pd.DataFrame(list(rows))


def to_csv_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """UTF-8 CSV with a header of every key seen, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buf.getvalue().encode("utf-8")


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict, tuple)) else value


def to_json_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    return json.dumps([dict(r) for r in rows], indent=2, ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class MeasuredAt:
    """The settings a latency was measured at: only bars measured alike share an axis."""

    device_name: str | None     # GPU model and memory, or CPU model and threads
    batch: int | None           # images per pass
    dtype: str | None
    threads: int | None         # CPU threads torch used
    channels_last: bool | None
    compile: bool | None

    def label(self) -> str:
        parts = [self.device_name] if self.device_name else []
        if self.batch is not None:
            parts.append(f"batch {self.batch}")
        if self.dtype:
            parts.append(self.dtype)
        threads = f"{self.threads} thread{'s' if self.threads != 1 else ''}"
        if self.threads is not None and threads not in (self.device_name or ""):  # a CPU label has it
            parts.append(threads)
        if self.channels_last:
            parts.append("channels_last")
        if self.compile:
            parts.append("compiled")
        return " · ".join(parts) or "settings not recorded"


MEASURED_METRICS = ("median_ms", "throughput")
SETTING_NAMES = {"device_name": "device", "batch": "batch", "dtype": "dtype", "threads": "threads",
                 "channels_last": "layout", "compile": "compile"}


def value(row: Any, key: str, default: Any = None) -> Any:
    """A figure of a row: a table row (a mapping) or a result (LatencyResult, SweepRow) alike."""
    return row.get(key, default) if isinstance(row, Mapping) else getattr(row, key, default)


def measured_at(row: Any) -> MeasuredAt:
    """The settings one row's latency was measured at."""
    return MeasuredAt(**{f: value(row, f) for f in SETTING_NAMES})


def bar_figure(rows: Sequence[Any], metric: str):
    """A plotly bar chart of one metric (a key of METRICS) across the compared configs: table
    rows, or latency results (LatencyResult) named as the configs are.

    Measured metrics (latency, throughput) compare like with like: rows measured at different
    settings (device, batch, dtype, threads, layout, compile) go in separate panels, each
    titled with its settings, and the figure's title names the settings that differ.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if metric not in METRICS:
        raise ConfigError("metric", metric, "one of " + ", ".join(METRICS))
    present = [r for r in rows if value(r, metric) is not None]
    if not present:
        raise ConfigError("metric", metric, "a metric the rows carry (latency needs a timed comparison)")
    if metric not in MEASURED_METRICS:
        fig = go.Figure(_bar(present, metric))
        return _layout(fig, metric)
    groups: dict[MeasuredAt, list[Any]] = {}
    for r in present:  # in first-seen order
        groups.setdefault(measured_at(r), []).append(r)
    if len(groups) == 1:
        (settings, mine), = groups.items()
        fig = go.Figure(_bar(mine, metric, settings.label()))
        return _layout(fig, metric, "measured on " + settings.label())
    cols = min(len(groups), 3)
    n_rows = -(-len(groups) // cols)
    fig = make_subplots(rows=n_rows, cols=cols, subplot_titles=[s.label() for s in groups])
    for i, (settings, mine) in enumerate(groups.items()):
        fig.add_trace(_bar(mine, metric, settings.label()), row=i // cols + 1, col=i % cols + 1)
    differ = [SETTING_NAMES[f] for f in SETTING_NAMES
              if len({getattr(s, f) for s in groups}) > 1]
    title = f"measured at different {', '.join(differ)}: compare bars within a panel only"
    return _layout(fig, metric, title, height=320 * n_rows)


def _bar(rows: Sequence[Any], metric: str, name: str | None = None):
    """One horizontal bar per row, named apart on the y axis (long names stay whole at narrow
    widths), its value written in engineering units; latency bars carry their spread as
    whiskers from p10 to p90."""
    import plotly.graph_objects as go

    scale = METRICS[metric][1]
    values = [value(r, metric) * scale for r in rows]
    bar = go.Bar(y=distinct_labels([str(value(r, "name")) for r in rows]), x=values, name=name, orientation="h",
                 text=[_short(v) for v in values], textposition="auto", cliponaxis=False)
    spread = [(value(r, "p10_ms"), value(r, "median_ms"), value(r, "p90_ms")) for r in rows]
    if metric == "median_ms" and all(lo is not None and hi is not None for lo, _m, hi in spread):
        bar.error_x = dict(type="data", symmetric=False, array=[hi - m for _lo, m, hi in spread],
                           arrayminus=[m - lo for lo, m, _hi in spread])
        # the value at the bar's start: at its end the whisker would run through it
        bar.update(textposition="inside", insidetextanchor="start")
    return bar


def _layout(fig, metric: str, title: str | None = None, height: int | None = None):
    n = max((len(t.y) for t in fig.data), default=1)
    fig.update_xaxes(title_text=METRICS[metric][0])
    # the first config at the top, names whole beside their bar
    fig.update_yaxes(autorange="reversed", automargin=True, tickangle=0)
    fig.update_layout(title_text=title, margin=dict(l=10, r=20, t=60 if title else 30, b=40),
                      template="plotly_white", showlegend=False,
                      height=height or max(220, 100 + 40 * n))
    return fig


def sweep_figure(sweep_rows: Sequence[Any]):
    """Latency (left) and throughput (right) against batch size, one line per model name (rows:
    a sweep's SweepRows, or mappings with their keys)."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    rows = list(sweep_rows)
    if not rows:
        raise ConfigError("sweep", rows, "at least one measured batch")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("latency per pass", "throughput"))
    names = list(dict.fromkeys(str(value(r, "name", "model")) for r in rows))
    colors = qualitative.Plotly
    for i, name in enumerate(names):  # one legend entry per line; a model's two lines share a colour
        mine = sorted((r for r in rows if str(value(r, "name", "model")) == name), key=lambda r: value(r, "batch"))
        batches = [value(r, "batch") for r in mine]
        median, p10, p90 = ([value(r, k) for r in mine] for k in ("median_ms", "p10_ms", "p90_ms"))
        color = colors[i % len(colors)]
        fig.add_trace(go.Scatter(
            x=batches, y=median, mode="lines+markers", name=f"{name}: latency", line=dict(color=color),
            error_y=dict(type="data", symmetric=False, array=[hi - m for m, hi in zip(median, p90)],
                         arrayminus=[m - lo for m, lo in zip(median, p10)]),
        ), row=1, col=1)
        fig.add_trace(go.Scatter(
            x=batches, y=[value(r, "throughput") for r in mine], mode="lines+markers", name=f"{name}: throughput",
            line=dict(color=color, dash="dot"), marker=dict(symbol="square"),
        ), row=1, col=2)
    # the measured batch sizes are the x ticks; log ticks read as values
    fig.update_xaxes(**measured_axis(value(r, "batch") for r in rows), title_text="batch")
    spread = [value(r, k) for r in rows for k in ("median_ms", "p10_ms", "p90_ms")]
    fig.update_yaxes(**log_axis(spread), title_text="ms (median, p10-p90)", row=1, col=1)
    fig.update_yaxes(title_text="images / s", row=1, col=2)
    device = value(rows[0], "device_name")
    fig.update_layout(template="plotly_white", margin=dict(l=40, r=20, t=50, b=40), legend_title_text="line",
                      title_text=f"measured on {device}" if device else None)
    return fig




def _short(v: float) -> str:
    """A bar's value as its text: "2,570", "25.6", "0.27" (three figures, never an exponent)."""
    return fmt_num(v) if isinstance(v, float) else f"{v:,}"
