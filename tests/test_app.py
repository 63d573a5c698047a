"""AppTest: every view and settings widget by key, errors beside their widget, URL state, compare set."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import explorer

APP = str(Path(__file__).resolve().parents[1] / "app.py")
VIEWS = ["Diagram", "Unit", "Summary", "Latency", "Compare", "Lab", "Learn"]


def fresh(query=None):
    at = AppTest.from_file(APP, default_timeout=180)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def show(at, view):
    at.session_state["view"] = view
    return at.run()


def table_with(at, column):
    """The first table (dataframe) that has `column`."""
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no table with column {column!r}")


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
    for key in ("skip_span", "stem_width", "groups", "width_per_group", "in_channels", "num_classes",
                "input_size"):
        assert app.number_input(key=f"cfg_{key}").value == getattr(explorer.preset("resnet50"), key)
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
    assert metrics["Parameters"] == "25.557 M" and metrics["MACs"] == "4.089 G"
    assert metrics["Depth"] == "50 layers"
    published = table_with(at, "published")
    assert list(published.iloc[0]) == ["parameters", "25,557,032", "25,557,032"]
    assert list(published.iloc[1]) == ["GMACs", "4.089", "4.089"]
    assert table_with(at, "receptive_field").shape[0] == 4


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
    assert {m.label: m.value for m in at.metric}["Parameters"] != "25.557 M"
    good = {m.label: m.value for m in at.metric}
    at.selectbox(key="cfg_shortcut").select("A").run()  # option A cannot reduce 256 -> 64
    assert not at.exception
    assert any("shortcut='A' is invalid" in e and "B or C" in e for e in errors(at))
    assert {m.label: m.value for m in at.metric} == good  # last valid view kept
    at.text_input(key="cfg_depths").input("3, four").run()
    assert any(e.startswith("depths=") for e in errors(at))
    assert not at.exception


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


def test_preset_link_and_bad_link():
    at = fresh({"preset": "resnet18", "skip_span": "1"})
    assert at.selectbox(key="preset").value == "resnet18"
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
    table = table_with(at, "macs")
    assert list(table["name"]) == ["resnet50", "resnet34"]
    at.text_input(key="compare_name_1").input("thirty-four").run()
    assert at.session_state["compare"][1]["name"] == "thirty-four"
    at.button(key="compare_remove_0").click().run()
    assert [e["name"] for e in at.session_state["compare"]] == ["thirty-four"]
    assert not at.exception


def test_compare_set_is_bounded():
    at = show(fresh(), "Compare")
    for _ in range(6):
        at.button(key="compare_add").click().run()
    assert len(at.session_state["compare"]) == 6
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
    assert metrics["Median"].endswith(" ms")
    assert any("Measured on" in c.value and "· 1 thread ·" in c.value for c in at.caption)


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
    at.number_input(key="lab_epochs").set_value(1).run()
    at.button(key="lab_run").click().run()
    assert not at.exception
    results = table_with(at, "val_acc")
    assert list(results["run"]) == ["resnet20"]
    assert {b.label for b in at.get("download_button")} >= {"Download CSV", "Download JSON"}


def test_lab_refuses_runs_over_the_time_limit(monkeypatch):
    monkeypatch.setenv("RESNET_EXPLORER_MAX_LAB_SECONDS", "1")
    at = show(fresh(), "Lab")
    assert at.button(key="lab_run").disabled
    assert any("over the 1 s limit" in e for e in errors(at))
