"""AppTest: every view and settings widget by key, errors beside their widget, URL state, compare set.
Plus the app's plain logic (explorer/app store, inputs, text) called directly, its layout and its
server settings."""
import ast
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Error

import explorer
from explorer import ConfigError
from explorer.app import inputs, store, text
from explorer.labels import fmt_bytes, fmt_count, fmt_ms, fmt_num, fmt_rate, fmt_share
from explorer.limits import MAX_BATCH, MAX_CONFIG_BYTES
from explorer.facts.summary import measure_summary

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
VIEWS = ["Diagram", "Unit", "Summary", "Latency", "Compare", "Lab", "Learn"]


def fresh(query=None):
    at = AppTest.from_file(APP, default_timeout=180)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def show(at, view):
    at.session_state["view"] = view
    return at.run()


def custom_lab(epochs: int, seeds: int, preset: str = "resnet20"):
    """The Lab tab set to train the custom experiment (the Compare set: `preset`) at `epochs` and
    `seeds`, ready for a click on Start training."""
    at = show(fresh({"preset": preset}), "Compare")
    at.button(key="compare_add").click().run()
    at = show(at, "Lab")
    at.selectbox(key="lab_experiment").select("custom").run()
    at.number_input(key="lab_epochs").set_value(epochs).run()
    at.selectbox(key="lab_seeds").select(seeds).run()
    return at


def table_with(at, column):
    """The first table (st.dataframe or st.table) that has `column`, with its index as a column."""
    for df in [*at.dataframe, *at.table]:
        value = df.value.reset_index() if df.value.index.name else df.value
        if column in value.columns:
            return value
    raise AssertionError(f"no table with column {column!r}")


def widget_above(container, text):
    """Key of the last widget drawn above the first error in `container` that contains `text`."""
    last = None
    for node in walk(container):
        if isinstance(node, Error) and text in node.value:
            return last
        key = getattr(node, "key", None)
        if isinstance(key, str) and not key.startswith("$$"):
            last = key
    raise AssertionError(f"no error containing {text!r}")


def walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from walk(child)


def errors(at):
    return [e.value for e in at.error]


@pytest.fixture(scope="module")
def app():
    at = fresh()
    assert not at.exception
    return at


def test_defaults_to_resnet50_with_every_setting_widget(app):
    assert app.selectbox(key="preset").value == "resnet50"
    for key in ("name", "depths", "widths"):
        assert app.text_input(key=f"cfg_{key}").value
    for key in ("block", "bn_position", "relu_position", "shortcut", "stride_on", "stem"):
        assert app.selectbox(key=f"cfg_{key}").value == getattr(explorer.preset("resnet50"), key)
    for key in ("stem_width", "groups", "width_per_group", "in_channels", "num_classes", "input_size"):
        assert app.number_input(key=f"cfg_{key}").value == getattr(explorer.preset("resnet50"), key)
    assert app.number_input(key="cfg_skip_span").value == 3  # the bottleneck's own length, a number
    assert app.checkbox(key="cfg_zero_init_residual").value is False
    assert app.text_input(key="cfg_depths").value == "3, 4, 6, 3"


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_renders_without_exception(app, view):
    at = show(app, view)
    assert not at.exception
    assert not errors(at)


def test_summary_view_shows_counts_and_published_figures(app):
    at = show(app, "Summary")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Parameters"] == "25.6 M" and metrics["MACs"] == "4.09 G"
    assert metrics["Weight layers"] == "50" and metrics["Activations"] == "85.6 MiB"
    published = table_with(at, "published")
    assert list(published.iloc[0]) == ["parameters", "25,557,032", "25,557,032"]
    assert list(published.iloc[1]) == ["GMACs", "4.089", "4.089"]
    stages = table_with(at, "receptive field")
    assert stages.shape[0] == 4 and list(stages["params"])[0] == "215,808"  # thousands separated
    assert list(table_with(at, "part")["params"])[0] == "9,536"


def test_diagram_view_levels_and_downloads(app):
    at = show(app, "Diagram")
    for detail in ("stages", "units", "layers"):
        at.radio(key="diagram_detail").set_value(detail).run()
        assert not at.exception
    at.toggle(key="diagram_fold").set_value(True).run()
    at.radio(key="diagram_direction").set_value("LR").run()
    assert not at.exception
    labels = {b.label for b in at.get("download_button")}
    assert {"Download DOT", "Download SVG", "Download PNG", "Download PDF"} <= labels


def test_diagram_says_when_the_png_is_shrunk():
    at = show(fresh({"preset": "resnet20"}), "Diagram")
    assert not any("The PNG is shrunk" in c.value for c in at.caption)
    at = show(fresh({"preset": "resnet152"}), "Diagram")
    at.radio(key="diagram_detail").set_value("layers").run()
    assert not at.exception
    note = [c.value for c in at.caption if "The PNG is shrunk" in c.value]
    assert len(note) == 1 and "SVG and PDF" in note[0]
    percent = int(note[0].split("shrunk to ")[1].split("%")[0])
    assert 80 <= percent <= 99  # ResNet-152's layers are laid out compactly: a slight shrink


def test_preset_change_loads_its_settings():
    at = fresh()
    at.selectbox(key="preset").select("resnet110_skip1").run()
    assert not at.exception
    assert at.number_input(key="cfg_skip_span").value == 1
    assert at.text_input(key="cfg_depths").value == "18, 18, 18"
    assert at.query_params["skip_span"] == ["1"] or at.query_params["skip_span"] == "1"


def test_unit_variant_sets_bn_and_relu_together():
    at = fresh()
    at.selectbox(key="unit_variant").select("e").run()
    assert at.selectbox(key="cfg_bn_position").value == "before_conv"
    assert at.selectbox(key="cfg_relu_position").value == "before_conv"
    at.selectbox(key="cfg_relu_position").select("after_add").run()
    assert at.selectbox(key="unit_variant").value == "custom"


def test_bad_combination_shows_message_and_keeps_last_valid_view():
    at = show(fresh(), "Summary")
    at.number_input(key="cfg_skip_span").set_value(1).run()
    assert {m.label: m.value for m in at.metric}["Parameters"] != "25.6 M"
    good = {m.label: m.value for m in at.metric}
    at.selectbox(key="cfg_shortcut").select("A").run()  # option A cannot reduce 256 -> 64
    assert not at.exception
    assert any("shortcut='A' is invalid" in e and "B or C" in e for e in errors(at))
    assert {m.label: m.value for m in at.metric} == good  # last valid view kept
    at.text_input(key="cfg_depths").input("3, four").run()
    assert any(e.startswith("depths=") for e in errors(at))
    assert not at.exception


def test_the_name_and_the_preset_box_follow_the_network():
    at = fresh()
    at.number_input(key="cfg_skip_span").set_value(1).run()
    assert at.selectbox(key="preset").value == "custom"
    assert at.subheader[0].value == text.plain_text("resnet50 (modified: skip_span 1)")
    at.number_input(key="cfg_skip_span").set_value(3).run()  # resnet50's own span again
    assert at.selectbox(key="preset").value == "resnet50" and at.subheader[0].value == "resnet50"
    at.selectbox(key="preset").select("resnet34").run()
    at.text_input(key="cfg_name").input("mine").run()
    assert at.selectbox(key="preset").value == "resnet34" and at.subheader[0].value == "mine"
    assert not at.exception
    # a shared link to a changed resnet34 reopens as such
    link = fresh(explorer.preset("resnet34").replace(skip_span=1).to_query())
    assert link.selectbox(key="preset").value == "custom"
    assert link.subheader[0].value == text.plain_text("resnet34 (modified: skip_span 1)")
    assert fresh(explorer.preset("resnet34").to_query()).selectbox(key="preset").value == "resnet34"


def test_a_size_limit_is_shown_under_the_changed_widget_and_in_the_main_area():
    at = fresh()
    at.text_input(key="cfg_depths").input("200, 200, 200, 200").run()
    assert not at.exception
    assert widget_above(at.sidebar, "at most 1,000,000,000 parameters") == "cfg_depths"
    main = [e.value for e in at.main.error]
    assert len(main) == 1 and main[0].startswith("**depths**: " + text.plain_text("[200, 200, 200, 200] is invalid"))
    assert "last valid configuration" in main[0]
    assert at.subheader[0].value == "resnet50"  # the last valid network is still shown
    at.text_input(key="cfg_widths").input("64, 128, 256, 1024").run()  # bigger still: now widths is blamed
    assert widget_above(at.sidebar, "parameters") == "cfg_widths"
    assert at.main.error[0].value.startswith("**widths**")


def test_query_params_round_trip():
    cfg = explorer.preset("resnet20").replace(skip_span=1, shortcut="B", name="r20 one-layer")
    at = fresh(cfg.to_query())
    assert not at.exception
    assert at.text_input(key="cfg_name").value == "r20 one-layer"
    assert at.number_input(key="cfg_skip_span").value == 1
    assert at.selectbox(key="cfg_shortcut").value == "B"
    written = {k: at.query_params[k] for k in cfg.to_query()}
    flat = {k: v[0] if isinstance(v, list) else v for k, v in written.items()}
    assert explorer.ArchConfig.from_query(flat) == cfg


def address_of(at) -> dict:
    return {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}


def test_the_address_holds_the_open_view_and_the_diagram_detail():
    at = show(fresh({"preset": "resnet18"}), "Summary")
    assert address_of(at)["view"] == "Summary"
    at.session_state["diagram_detail"] = "layers"
    at = show(at, "Diagram")
    assert address_of(at).get("detail") == "layers" and "view" not in address_of(at)  # defaults stay out
    link = fresh(address_of(show(at, "Unit")))
    assert not link.exception
    assert link.session_state["view"] == "Unit" and link.session_state["diagram_detail"] == "layers"
    assert link.text_input(key="cfg_depths").value == "2, 2, 2, 2"
    odd = fresh({"preset": "resnet18", "view": "Nowhere", "detail": "atoms"})
    assert not odd.exception and odd.session_state["view"] == "Diagram"
    assert odd.session_state["diagram_detail"] == "units"


def test_diagram_controls_are_kept_while_another_tab_is_open():
    at = fresh({"preset": "resnet18"})
    at.radio(key="diagram_direction").set_value("LR").run()
    at.toggle(key="diagram_shapes").set_value(False).run()
    at = show(show(at, "Summary"), "Diagram")
    assert at.radio(key="diagram_direction").value == "LR" and at.toggle(key="diagram_shapes").value is False


def go_to(at, params):
    for key in list(at.query_params):
        del at.query_params[key]
    at.query_params.update(params)
    return at.run()


def test_back_and_forward_show_the_address_they_go_to(monkeypatch):
    # The browser's Back and Forward rerun the page with the address they go to and a flag that
    # says so (a real browser sets it in tests/test_browser.py); here the flag is set by hand.
    from explorer.app import state
    monkeypatch.setattr(state, "history_navigation", lambda: True)
    at = fresh()
    before = address_of(at)
    at.number_input(key="cfg_skip_span").set_value(1).run()
    at = show(at, "Summary")
    after = address_of(at)
    assert after["skip_span"] == "1" and after["view"] == "Summary"
    go_to(at, before)  # Back: the earlier address, same session
    assert not at.exception
    assert at.number_input(key="cfg_skip_span").value == 3 and at.selectbox(key="preset").value == "resnet50"
    assert at.subheader[0].value == "resnet50" and at.session_state["view"] == "Diagram"
    go_to(at, after)  # Forward again
    assert at.number_input(key="cfg_skip_span").value == 1 and at.session_state["view"] == "Summary"
    assert at.subheader[0].value == text.plain_text("resnet50 (modified: skip_span 1)")


def test_the_bare_address_stays_bare_until_a_change(monkeypatch):
    from explorer.app import state
    monkeypatch.setattr(state, "history_navigation", lambda: True)
    at = fresh()
    assert address_of(at) == {}  # the default network: one history entry, not two
    at.selectbox(key="cfg_shortcut").select("C").run()
    assert address_of(at)["shortcut"] == "C"
    go_to(at, {})  # Back to where the user came in
    assert at.selectbox(key="cfg_shortcut").value == "B" and address_of(at) == {}
    assert at.subheader[0].value == "resnet50"


def test_a_rerun_with_an_older_address_keeps_what_the_user_did():
    # A second click can reach the server before the browser has the address the first one wrote;
    # that rerun is no Back, and the settings must stay.
    at = fresh()
    before = address_of(at)
    at.number_input(key="cfg_skip_span").set_value(1).run()
    go_to(at, before)
    assert at.number_input(key="cfg_skip_span").value == 1
    assert address_of(at)["skip_span"] == "1"


def test_skip_span_is_a_number_that_follows_the_block():
    at = fresh()
    assert at.number_input(key="cfg_skip_span").value == 3  # -/+ work: never an empty field
    at.selectbox(key="cfg_block").select("basic").run()
    assert at.number_input(key="cfg_skip_span").value == 2
    assert "skip_span" not in address_of(at) or address_of(at)["skip_span"] == "null"
    at.number_input(key="cfg_skip_span").increment().run()
    assert address_of(at)["skip_span"] == "3"  # basic with a span of 3 is a choice, kept
    at.selectbox(key="cfg_block").select("bottleneck").run()
    assert at.number_input(key="cfg_skip_span").value == 3 and at.selectbox(key="preset").value == "resnet50"


def test_preset_link_and_bad_link():
    at = fresh({"preset": "resnet18", "skip_span": "1"})
    assert at.selectbox(key="preset").value == "custom"  # a changed resnet18 is no preset
    assert at.subheader[0].value == text.plain_text("resnet18 (modified: skip_span 1)")
    assert at.number_input(key="cfg_skip_span").value == 1
    bad = fresh({"block": "hexagonal"})
    assert not bad.exception
    assert any("block='hexagonal' is invalid" in w.value for w in bad.warning)
    assert bad.selectbox(key="cfg_block").value == "bottleneck"  # the default preset instead


def test_compare_add_rename_remove():
    at = show(fresh(), "Compare")
    at.button(key="compare_add").click().run()
    at.selectbox(key="preset").select("resnet34").run()
    at.button(key="compare_add").click().run()
    assert not at.exception
    assert len(at.session_state["compare"]) == 2
    table = table_with(at, "setting")  # a row per setting and figure, a column per config
    assert list(table.columns[1:]) == ["resnet50", "resnet34"] and "macs" in list(table["setting"])
    at.text_input(key="compare_name_1").input("thirty-four").run()
    assert at.session_state["compare"][1]["name"] == "thirty-four"
    at.button(key="compare_remove_0").click().run()
    assert [e["name"] for e in at.session_state["compare"]] == ["thirty-four"]
    assert not at.exception


def test_compare_rows_have_distinct_names():
    at = show(fresh({"preset": "resnet34"}), "Compare")
    at.button(key="compare_add").click().run()
    at.number_input(key="cfg_skip_span").set_value(1).run()
    at.button(key="compare_add").click().run()
    at.button(key="compare_add").click().run()
    assert not at.exception
    at.number_input(key="cfg_skip_span").set_value(2).run()  # resnet34 itself again
    at.button(key="compare_add").click().run()
    names = ["resnet34", "resnet34 (skip_span 1)", "resnet34 (skip_span 1) #2", "resnet34 #2"]
    assert [e["name"] for e in at.session_state["compare"]] == names
    assert list(table_with(at, "setting").columns[1:]) == names


def test_a_changed_preset_is_added_to_compare_under_its_changes():
    at = show(fresh({"preset": "resnet18", "skip_span": "1"}), "Compare")
    assert at.button(key="compare_add").label == "Add current config (resnet18 (skip_span 1))"
    at.button(key="compare_add").click().run()
    assert [e["name"] for e in at.session_state["compare"]] == ["resnet18 (skip_span 1)"]
    long = "x" * 200  # numbered within the name's length limit
    assert inputs.distinct_name(explorer.preset("resnet18").replace(name=long), {long}) == "x" * 192 + " #2"


def test_compare_set_is_bounded():
    at = show(fresh(), "Compare")
    for _ in range(store.MAX_COMPARE):
        at.button(key="compare_add").click().run()
    assert len(at.session_state["compare"]) == store.MAX_COMPARE
    assert at.button(key="compare_add").disabled


def test_learn_buttons_set_the_knobs():
    at = show(fresh(), "Learn")
    at.button(key="learn_two_layers").click().run()
    assert not at.exception
    assert at.number_input(key="cfg_skip_span").value == 1
    assert at.session_state["view"] == "Unit"
    at = show(at, "Learn")
    at.button(key="learn_projection_cost").click().run()
    assert at.text_input(key="cfg_depths").value == "3, 4, 6, 3"
    assert at.number_input(key="cfg_skip_span").value == 1


def test_latency_runs_on_cpu_and_labels_device():
    at = show(fresh(), "Latency")
    at.selectbox(key="preset").select("resnet20").run()
    at.selectbox(key="lat_threads").select(1).run()
    at.button(key="lat_run").click().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Median"].endswith(("s", " ms")) and "e+" not in metrics["Median"]
    assert "e+" not in metrics["Throughput"] and metrics["Throughput"] != "0 img/s"
    caption = next(c.value for c in at.caption if "Measured on" in c.value)
    assert "**CPU (" in caption and caption.count("thread") == 1 and ", 1 thread)" in caption


def test_latency_sweep_says_which_batches_were_not_measured_and_why(monkeypatch):
    from explorer.app.views import latency as latency_view

    monkeypatch.setattr(latency_view, "SWEEP_BUDGET_S", 0.3)  # too little for the large batches
    at = show(fresh(), "Latency")
    at.selectbox(key="preset").select("resnet20").run()
    at.selectbox(key="lat_threads").select(1).run()
    at.button(key="lat_sweep").click().run()
    assert not at.exception
    note = next(c.value for c in at.caption if "not measured:" in c.value)
    assert "batch 2048" in note or ", 2048" in note
    assert "the budget of 0.3 s ran out" in note or "did not fit in memory" in note


def test_noisy_latency_message_names_the_thread_count_on_cpu():
    from types import SimpleNamespace as Result

    from explorer.app.views.latency import noisy_message

    assert "pick 1 CPU thread: at 2 threads" in noisy_message(Result(device="cpu", threads=2))
    assert "pick 1 CPU thread" not in noisy_message(Result(device="cpu", threads=1))
    assert "pick 1 CPU thread" not in noisy_message(Result(device="cuda", threads=2))


def test_unit_view_lists_units_and_highlights_projections(app):
    at = show(app, "Unit")
    assert at.selectbox(key="unit_pick").value == "layer1.0"  # the first unit with a projection
    df = table_with(at, "shortcut_params")
    assert (df["shortcut"] == "projection").sum() == 4


def test_lab_runs_a_custom_experiment_from_the_compare_set():
    at = show(fresh({"preset": "resnet20"}), "Compare")
    at.button(key="compare_add").click().run()
    at = show(at, "Lab")
    at.selectbox(key="lab_experiment").select("custom").run()
    assert at.selectbox(key="lab_seeds").value == explorer.lab.DEFAULT_SEEDS == 3
    at.number_input(key="lab_epochs").set_value(2).run()
    at.selectbox(key="lab_seeds").select(2).run()
    at.button(key="lab_run").click().run()
    assert not at.exception
    results = table_with(at, "val_acc")
    assert list(results["run"]) == ["resnet20"]
    assert list(results["seeds"]) == [2] and results["train_loss"].str.contains(" ± ").all()  # mean ± std
    assert list(table_with(at, "seed")["seed"]) == [0, 1]  # each seed's own row
    assert {b.label for b in at.get("download_button")} >= {"Download CSV", "Download per-seed CSV",
                                                              "Download JSON"}
    # the curves: the mean over the seeds as a line, inside a shaded band of mean ± std
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    curves = [c for c in charts if c["layout"]["title"]["text"] in ("Training loss", "Validation accuracy")]
    assert len(curves) == 2
    for chart in curves:
        assert [(t["name"], t.get("fill")) for t in chart["data"]] == [("resnet20 band", "toself"), ("resnet20", None)]
        band, mean = chart["data"]
        assert len(band["y"]) == 2 * len(mean["y"]) == 4
        assert all(hi >= m >= lo for hi, m, lo in zip(band["y"][:2], mean["y"], band["y"][:1:-1]))
    assert any("mean ± one standard deviation" in c.value for c in at.caption)


def test_lab_results_tables_read_in_rounded_units():
    """No raw float in the results tables (loss "1.27", accuracy "98.3 %"), and the downloads
    deliver their file without a rerun."""
    at = custom_lab(epochs=1, seeds=2)
    at.button(key="lab_run").click().run()
    assert not at.exception
    tables = [table_with(at, "val_acc"), table_with(at, "seed")]
    for df in tables:
        for col in df.columns:
            for v in df[col]:
                decimals = re.findall(r"\.(\d+)", str(v))
                assert all(len(d) <= 4 for d in decimals), (col, v)
    row = tables[0].iloc[0]
    assert str(row["val_acc"]).endswith(" %") and str(row["seconds"]).endswith(" s")
    from explorer.app.views.lab import readable  # one seed has no std: its cell reads "–", not "None"
    one_seed = readable([{"run": "plain20", "val_acc": 50.0, "val_acc_std": None, "train_loss": float("nan"),
                          "cancelled": False}]).iloc[0]
    assert (one_seed["val_acc_std"], one_seed["train_loss"], one_seed["cancelled"]) == ("–", "–", False)
    mean = str(row["train_loss"]).split(" ± ")[0]
    assert float(mean) == pytest.approx(float(fmt_num(float(mean))))
    buttons = {b.key: b for b in at.get("download_button")}
    for key in ("lab_csv", "lab_csv_seeds", "lab_json"):
        assert buttons[key].proto.ignore_rerun, key  # on_click="ignore"


def test_lab_seeds_choice_changes_the_estimate_and_the_result_key():
    at = show(fresh(), "Lab")
    assert at.selectbox(key="lab_seeds").options == ["1", "2", "3", "4", "5"]
    three = next(c.value for c in at.caption if c.value.startswith("Expected to take"))
    at.selectbox(key="lab_seeds").select(1).run()
    one = next(c.value for c in at.caption if c.value.startswith("Expected to take"))
    assert not at.exception and one != three and "worker processes" not in one
    assert store.lab_key("units", 2, 0, None, 1) != store.lab_key("units", 2, 0, None, 3)


def test_lab_refuses_runs_over_the_time_limit(monkeypatch):
    monkeypatch.setenv("RESNET_EXPLORER_MAX_LAB_SECONDS", "1")
    at = show(fresh(), "Lab")
    assert at.button(key="lab_run").disabled
    assert any("over the 1 s limit" in e for e in errors(at))


def test_latency_batch_bound_is_the_library_s():
    at = show(fresh(), "Latency")
    assert at.number_input(key="lat_batch").max == MAX_BATCH


# -- plain logic, no streamlit ------------------------------------------------------------------
def settings(**changes):
    base = dict(device="cpu", batch=1, dtype="fp32", channels_last=False, compile=False, threads=None)
    return store.LatencySettings(**{**base, **changes})


def test_remember_keeps_the_newest_results():
    results = {}
    for i in range(store.MAX_RESULTS + 5):
        store.remember(results, i, i)
    assert list(results) == list(range(5, store.MAX_RESULTS + 5))
    store.remember(results, 7, "again")  # re-measured: now the newest
    assert list(results)[-1] == 7 and len(results) == store.MAX_RESULTS


def test_latency_results_match_config_and_settings():
    from dataclasses import replace

    r20, r32 = explorer.preset("resnet20"), explorer.preset("resnet32")
    measured = explorer.timing.measure_latency(r20, device="cpu", threads=1, budget_s=0.0, min_samples=1, warmup=0)
    results = {}
    store.remember(results, store.latency_key(r20, settings()), replace(measured, median_ms=1.0))
    store.remember(results, store.sweep_key(r20, settings()), [{"batch": 1}])
    assert results.get(store.latency_key(r20, settings(batch=2))) is None
    assert results.get(store.latency_key(r32, settings())) is None
    assert store.latency_key(r20, settings()) != store.sweep_key(r20, settings())
    store.remember(results, store.latency_key(r20, settings(threads=1)), replace(measured, median_ms=2.0))
    # The comparison takes the newest measurement of the architecture, whatever it is called now.
    renamed = r20.replace(name="twenty")
    assert store.latest_latency(results, renamed) == replace(measured, median_ms=2.0)
    assert store.latest_latency(results, r32) is None
    # torch's default thread count is keyed as its number: the same measurement either way
    default = explorer.timing.default_threads()
    assert store.latency_key(r20, settings()) == store.latency_key(r20, settings(threads=default))
    assert settings().sweep_kwargs() == dict(device="cpu", dtype="fp32", channels_last=False, threads=None)


def test_comparison_set_add_rename_remove():
    entries = []
    for _ in range(store.MAX_COMPARE):
        assert store.add_config(entries, explorer.preset("resnet18")) is None
    assert f"at most {store.MAX_COMPARE}" in store.add_config(entries, explorer.preset("resnet18"))
    assert len(entries) == store.MAX_COMPARE
    assert store.rename_config(entries, 1, "  eighteen ") is None and entries[1]["name"] == "eighteen"
    assert store.rename_config(entries, 1, "x" * 1000).startswith("name=")
    assert len({e["name"] for e in entries}) == len(entries)  # the same preset each time, a name each
    store.remove_config(entries, 0)
    store.remove_config(entries, 99)
    assert [c.name for c in store.configs_of(entries)][0] == "eighteen"


def test_widget_values_round_trip():
    cfg = explorer.preset("preact_resnet110").replace(skip_span=1, name="p110")
    values = inputs.widget_values(cfg)
    assert values["cfg_depths"] == "18, 18, 18" and values["unit_variant"] == "e"
    assert inputs.config_from_widgets(values) == cfg
    for name in explorer.PRESETS:  # every preset shows its span as a number and reads back as itself
        if name != "resnet1202":   # over the server's default size limit
            preset = explorer.preset(name)
            assert inputs.config_from_widgets(inputs.widget_values(preset)) == preset, name
    with pytest.raises(ConfigError) as exc:
        inputs.config_from_widgets({**values, "cfg_widths": "16, x"})
    assert exc.value.key == "widths"


def test_configs_from_widgets_and_links_obey_the_server_limits(monkeypatch):
    monkeypatch.setenv("RESNET_EXPLORER_MAX_WEIGHT_LAYERS", "100")
    with pytest.raises(ConfigError) as exc:
        inputs.config_from_widgets(inputs.widget_values(explorer.preset("resnet110")))
    assert exc.value.key == "depths"
    preset, cfg, error = inputs.config_from_link({"preset": "resnet20", "depths": "[50,50,50]"})
    assert (preset, cfg) == ("resnet20", explorer.preset("resnet20"))
    assert error.startswith("The link's settings were not used: depths=")


def test_config_from_link():
    assert inputs.config_from_link({}) == ("resnet50", explorer.preset("resnet50"), None)
    preset, cfg, error = inputs.config_from_link({"preset": "resnet18", "skip_span": "1"})
    assert (preset, cfg.skip_span, error) == ("custom", 1, None)  # the preset box tells the truth
    assert inputs.config_from_link({"preset": "resnet18"})[0] == "resnet18"
    # a config of another name that is a preset's architecture shows that preset
    assert inputs.config_from_link(explorer.preset("resnet34").replace(name="mine").to_query())[0] == "resnet34"
    preset, cfg, error = inputs.config_from_link({"block": "hexagonal"})
    assert (preset, cfg) == ("resnet50", explorer.preset("resnet50")) and "block='hexagonal'" in error


def test_uploads_are_bounded_by_the_cli_limit(monkeypatch):
    cfg = explorer.preset("resnet20")
    data = cfg.to_json().encode()
    assert inputs.config_from_upload("r20.json", len(data), data) == cfg
    big = data + b" " * MAX_CONFIG_BYTES
    with pytest.raises(ConfigError, match="at most 64 KiB"):
        inputs.config_from_upload("big.json", len(big), big)
    with pytest.raises(ConfigError):
        inputs.config_from_upload("bad.json", 3, b"{x]")
    bad = b'{"name": "r20",\n  "depths": [3, 3, 3],}'
    with pytest.raises(ConfigError) as exc:
        inputs.config_from_upload("bad.json", len(bad), bad)
    assert str(exc.value).startswith("file='bad.json' is invalid: a JSON config. Line 2, column")
    assert "b'" not in str(exc.value) and "config=" not in str(exc.value)
    monkeypatch.setenv("RESNET_EXPLORER_MAX_WEIGHT_LAYERS", "10")
    with pytest.raises(ConfigError):
        inputs.config_from_upload("r20.json", len(data), data)


def test_text_helpers():
    assert text.plain_text("a*b\n  [x](y)") == "a\\*b \\[x\\]\\(y\\)"
    assert text.safe_name(explorer.preset("resnet20").replace(name="../a b")) == "a_b"
    assert text.published_figure(None) == "—" and text.published_figure(1234) == "1,234"
    r50 = explorer.preset("resnet50")
    assert text.title(r50) == "resnet50" and text.title(r50.replace(name="mine", skip_span=1)) == "mine"
    assert text.title(r50.replace(skip_span=1)) == "resnet50 (modified: skip_span 1)"
    assert text.title(r50.replace(skip_span=1, shortcut="C", depths=(2, 2, 2, 2), stem_width=32)) == \
        "resnet50 (modified: depths [2, 2, 2, 2], skip_span 1, shortcut C, +1 more)"
    headline = text.headline(measure_summary(r50))
    assert headline.startswith("25.6 M params · 4.09 G MACs · 50 weight layers")


def test_formatters():
    assert fmt_ms(2980.4) == "2.98 s" and fmt_ms(57.31) == "57.3 ms" and fmt_ms(0.812) == "812 µs"
    assert fmt_ms(999.9) == "1.00 s" and fmt_ms(0) == "0 ms" and fmt_ms(1.5e-4) == "150 ns"
    assert fmt_rate(0.3356) == "0.34 img/s" and fmt_rate(1234.4) == "1,234 img/s"
    assert fmt_rate(57.31, "images/s") == "57.3 images/s"
    assert fmt_count(51380224) == "51,380,224" and fmt_count(25557032, short=True) == "25.6 M"
    assert fmt_count(4089184256, short=True) == "4.09 G" and fmt_count(812, short=True) == "812"
    assert fmt_count(999_600, short=True) == "1.00 M" and fmt_count(12_345, short=True) == "12.3 k"
    assert fmt_bytes(89726880) == "85.6 MiB" and fmt_bytes(512) == "512 B" and fmt_bytes(3 * 2**30) == "3.00 GiB"
    assert fmt_num(1.2715658350680568) == "1.27" and fmt_num(0.0034) == "0.0034" and fmt_num(2980.4) == "2,980"
    assert fmt_share(0.1234) == "12.3 %" and fmt_share(1) == "100 %"
    for x in (1e-7, 0.5, 3, 42.0, 1e5, 1e9, 3e13):  # never an exponent
        assert "e" not in fmt_ms(x) and "e" not in fmt_num(x) and "e" not in fmt_count(x, short=True)


# -- layout and loading --------------------------------------------------------------------------
PURE = ("store", "inputs", "text")


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_app_is_a_thin_entry_and_modules_are_small():
    assert len(Path(APP).read_text().splitlines()) <= 20
    for path in (ROOT / "explorer" / "app").rglob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path
    for name in PURE:
        assert not any(m.split(".")[0] == "streamlit" for m in imports_of(ROOT / "explorer" / "app" / f"{name}.py"))


FIRST_RENDER = """
import json, sys
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Error
at = AppTest.from_file(sys.argv[1], default_timeout=180).run()
assert not at.exception, at.exception
loaded = {m: m in sys.modules for m in sys.argv[2:]}
at.session_state["view"] = "Lab"
at.run()
assert not at.exception, at.exception
print(json.dumps({"first": loaded, "lab": {m: m in sys.modules for m in sys.argv[2:]}}))
"""


def test_first_render_loads_only_the_open_view():
    heavy = ["sklearn", "plotly.express", "pandas", "torchinfo", "torch._dynamo", "explorer.lab",
             "explorer.app.views.lab", "explorer.app.views.summary"]
    out = subprocess.run([sys.executable, "-c", FIRST_RENDER, APP, *heavy], capture_output=True, text=True,
                         cwd=ROOT, timeout=300, check=True).stdout
    loaded = json.loads(out.strip().splitlines()[-1])
    assert not any(loaded["first"].values()), loaded["first"]
    assert loaded["lab"]["explorer.lab"] and loaded["lab"]["plotly.express"]
    assert not loaded["lab"]["explorer.app.views.summary"]


def test_server_does_not_watch_files():
    conf = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert conf["server"]["fileWatcherType"] == "none"
    assert conf["server"]["runOnSave"] is False
    assert conf["server"]["headless"] is True


def test_a_local_tool_shows_no_deploy_button():
    conf = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert conf["client"]["toolbarMode"] == "minimal"


# -- messages and small readability points --------------------------------------------------
def test_errors_show_lists_and_say_the_key_once_without_environment_variables():
    assert "widths=[0, 128, 256, 512] is invalid" in str(ConfigError("widths", (0, 128, 256, 512), "positive"))
    with pytest.raises(ConfigError) as caught:
        explorer.preset("resnet18").replace(widths=(0, 128, 256, 512))
    assert "(0, 128" not in str(caught.value) and "[0, 128, 256, 512]" in str(caught.value)
    at = fresh()
    at.text_input(key="cfg_depths").input("200, 200, 200, 200").run()
    shown = [e.value for e in at.main.error] + [e.value for e in at.sidebar.error]
    assert shown and not any("RESNET_EXPLORER" in e for e in shown), shown
    assert "This server sets the limit" in shown[0] and "depths=" not in shown[0]
    at = fresh()
    at.number_input(key="cfg_skip_span").set_value(1).run()
    at.selectbox(key="cfg_shortcut").select("A").run()
    main = at.main.error[0].value
    assert main.startswith("**shortcut**: " + text.plain_text("'A' is invalid")), main
    assert text.plain_text("shortcut='A'") not in main
    # the network shown is called what the title calls it, not the preset it was made from
    assert "configuration, " + text.plain_text("resnet50 (modified: skip_span 1)") + "," in main, main


def test_the_command_line_names_the_servers_environment_variable(capsys):
    from explorer.__main__ import main

    assert main(["summary", "resnet50", "--set", "depths=[200,200,200,200]"]) == 2
    assert "RESNET_EXPLORER_MAX_PARAMS" in capsys.readouterr().err


def test_headline_counts_have_thousands_separators():
    from dataclasses import replace

    s = measure_summary(explorer.preset("resnet20"))
    assert "2,432 weight layers" in text.headline(replace(s, depth=2432))


def test_lab_cites_the_section_learn_cites_for_the_skip_span():
    from explorer import lab, lessons

    assert "Sec. 3.2" in lab.EXPERIMENTS["skip_span"].source
    assert any("Sec. 3.2" in str(lesson) for lesson in vars(lessons).values())


def test_the_unit_view_unit_is_in_the_address():
    at = show(fresh({"preset": "resnet50"}), "Unit")
    assert "unit" not in address_of(at)  # the figure's own choice is the default
    at.selectbox(key="unit_pick").select("layer3.0").run()
    assert address_of(at)["unit"] == "layer3.0"
    link = fresh(address_of(at))
    assert not link.exception and link.selectbox(key="unit_pick").value == "layer3.0"
    assert not fresh({"preset": "resnet50", "view": "Unit", "unit": "layer9.9"}).exception


def test_the_address_is_bare_whenever_the_default_preset_shows():
    at = fresh()
    assert address_of(at) == {}
    at.number_input(key="cfg_skip_span").set_value(1).run()
    assert address_of(at)
    at.number_input(key="cfg_skip_span").set_value(3).run()  # back to resnet50
    assert address_of(at) == {}


def test_unit_text_names_what_its_table_shows_and_explains_w_s():
    at = show(fresh({"preset": "resnet50"}), "Unit")
    prose = " ".join(m.value for m in at.markdown)
    assert "in_shape" not in prose and "out_shape" not in prose
    assert "BatchNorm" in prose and "conv's weights alone" in prose
    headers = list(at.dataframe[0].value.columns)
    assert headers[1:3] == ["in_shape", "out_shape"]  # shown as x and F(x)


def test_latency_press_box_goes_once_any_result_shows_and_two_medians_are_explained(monkeypatch):
    from explorer.app.views import latency as latency_view

    monkeypatch.setattr(latency_view, "PROFILE_BUDGET_S", 0.3)
    at = show(fresh({"preset": "resnet20"}), "Latency")
    at.selectbox(key="lat_threads").select(1).run()
    press = lambda: [i.value for i in at.info if "Press **Measure latency**" in i.value]  # noqa: E731
    assert press()
    at.button(key="lat_profile").click().run()
    assert not at.exception and not press()
    at.button(key="lat_run").click().run()
    assert any(c.value.startswith("Two medians, two measurements") for c in at.caption)


def test_a_cancelled_lab_says_which_seeds_its_lines_average():
    from types import SimpleNamespace

    from explorer.app.views.lab import curves_caption

    whole = curves_caption(SimpleNamespace(seeds=(0, 1, 2), cancelled=False), [3, 3, 3])
    assert whole.startswith("Lines: mean over 3 seeds")
    cut = curves_caption(SimpleNamespace(seeds=(0, 1, 2), cancelled=True), [3, 2, 1])
    assert "mean over 3 seeds" not in cut and "1 to 3 of 3" in cut and "cancelled" in cut


def test_lab_results_table_is_narrow():
    from explorer.app.views.lab import results_frame

    rows = [{"run": f"span{k}", "depth": 38, "skip_span": k, "params": 1000 * k, "seeds": 3, "epochs": 2,
             "train_loss": 0.5 * k, "train_loss_std": 0.1, "train_acc": 0.9, "val_loss": 0.6, "val_acc": 0.8 / k,
             "val_acc_std": 0.01, "best_val_acc": 0.85, "seconds": 3.0, "cancelled": False} for k in (1, 2)]
    frame, common = results_frame(rows)
    assert list(frame.columns) == ["run", "skip_span", "params", "train_loss", "val_acc", "seconds"]
    assert frame["train_loss"][0] == "0.50 ± 0.10" and "±" in frame["val_acc"][0]
    assert common == "depth 38, seeds 3, epochs 2"


def test_page_style_quiets_a_running_page_and_drops_a_clicked_tabs_outline():
    from explorer.app.page import PAGE_CSS

    assert 'data-test-script-state="running"' in PAGE_CSS and "transition: none" in PAGE_CSS
    assert '[data-testid="stTab"]:focus:not(:focus-visible)' in PAGE_CSS
    css = (ROOT / "explorer" / "app" / "component" / "diagram.css").read_text()
    assert re.search(r"\.dv-bar button[^{]*\{[^}]*flex: none", css)  # "100%" keeps its button's width
