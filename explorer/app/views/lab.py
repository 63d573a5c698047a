"""Lab tab: train the ready experiments (or the Compare set) on the bundled digits, live curves.

Switching tab or changing a setting reruns the page, which stops a run in progress at its next
progress call; the epochs finished so far are kept.
"""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from explorer import ArchConfig, ConfigError, lab
from explorer.app.store import configs_of, lab_key, remember
from explorer.facts.limits import Limits

MAX_EPOCHS = 50  # a bound for this page; the library allows up to lab.MAX_EPOCHS


def curves(hist: pd.DataFrame, keyed: bool) -> None:
    """Training loss and validation accuracy per epoch, one line per run."""
    a, b = st.columns(2)
    loss = px.line(hist, x="epoch", y="train_loss", color="run", markers=True, title="Training loss")
    acc = px.line(hist, x="epoch", y="val_acc", color="run", markers=True, title="Validation accuracy")
    a.plotly_chart(loss, key="lab_loss" if keyed else None)
    b.plotly_chart(acc, key="lab_acc" if keyed else None)


def run(exp_name: str, epochs: int, seed: int, custom: list[ArchConfig] | None, key: tuple, limit: float) -> None:
    """Train with a progress bar, live curves and a Cancel button; keep the result under `key`."""
    results = st.session_state.lab_results
    cancel = st.empty()
    cancel.button("Cancel", key="lab_cancel", help="Stops the run; the epochs finished so far are kept.")
    bar = st.progress(0.0, text="preparing…")
    live = st.empty()
    drawn = [0]

    def progress(done, total, epoch, run_name):
        frac = (done + epoch / max(epochs, 1)) / max(total, 1)
        bar.progress(min(frac, 1.0), text=f"{run_name}: epoch {epoch}/{epochs}")

    def on_update(partial):
        remember(results, key, partial)  # kept if the run is cancelled
        rows = partial.history_rows()
        if len(rows) > drawn[0]:  # live curves, redrawn once per finished epoch
            drawn[0] = len(rows)
            with live.container():
                curves(pd.DataFrame(rows), keyed=False)

    try:
        res = lab.run_experiment(exp_name, epochs=epochs, seed=seed, configs=custom,
                                 progress=progress, on_update=on_update, time_limit_s=limit)
        remember(results, key, res)
        if res.timed_out:
            st.warning(f"Stopped at the {limit} s time limit; the finished runs are shown.")
    except ConfigError as exc:
        st.error(str(exc))
    bar.empty()
    live.empty()
    cancel.empty()


def show_result(res, exp_name: str) -> None:
    hist = pd.DataFrame(res.history_rows())
    grads = pd.DataFrame(res.grad_norm_rows())
    if not hist.empty:
        curves(hist, keyed=True)
    if not grads.empty:
        st.plotly_chart(px.line(grads, x="layer", y="grad_norm", color="run", log_y=True, markers=True,
                                title="Gradient norm per residual unit at initialisation"), key="lab_grads")
    st.dataframe(pd.DataFrame(res.to_rows()), hide_index=True, key="lab_table")
    d1, d2 = st.columns(2)
    d1.download_button("Download CSV", res.to_csv_bytes(), file_name=f"lab_{exp_name}.csv", mime="text/csv",
                       key="lab_csv")
    d2.download_button("Download JSON", res.to_json_bytes(), file_name=f"lab_{exp_name}.json",
                       mime="application/json", key="lab_json")


def draw(cfg: ArchConfig, summary: dict) -> None:
    exp_name = st.selectbox("Experiment", list(lab.EXPERIMENTS), key="lab_experiment",
                            format_func=lambda n: lab.EXPERIMENTS[n].title)
    exp = lab.EXPERIMENTS[exp_name]
    st.markdown(exp.description)
    st.caption(f"Claim tested: {exp.claim} — {exp.source}")
    custom = configs_of(st.session_state.compare) if exp_name == "custom" else None
    if exp_name == "custom" and not custom:
        st.info("The custom experiment trains the configs of the Compare tab: add some there first.")
        return
    c1, c2 = st.columns(2)
    epochs = int(c1.number_input("Epochs", min_value=1, max_value=MAX_EPOCHS, value=exp.settings.epochs,
                                 key="lab_epochs"))
    seed = int(c2.number_input("Seed", min_value=0, max_value=2**31 - 1, value=exp.settings.seed, key="lab_seed"))
    est = lab.estimate_seconds(exp_name, configs=custom, epochs=epochs, seed=seed)
    limit = Limits.from_env().max_lab_seconds
    st.caption(f"Expected to take about {est:.0f} s on a 2-core CPU (at most {limit} s are allowed; "
               "switching tabs or changing a setting cancels the run).")
    too_long = est > limit
    if too_long:
        st.error(f"This run would take about {est:.0f} s, over the {limit} s limit of this server "
                 "(RESNET_EXPLORER_MAX_LAB_SECONDS): use fewer epochs or smaller networks.")
    key = lab_key(exp_name, epochs, seed, custom)
    if st.button("Start training", type="primary", key="lab_run", disabled=too_long):
        run(exp_name, epochs, seed, custom, key, limit)
    res = st.session_state.lab_results.get(key)
    if res is not None:
        show_result(res, exp_name)
