"""The title and the preset box agree, and choosing a preset in the box applies it; the charts'
axes read as values, measured points are marked, one legend entry per line."""
from __future__ import annotations

import pandas as pd

import explorer
from explorer.app import text
from explorer.arch.presets import preset_changes
from explorer.charts import log_axis
from explorer.compare import sweep_figure
from tests.test_app import fresh


def box_and_title(at) -> tuple[str, str]:
    return at.selectbox(key="preset").value, at.subheader[0].value


def test_a_preset_made_into_another_is_that_preset_in_the_box_and_the_title():
    at = fresh()
    at.selectbox(key="cfg_block").select("basic").run()  # resnet50 with basic blocks is resnet34
    assert not at.exception
    assert box_and_title(at) == ("resnet34", "resnet34")
    assert at.text_input(key="cfg_name").value == "resnet34"
    at.selectbox(key="cfg_block").select("bottleneck").run()  # and back
    assert box_and_title(at) == ("resnet50", "resnet50")


def test_a_changed_preset_says_custom_and_lists_only_what_the_user_changed():
    at = fresh()
    at.selectbox(key="cfg_shortcut").select("C").run()
    at.selectbox(key="cfg_block").select("basic").run()  # the span follows the block: not a change
    box, title = box_and_title(at)
    assert box == "custom"
    assert title == text.plain_text("resnet50 (modified: block basic, shortcut C)")
    assert "None" not in title and "skip_span" not in title


def test_choosing_a_preset_in_the_box_always_applies_it():
    at = fresh()
    at.selectbox(key="cfg_shortcut").select("C").run()
    at.selectbox(key="cfg_block").select("basic").run()
    at.selectbox(key="preset").select("resnet34").run()
    assert box_and_title(at) == ("resnet34", "resnet34")
    assert at.selectbox(key="cfg_shortcut").value == "B"
    at.selectbox(key="preset").select("custom").run()  # custom by hand: the box says what the settings are
    assert box_and_title(at) == ("resnet34", "resnet34")


def test_a_link_to_a_preset_s_name_with_another_s_network_says_custom():
    at = fresh({"preset": "resnet50", "block": "basic"})
    box, title = box_and_title(at)
    assert box == "custom" and title == text.plain_text("resnet50 (modified: block basic)")
    at.selectbox(key="preset").select("resnet34").run()
    assert box_and_title(at) == ("resnet34", "resnet34")


def test_a_user_named_network_keeps_its_name_and_shows_its_preset():
    at = fresh()
    at.text_input(key="cfg_name").input("mine").run()
    at.selectbox(key="cfg_block").select("basic").run()
    assert box_and_title(at) == ("resnet34", "mine")


def test_a_span_set_by_hand_is_listed_as_a_number():
    r110 = explorer.preset("resnet110_skip1")
    assert preset_changes(r110.replace(skip_span=None)) == [("skip_span", 2)]
    assert preset_changes(explorer.preset("resnet50").replace(block="basic", shortcut="C")) == [
        ("block", "basic"), ("shortcut", "C")]


# -- charts ----------------------------------------------------------------------------------------
def sweep_rows():
    return [dict(name=n, batch=b, median_ms=b * k, p10_ms=b * k * 0.9, p90_ms=b * k * 1.1,
                 throughput=1000 / k, device_name="CPU X") for n, k in (("a", 1.0), ("b", 2.0)) for b in (1, 3, 8, 24)]


def test_log_ticks_read_as_values():
    axis = log_axis([0.3, 14.6])
    assert axis["type"] == "log" and axis["ticktext"] == ["0.5", "1", "2", "5", "10"]
    assert log_axis([1e-5, 0.03])["ticktext"] == ["0.00001", "0.0001", "0.001", "0.01"]
    from explorer.charts import measured_axis

    assert measured_axis([1, 2048, 512])["ticktext"] == ["1", "512", "2,048"]  # measured sizes exactly
    assert log_axis([1, 1e5])["ticktext"][-2:] == ["10,000", "100,000"]
    assert all(len(log_axis([lo, lo * 1.2])["tickvals"]) >= 2 for lo in (0.02, 3.3, 95.0))


def test_the_sweep_marks_its_measured_batches_with_one_legend_entry_per_line():
    fig = sweep_figure(sweep_rows()).to_dict()
    lines = fig["data"]
    assert all(t["mode"] == "lines+markers" for t in lines)
    assert [t["name"] for t in lines] == ["a: latency", "a: throughput", "b: latency", "b: throughput"]
    assert all(t.get("showlegend", True) for t in lines) and len({t["name"] for t in lines}) == len(lines)
    x = fig["layout"]["xaxis"]
    assert x["type"] == "log" and list(x["tickvals"]) == [1, 3, 8, 24] and list(x["ticktext"]) == ["1", "3", "8", "24"]
    y = fig["layout"]["yaxis"]
    assert y["type"] == "log" and "tickvals" in y and all(t[0] in "125" for t in y["ticktext"])


def band_rows(values: dict[str, list[float]], x: str, y: str) -> pd.DataFrame:
    return pd.DataFrame([{"run": run, x: i + 1, y: v, y + "_std": v / 10, y + "_min": v * 0.9, "seeds": 3}
                         for run, vs in values.items() for i, v in enumerate(vs)])


def test_a_diverging_run_leaves_the_other_loss_curves_readable():
    from explorer.app.views.lab import curves_figures

    rows = band_rows({"span 1": [14.6, 2.0, 1.0], "span 2": [0.9, 0.5, 0.3]}, "epoch", "train_loss")
    rows = rows.assign(val_acc=0.5, val_acc_std=0.01, val_acc_min=0.49)
    fig = curves_figures(rows)[0].to_dict()
    y = fig["layout"]["yaxis"]
    assert y["type"] == "log" and "0.5" in y["ticktext"] and "10" in y["ticktext"]
    assert fig["layout"]["yaxis"]["title"]["text"] == "train_loss (log axis)"


def test_gradient_norm_ticks_read_as_values():
    from explorer.app.views.lab import band_figure

    rows = band_rows({"span 2": [0.002, 0.01, 0.5], "plain": [1e-4, 0.003, 0.04]}, "layer", "grad_norm")
    y = band_figure(rows, "layer", "grad_norm", "g", log_y=True).to_dict()["layout"]["yaxis"]
    assert y["type"] == "log" and "0.001" in y["ticktext"] and not any(t in ("2", "5") for t in y["ticktext"])
