"""Lab tab: train the ready experiments (or the Compare set) on the bundled digits at several
seeds, live curves of the mean with a band of one standard deviation, and the conclusions.

Cancel, switching tab or changing a setting reruns the page, which stops a run in progress within
TICK_S; the result keeps what each run did, and says what was cut short and what did not run.
"""
from __future__ import annotations

import threading
import time

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from explorer import ArchConfig, ConfigError, lab
from explorer.app.kept import keeper, store_notice
from explorer.app.store import configs_of, lab_key, remember
from explorer.app.text import error_text, plain_text
from explorer.charts import log_axis
from explorer.lab.ray_runs import EXECUTORS, Executor, server_address
from explorer.labels import fmt_count, fmt_duration, fmt_num, fmt_share
from explorer.limits import MAX_EPOCHS, server_limits
from explorer.runs.lab_runs import LabRecorder, latest_lab_result

TICK_S = 0.5     # the progress bar's clock while training: how soon a click on Cancel takes effect
# Least seconds between redraws of the live curves. Each redraw builds two banded plotly charts
# on the server and lays them out in the browser, work that competes with the training workers
# for the same cores: once per finished epoch (120 times in a 3-seed, 10-epoch run of four
# variants) the app took 1.29x the command line's time.
CURVES_EVERY_S = 5.0
STOP_WAIT_S = 30.0  # longest wait for a stopped run to record how it ended (workers end their batch)
SEED_CHOICES = [1, 2, 3, 4, 5]  # within MAX_SEEDS; the server's time limit bounds the rest
BAND = "mean ± one standard deviation across seeds (sample std)"
# how each column of the results tables reads: losses to three figures, accuracies as percentages
_LOSS = ("train_loss", "val_loss", "train_loss_std")
_ACC = ("train_acc", "val_acc", "best_val_acc", "val_acc_std")
# the run (and seed) stay in view while the wide tables scroll to their seconds and cancelled columns
_PINNED = {"run": st.column_config.Column(pinned=True), "seed": st.column_config.Column(pinned=True)}


def band_figure(rows: pd.DataFrame, x: str, y: str, title: str, pct: bool = False,
                log_y: bool = False) -> go.Figure:
    """One line per run (the mean over seeds) inside a shaded band of mean ± std."""
    fig = go.Figure()
    colors = px.colors.qualitative.Plotly
    scale = 100.0 if pct else 1.0
    for i, (run, g) in enumerate(rows.groupby("run", sort=False)):
        color, g = colors[i % len(colors)], g.sort_values(x)
        mean, std = g[y] * scale, g[y + "_std"].astype(float) * scale
        if std.notna().any():
            lo, hi = (mean - std.fillna(0)), (mean + std.fillna(0))
            if log_y:  # a log axis cannot show the band's part at or below zero
                lo = lo.where(lo > 0, g[y + "_min"] * scale)
            fig.add_trace(go.Scatter(
                x=list(g[x]) + list(g[x])[::-1], y=list(hi) + list(lo)[::-1], fill="toself", mode="lines",
                fillcolor=_rgba(color, 0.18), line=dict(width=0), hoverinfo="skip",
                legendgroup=run, showlegend=False, name=f"{run} band"))
        fig.add_trace(go.Scatter(
            x=list(g[x]), y=list(mean), mode="lines+markers", name=run, legendgroup=run, line=dict(color=color),
            customdata=list(zip(std.fillna(0), g["seeds"])),
            # one point has no band to draw: error bars show its spread instead
            error_y=dict(array=list(std.fillna(0)), visible=len(g) == 1),
            hovertemplate=f"{run}<br>{x} %{{x}}: %{{y:.4g}} ± %{{customdata[0]:.2g}} "
                          "(%{customdata[1]} seeds)<extra></extra>"))
    y_title = y + (" (%)" if pct else "") + (" (log axis)" if log_y else "")
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y_title, legend_title_text="run")
    if log_y:  # ticks that read as values (0.5, 1, 2, 5), over every line and band
        fig.update_yaxes(**log_axis(v for t in fig.data for v in t.y))
    if x == "epoch":  # whole epochs only
        fig.update_xaxes(tick0=1, dtick=max(1, round(rows[x].nunique() / 10)))
    return fig


MISSING = "–"  # a table cell with no value (the std of one seed), not Python's "None"


def readable(rows: list[dict]) -> pd.DataFrame:
    """The results rows as a user reads them: losses "1.27", accuracies "98.3 %", parameters
    "272,474", seconds "12.3 s"; a missing value (a std below two seeds) reads "–"."""
    def cell(key, v):
        if v is None or (isinstance(v, float) and v != v):
            return MISSING
        if isinstance(v, bool):
            return v
        if key in _LOSS:
            return fmt_num(v)
        if key in _ACC:
            return fmt_share(v)
        if key == "params":
            return fmt_count(v)
        if key == "seconds":
            return f"{fmt_num(v)} s"
        return fmt_num(v) if isinstance(v, float) else v
    return pd.DataFrame([{k: cell(k, v) for k, v in row.items()} for row in rows])


# The results table fits the 560 px the main area has at 1024 px: mean ± std in one cell, a column
# the same in every row said once under it, some figures left to the per-seed table and the CSV.
SEED_TABLE_ONLY = ("train_acc", "val_loss", "best_val_acc")
ALWAYS_SHOWN = ("run", "seconds")
RESULT_WIDTHS = {"run": 72, "depth": 52, "params": 72, "train_loss": 96, "val_acc": 104, "seconds": 64}


def results_frame(rows: list[dict]) -> tuple[pd.DataFrame, str]:
    """The results table as shown, and what every run has in common ("depth 38, epochs 3")."""
    frame = readable(rows).drop(columns=[c for c in SEED_TABLE_ONLY if c in rows[0]])
    for std in [c for c in frame.columns if c.endswith("_std") and c[:-4] in frame.columns]:
        mean = std[:-4]
        frame[mean] = [m if sd == MISSING else f"{m} ± {sd}" for m, sd in zip(frame[mean], frame[std])]
        frame = frame.drop(columns=[std])
    same = {c: frame[c].iloc[0] for c in frame.columns
            if len(frame) > 1 and c not in ALWAYS_SHOWN and frame[c].astype(str).nunique() == 1}
    common = ", ".join(f"{c} {v}" for c, v in same.items() if str(v) != "False")  # a flag false everywhere: no news
    return frame.drop(columns=list(same)), common


def curves_figures(bands: pd.DataFrame) -> tuple[go.Figure, go.Figure]:
    """Training loss and validation accuracy per epoch. The loss is on a log axis: a diverging
    run's first epochs (a loss of 15) would otherwise flatten every other curve."""
    return (band_figure(bands, "epoch", "train_loss", "Training loss", log_y=True),
            band_figure(bands, "epoch", "val_acc", "Validation accuracy", pct=True))


def curves(res: lab.LabResult, keyed: bool) -> None:
    """Training loss and validation accuracy per epoch: mean over seeds with a band."""
    bands = pd.DataFrame(res.history_band_rows())
    if bands.empty:
        return
    a, b = st.columns(2)
    loss, acc = curves_figures(bands)
    a.plotly_chart(loss, key="lab_loss" if keyed else None)
    b.plotly_chart(acc, key="lab_acc" if keyed else None)
    st.caption(curves_caption(res, [int(k) for k in bands["seeds"]]))


def curves_caption(res: lab.LabResult, reached: list[int]) -> str:
    """What the lines average: every seed, or, where a run was cut short, the seeds that reached
    each point (`reached`: how many seeds each plotted point has)."""
    n, lo, hi = len(res.seeds), min(reached), max(reached)
    if not res.cancelled and lo == hi == n:
        return (f"Lines: mean over {n} seed{'s' if n != 1 else ''}; shaded band: {BAND}"
                + (" (one seed: no band)." if n == 1 else "."))
    got = f"{lo}" if lo == hi else f"{lo} to {hi}"
    return (f"Lines: mean over the seeds that reached each point ({got} of {n}: the run was cancelled); "
            f"shaded band: {BAND}, where two or more seeds reached it.")


def run(exp_name: str, train: dict, seed: int, seeds: int, custom: list[ArchConfig] | None, key: tuple,
        limit: float, where: str = "local") -> None:
    """Train with a progress bar, live curves and a Cancel button; keep the result under `key`.
    `train` holds the epochs, data set and recipe (`_data_choice`).

    A click on Cancel reruns the page: Streamlit stops this script at its next element update,
    inside a callback of the run, and the run keeps what it did (see `lab.run_experiment`).
    The bar's clock moves every TICK_S so that the stop comes within that, not at the epoch's end.
    The rerun starts at once, beside this script as it stops: `wait_for_stopping_run` makes it
    show the result only once this run has recorded how it ended.
    """
    lock = _run_lock()
    if not lock.acquire(timeout=STOP_WAIT_S):
        st.warning("The previous run is still stopping: start again in a moment.")
        return
    try:
        _train(exp_name, train, seed, seeds, custom, key, limit, where)
    finally:
        lock.release()  # once run_experiment has recorded how the run ended, even when stopped


class LiveView:
    """What the page shows while a run trains: the bar with its text and clock, the live
    curves (redrawn at most every CURVES_EVERY_S), and the latest partial result."""

    def __init__(self, epochs: int, workers: int) -> None:
        self.epochs = epochs
        self.text = f"starting {workers} worker processes…" if workers > 1 else "preparing…"
        self.bar = st.progress(0.0, text=self.text)
        self.curves = st.empty()
        self.partial: lab.LabResult | None = None
        self.start = self.ticked = time.monotonic()
        self.drawn_rows, self.drawn_at = 0, 0.0

    def progress(self, done: int, total: int, epoch: int, run_name: str) -> None:
        of = f"/{self.epochs}" if self.epochs else ""  # an iteration budget: the epochs follow from it
        self.text = f"{done}/{total} runs finished · {run_name}: epoch {epoch}{of}"

    def move_bar(self) -> None:
        self.ticked = time.monotonic()
        self.bar.progress(self.partial.fraction_done() if self.partial else 0.0,
                          text=f"{self.text} · {fmt_duration(self.ticked - self.start)}")

    def tick(self) -> bool:
        """Polled before every batch: moves the bar's clock now and then (never stops by itself)."""
        if time.monotonic() - self.ticked >= TICK_S:
            self.move_bar()
        return False

    def update(self, partial: lab.LabResult) -> None:
        self.partial = partial
        self.move_bar()
        rows = sum(len(r.history) for r in partial.runs)
        if rows > self.drawn_rows and time.monotonic() - self.drawn_at >= CURVES_EVERY_S:
            self.drawn_rows, self.drawn_at = rows, time.monotonic()
            with self.curves.container():
                curves(partial, keyed=False)

    def clear(self) -> None:
        self.bar.empty()
        self.curves.empty()


def _train(exp_name: str, train: dict, seed: int, seeds: int, custom: list[ArchConfig] | None, key: tuple,
           limit: float, where: str) -> None:
    results = st.session_state.lab_results
    notes = st.container()  # what Ray says: where the runs go, a worker lost (stays drawn)
    executor = Executor(where, server_address() if where == "ray" else None,
                        on_note=lambda text: notes.warning(text) if "lost" in text else notes.caption(text))
    cancel = st.empty()
    cancel.button("Cancel", key="lab_cancel", help="Stops the run; the epochs finished so far are kept.")
    view = LiveView(train.get("epochs") or 0, lab.workers_for(seeds))
    recorder = LabRecorder(keeper())  # every run kept in the run store as each of its epochs ends

    def on_update(partial: lab.LabResult) -> None:
        recorder.update(partial)
        view.update(partial)

    def on_end(res: lab.LabResult) -> None:
        remember(results, key, res)
        recorder.finish(res)

    try:
        # on_end keeps the result however the run ends: a Cancel reruns the page from a callback
        lab.run_experiment(exp_name, **train, seed=seed, seeds=seeds, configs=custom,
                           progress=view.progress, on_update=on_update, should_stop=view.tick,
                           on_end=on_end, time_limit_s=limit, executor=executor)
    except ConfigError as exc:
        st.error(error_text(exc))
    view.clear()
    cancel.empty()


def _run_lock() -> threading.Lock:
    """This session's Lab lock, held while a run trains."""
    if "lab_run_lock" not in st.session_state:
        st.session_state["lab_run_lock"] = threading.Lock()
    return st.session_state["lab_run_lock"]


def wait_for_stopping_run() -> bool:
    """Wait (at most STOP_WAIT_S) for a run of this session that a rerun is stopping: Streamlit
    starts the new run of the page before the old one has ended. False if it is still going."""
    lock = _run_lock()
    if not lock.acquire(blocking=False):
        with st.spinner("Stopping the run in progress…"):
            if not lock.acquire(timeout=STOP_WAIT_S):
                return False
    lock.release()
    return True


def conclusions(res: lab.LabResult) -> None:
    lines = res.conclusion_lines()
    if not lines:
        return
    st.markdown("**What this run shows** (mean ± std over seeds)\n\n"
                + "\n".join(f"- {plain_text(line)}" for line in lines))
    st.caption(lab.RULE)


def show_result(res: lab.LabResult, exp_name: str) -> None:
    n, w = len(res.seeds), res.workers
    v, planned = len(res.variants()), len(res.planned_variants())
    of = f"{v} of {planned} variants" if v < planned else f"{v} variant{'s' if v != 1 else ''}"
    st.caption(f"{of} × {n} seed{'s' if n != 1 else ''} "
               f"({', '.join(map(str, res.seeds))}) in {fmt_duration(res.seconds)}"
               + (f" on {w} worker processes" if w > 1 else ""))
    if res.cancelled:
        st.warning(plain_text(res.stop_message()), icon=":material/stop_circle:")
    conclusions(res)
    curves(res, keyed=True)
    grads = pd.DataFrame(res.grad_norm_band_rows())
    if not grads.empty:
        st.plotly_chart(band_figure(grads, "layer", "grad_norm", "Gradient norm per residual unit at "
                                    "initialisation", log_y=True), key="lab_grads")
        st.caption(f"Mean over the seeds; band: {BAND}, on the log axis clipped at the lowest seed.")
    frame, common = results_frame(res.to_rows())
    st.dataframe(frame, hide_index=True, key="lab_table",
                 column_config={**_PINNED, **{k: st.column_config.Column(width=w) for k, w in RESULT_WIDTHS.items()}})
    st.caption((f"Every run: {common}. " if common else "") + "Mean ± std over the seeds; each seed's figures, "
               "training accuracy, validation loss and best accuracy included, are under *Each seed* and in the CSV.")
    with st.expander("Each seed", expanded=res.cancelled and n > 1):  # where a run cut short shows
        st.dataframe(readable(res.seed_rows()), hide_index=True, key="lab_seed_table", column_config=_PINNED)
    d1, d2, d3 = st.columns(3)
    d1.download_button("Download CSV", res.to_csv_bytes(), file_name=f"lab_{exp_name}.csv", mime="text/csv",
                       key="lab_csv", on_click="ignore")
    d2.download_button("Download per-seed CSV", res.to_csv_bytes("seeds"), file_name=f"lab_{exp_name}_seeds.csv",
                       mime="text/csv", key="lab_csv_seeds", on_click="ignore")
    d3.download_button("Download JSON", res.to_json_bytes(), file_name=f"lab_{exp_name}.json",
                       mime="application/json", key="lab_json", on_click="ignore")


def draw(cfg: ArchConfig, summary: dict) -> None:
    keep = dict(persist_state="session")  # the choices hold while another tab is open
    exp_name = st.selectbox("Experiment", list(lab.EXPERIMENTS), key="lab_experiment",
                            format_func=lambda n: lab.EXPERIMENTS[n].title, **keep)
    exp = lab.EXPERIMENTS[exp_name]
    st.markdown(exp.description)
    st.caption(f"Claim tested: {exp.claim} — {exp.source}")
    custom = configs_of(st.session_state.compare) if exp_name == "custom" else None
    if exp_name == "custom" and not custom:
        st.info("The custom experiment trains the configs of the Compare tab: add some there first.")
        return
    train = _data_choice(keep)
    c1, c2, c3 = st.columns(3)
    epochs = int(c1.number_input("Epochs", min_value=1, max_value=MAX_EPOCHS, value=exp.settings.epochs,
                                 key="lab_epochs", disabled=train["recipe"] == "paper",
                                 help="The paper recipe counts iterations (64,000) instead.", **keep))
    train["epochs"] = None if train["recipe"] == "paper" else epochs
    seed = int(c2.number_input("First seed", min_value=0, max_value=2**31 - 1, value=exp.settings.seed,
                               key="lab_seed", **keep))
    seeds = int(c3.selectbox("Seeds", SEED_CHOICES, index=SEED_CHOICES.index(lab.DEFAULT_SEEDS), key="lab_seeds",
                             help="Each variant trains once per seed (first seed, +1, …); the seeds run in "
                                  "parallel processes, one per core. Results show mean ± std.", **keep))
    where = _executor_choice(keep)
    try:
        expected = lab.estimate_time(exp_name, configs=custom, seed=seed, seeds=seeds, **train)
    except ConfigError as exc:  # CIFAR not on this server, an iteration budget too long for the data
        hint = (". Whoever runs this server can fetch it with `python -m explorer lab degradation "
                "--dataset cifar10 --download --data-dir DIR`") if exc.key == "data_dir" else ""
        st.info(error_text(exc) + hint)
        return
    limit = server_limits().max_lab_seconds
    workers = lab.workers_for(seeds)
    st.caption(f"Expected to take {expected.label} on this machine"
               + (f" ({workers} worker processes)" if workers > 1 else "")
               + f" (at most {limit} s are allowed; switching tabs or changing a setting cancels the run).")
    too_long = expected.seconds > limit
    if too_long:
        st.error(f"This run would take about {expected.seconds:.0f} s, over the {limit} s limit of this server: "
                 "use fewer epochs, seeds or smaller networks"
                 + (", or try again when the machine is less busy." if expected.busy else "."))
    key = lab_key(exp_name, epochs, seed, custom, seeds, train["dataset"], train["recipe"])
    if not wait_for_stopping_run():
        st.info("The last run is still stopping; its results show on the next change of this page.")
    if st.button("Start training", type="primary", key="lab_run", disabled=too_long):
        run(exp_name, train, seed, seeds, custom, key, limit, where)
    res = st.session_state.lab_results.get(key)
    if res is None:
        res = _kept_result(exp_name, train["dataset"])
    store_notice()
    if res is not None:
        show_result(res, exp_name)


def _executor_choice(keep: dict) -> str:
    """Where the runs train: this server's worker processes, or Ray tasks."""
    address = server_address()
    cluster = f"the Ray cluster at {address}" if address else "a Ray cluster started on this server"
    return st.radio("Runs train on", EXECUTORS, key="lab_executor", horizontal=True,
                    format_func=lambda k: "this machine" if k == "local" else "Ray",
                    help="This machine: worker processes, one per core. Ray: each variant × seed is a "
                         f"task on {cluster} (one GPU each where it has GPUs, else one CPU); the "
                         "numbers are the same. The server sets the cluster.",
                    **keep)


def _data_choice(keep: dict) -> dict:
    """The data set and the recipe a run trains with (CIFAR from the server's data directory)."""
    d1, d2 = st.columns(2)
    dataset = d1.selectbox("Data", lab.DATASETS, key="lab_dataset", format_func=lambda d: lab.SHAPES[d].title,
                           help="The digits are embedded; CIFAR-10/100 are read from the server's data "
                                f"directory (${lab.DATA_DIR_VAR}), the test split validates.", **keep)
    recipe = d2.selectbox("Recipe", lab.RECIPES, key="lab_recipe",
                          format_func=lambda r: "quick (a few epochs)" if r == "quick" else
                          "paper (He et al. 2015: 64k iterations, batch 128)",
                          help="paper: SGD momentum 0.9, weight decay 1e-4, batch 128, lr 0.1 divided by 10 at "
                               "32k and 48k iterations, 64k in all (lr 0.01 for the first 400 past 100 layers).",
                          **keep)
    return {"dataset": dataset, "recipe": recipe}


def _kept_result(exp_name: str, dataset: str) -> lab.LabResult | None:
    """This experiment's newest result kept in the run store (from an earlier session, the
    command line or another machine), said to be so; none when it trained on other data."""
    kept = latest_lab_result(keeper(), exp_name)
    if kept is None or kept[0].settings.dataset != dataset:
        return None
    res, record = kept
    s = res.settings
    st.info(f"Kept from an earlier run: trained {record.when} UTC on "
            f"{plain_text(record.host)} ({plain_text(record.device)}), {s.epochs} epoch{'s' * (s.epochs != 1)} × "
            f"{len(res.seeds)} seed{'s' * (len(res.seeds) != 1)}. Start training for a run of your own.",
            icon=":material/history:")
    return res


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i: i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"
