"""Compare: one row per config, differing keys, figures, exports, the compare CLI."""
import csv
import io
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import explorer
from explorer import ArchConfig, ConfigError
from explorer.__main__ import main
from explorer.app import store
from explorer.facts.summary import measure_summary
from explorer.compare import (
    LATENCY_COLUMNS, SHOWN_SETTINGS, bar_figure, compare_table, differing_keys, setting_columns, sweep_figure,
    to_csv_bytes, to_frame, to_json_bytes,
)
from explorer.limits import LATENCY_BUDGET_S, MAX_COMPARE
from explorer.timing import LatencyResult, batch_sweep
from explorer.arch.config import field_names


def tiny(**kw) -> ArchConfig:
    base = dict(name="tiny", stem="cifar", stem_width=8, widths=[8, 16], depths=[1, 1], input_size=16,
                num_classes=10)
    base.update(kw)
    return ArchConfig.from_dict(base)


def test_differing_keys():
    r18, r34 = explorer.preset("resnet18"), explorer.preset("resnet34")
    assert differing_keys([r18, r34]) == ["depths"]
    assert differing_keys([r18, r34], include_name=True) == ["name", "depths"]
    assert differing_keys([r18, r18.replace(name="x")]) == []
    assert differing_keys([r18, explorer.preset("resnet18_paper")]) == ["shortcut", "stride_on"]


# One valid change per config key (besides the name) of a small bottleneck network.
CHANGES = dict(block="basic", depths=[1, 2], widths=[8, 8], skip_span=1, bn_position="before_conv",
               relu_position="before_add", shortcut="C", stride_on="first", stem="imagenet", stem_width=16,
               groups=2, width_per_group=32, in_channels=1, num_classes=7, input_size=32, zero_init_residual=True,
               stem_type="deep", avg_down=True, attention="se")


def test_changes_cover_every_key():
    assert sorted(CHANGES) == sorted(k for k in field_names() if k != "name")


@pytest.mark.parametrize("key", sorted(CHANGES))
def test_every_differing_key_has_a_column(key):
    a = tiny(block="bottleneck")
    b = a.replace(name="changed", **{key: CHANGES[key]})
    rows = compare_table([a, b])
    assert key in differing_keys([a, b])  # (a basic block also has another default span)
    for columns in (list(to_frame(rows).columns), list(rows[0]), next(csv.reader(io.StringIO(
            to_csv_bytes(rows).decode("utf-8")))), list(json.loads(to_json_bytes(rows))[0])):
        assert key in columns and set(SHOWN_SETTINGS) <= set(columns)
    assert rows[0][key] != rows[1][key]


@pytest.mark.parametrize("key, value", [("stride_on", "first"), ("stem", "cifar")])
def test_resnet50_pairs_show_the_setting_that_differs(key, value):
    r50 = explorer.preset("resnet50")
    rows = compare_table([r50, r50.replace(name="changed", **{key: value})])
    assert key in to_frame(rows).columns
    assert (rows[0][key], rows[1][key]) == (getattr(r50, key), value)
    others = {"stride_on", "stem", "zero_init_residual", "groups"} - {key}
    assert not others & set(rows[0])  # equal settings beyond the usual ones stay out


def test_setting_columns_differing_first_and_default_span_is_the_block_length():
    r18 = explorer.preset("resnet18")
    assert setting_columns([r18]) == list(SHOWN_SETTINGS)
    paper = explorer.preset("resnet18_paper")
    assert setting_columns([r18, paper]) == ["shortcut", "stride_on", "block", "depths", "skip_span",
                                             "bn_position", "relu_position"]  # what differs first
    assert list(compare_table([r18, paper])[0])[:3] == ["name", "shortcut", "stride_on"]
    assert differing_keys([r18, r18.replace(skip_span=2)]) == []  # None is the block's own length


def test_table_rows_come_from_the_views():
    cfgs = [explorer.preset("resnet18"), explorer.preset("resnet50"), explorer.preset("resnet50").replace(
        name="r50_span1", skip_span=1)]
    rows = compare_table(cfgs)
    assert [r["name"] for r in rows] == ["resnet18", "resnet50", "r50_span1"]
    assert len({tuple(r) for r in rows}) == 1  # same keys in every row
    assert rows[0]["params"] == 11_689_512 and rows[1]["params"] == 25_557_032
    assert rows[1]["macs"] == measure_summary(cfgs[1]).macs
    assert (rows[0]["depth"], rows[0]["projections"]) == (18, 3)
    assert rows[2]["projections"] > rows[1]["projections"] and rows[2]["params"] > rows[1]["params"]
    assert rows[0]["receptive_field"] == 435
    assert "median_ms" not in rows[0]
    assert list(to_frame(rows)["name"]) == ["resnet18", "resnet50", "r50_span1"]


def test_table_batch_scales_memory():
    one, eight = compare_table([tiny()], batch=1)[0], compare_table([tiny()], batch=8)[0]
    assert eight["activation_bytes"] == 8 * one["activation_bytes"]


def test_table_with_latency():
    rows = compare_table([tiny(), tiny(name="deeper", depths=[2, 2])],
                         latency=dict(device="cpu", budget_s=0.0, min_samples=3, threads=1, warmup=1))
    for r in rows:
        assert r["p10_ms"] <= r["median_ms"] <= r["p90_ms"]
        assert r["device"] == "cpu" and r["batch"] == 1 and r["throughput"] > 0


def test_timed_rows_carry_the_latency_result_s_own_names():
    """One schema: a timed row's latency figures are named as LatencyResult names them."""
    row = compare_table([tiny()], batch=2, latency=dict(device="cpu", budget_s=0.0, min_samples=3, threads=1,
                                                       warmup=1))[0]
    fields = set(LatencyResult.__dataclass_fields__)
    assert set(LATENCY_COLUMNS) <= fields and set(LATENCY_COLUMNS) <= set(row)
    assert not [k for k in row if k.startswith("latency_")]
    assert row["batch"] == 2  # the latency's batch is the memory figures' batch
    with pytest.raises(ConfigError) as e:
        compare_table([tiny()], batch=2, latency=dict(device="cpu", batch=4))
    assert e.value.key == "batch"


def test_compare_cli_times_for_the_shared_budget():
    import argparse

    from explorer.cli import compare as compare_cli

    parser = argparse.ArgumentParser()
    compare_cli.register(parser.add_subparsers())
    assert parser.parse_args(["compare", "resnet18", "--latency"]).budget == LATENCY_BUDGET_S


def test_app_and_library_bound_the_comparison_alike():
    assert store.MAX_COMPARE == MAX_COMPARE
    compare_table([tiny()] * MAX_COMPARE)
    with pytest.raises(ConfigError, match=f"at most {MAX_COMPARE}"):
        compare_table([tiny()] * (MAX_COMPARE + 1))
    entries = []
    for _ in range(MAX_COMPARE):
        assert store.add_config(entries, tiny()) is None
    assert f"at most {MAX_COMPARE}" in store.add_config(entries, tiny())


@pytest.mark.parametrize("bad", [[], explorer.preset("resnet18"), ["resnet18"], [explorer.preset("resnet18")] * 17])
def test_bad_config_lists(bad):
    with pytest.raises(ConfigError):
        compare_table(bad)


def test_exports_round_trip():
    rows = compare_table([tiny(), tiny(name="b", shortcut="C")])
    table = list(csv.DictReader(io.StringIO(to_csv_bytes(rows).decode("utf-8"))))
    assert [r["name"] for r in table] == ["tiny", "b"]
    assert int(table[1]["params"]) == rows[1]["params"]
    assert json.loads(to_json_bytes(rows)) == rows


def test_bar_figure():
    rows = compare_table([tiny(), tiny(name="tiny")])  # repeated names still get their own bar
    fig = bar_figure(rows, "params")
    assert len(fig.data) == 1 and list(fig.data[0].y) == ["tiny", "tiny #2"]  # names on the y axis
    assert fig.data[0].orientation == "h"
    assert fig.data[0].x[0] == pytest.approx(rows[0]["params"] / 1e6)
    with pytest.raises(ConfigError):
        bar_figure(rows, "colour")
    with pytest.raises(ConfigError):
        bar_figure(rows, "median_ms")  # not measured


def test_bar_text_in_engineering_units_and_names_whole():
    rows = [dict(name="response-long-config-name", macs=2.5712e12), dict(name="b", macs=3.0e8)]
    fig = bar_figure(rows, "macs")
    assert list(fig.data[0].text) == ["2,571", "0.30"]  # G multiply-adds, no "2.57e+03"
    assert not any("e+" in t or "e-" in t for t in fig.data[0].text)
    assert fig.layout.yaxis.automargin and fig.layout.yaxis.tickangle == 0
    assert list(fig.data[0].y) == ["response-long-config-name", "b"]


def test_latency_bar_has_spread_and_device():
    lat = [dict(name="a", median_ms=2.0, p10_ms=1.5, p90_ms=3.0, device_name="CPU X, 1 thread"),
           dict(name="b", median_ms=4.0, p10_ms=3.0, p90_ms=6.0, device_name="CPU X, 1 thread")]
    fig = bar_figure(lat, "median_ms")
    assert list(fig.data[0].error_x.array) == [1.0, 2.0]
    assert list(fig.data[0].error_x.arrayminus) == [0.5, 1.0]
    assert "CPU X" in fig.layout.title.text


def test_sweep_figure_one_line_per_model():
    rows = [dict(name=n, batch=b, median_ms=b * k, p10_ms=b * k * 0.9, p90_ms=b * k * 1.1,
                 throughput=1000 / k, device_name="CPU X") for n, k in (("a", 1.0), ("b", 2.0)) for b in (1, 8)]
    fig = sweep_figure(rows)
    assert len(fig.data) == 4  # latency and throughput per model
    assert list(fig.data[0].x) == [1, 8]
    with pytest.raises(ConfigError):
        sweep_figure([])


def test_sweep_figure_of_a_sweep_result():
    s = batch_sweep(tiny(), device="cpu", batches=(1, 2), budget_s=30, per_batch_s=0.0, min_samples=1, threads=1)
    fig = sweep_figure(s.rows)
    assert list(fig.data[0].x) == [1, 2] and list(fig.data[0].y) == [r.median_ms for r in s.rows]


def test_cli_compare_json(capsys):
    assert main(["compare", "resnet18", "resnet34", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["differing_keys"] == ["depths"]
    assert [r["name"] for r in doc["rows"]] == ["resnet18", "resnet34"]
    for key in ("params", "macs", "depth", "projections", "activation_bytes"):
        assert key in doc["rows"][0]


def test_cli_compare_text_csv_and_latency(tmp_path, capsys):
    path = tmp_path / "tiny.json"
    path.write_text(tiny().to_json())
    assert main(["compare", str(path), "resnet20", "--csv"]) == 0
    assert capsys.readouterr().out.startswith("name,")
    assert main(["compare", str(path), "resnet20", "--set", "num_classes=7"]) == 0
    assert "differs in" in capsys.readouterr().out
    assert main(["compare", str(path), "--latency", "--device", "cpu", "--budget", "0"]) == 0
    assert "latency: batch 1" in capsys.readouterr().out


def test_cli_compare_bad_input_one_line(capsys):
    assert main(["compare", "resnet18", "no_such_net"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: config=") and err.count("\n") == 1


def lat_row(name, median, **settings):
    base = dict(name=name, median_ms=median, p10_ms=median * 0.9, p90_ms=median * 1.1,
                device_name="CPU X, 1 thread", batch=1, dtype="fp32", threads=1, channels_last=False, compile=False)
    return {**base, **settings}


def test_latency_bars_at_different_batches_are_kept_apart():
    fig = bar_figure([lat_row("a", 2.0), lat_row("b", 30.0, batch=8), lat_row("c", 3.0)], "median_ms")
    assert len(fig.data) == 2  # one panel per setting, each with its own axes
    one, eight = fig.data
    assert list(one.y) == ["a", "c"] and list(eight.y) == ["b"]
    assert (one.xaxis, one.yaxis) != (eight.xaxis, eight.yaxis)
    panels = [a.text for a in fig.layout.annotations]
    assert any("batch 1" in p for p in panels) and any("batch 8" in p for p in panels)
    assert "batch" in fig.layout.title.text and "dtype" not in fig.layout.title.text


def test_latency_bars_at_one_setting_share_an_axis_titled_with_it():
    fig = bar_figure([lat_row("a", 2.0, dtype="bf16", threads=2), lat_row("b", 3.0, dtype="bf16", threads=2)],
                     "median_ms")
    assert len(fig.data) == 1 and list(fig.data[0].y) == ["a", "b"]
    title = fig.layout.title.text
    assert all(s in title for s in ("CPU X", "batch 1", "bf16", "2 threads"))


def test_table_latency_bars_group_by_their_settings():
    rows = [dict(name=n, median_ms=m, p10_ms=m, p90_ms=m, device_name="CPU X, 1 thread",
                 batch=b, dtype="fp32", threads=1, throughput=b * 1e3 / m)
            for n, m, b in (("a", 2.0, 1), ("b", 3.0, 1), ("c", 9.0, 4))]
    for metric in ("median_ms", "throughput"):
        fig = bar_figure(rows, metric)
        assert [list(t.y) for t in fig.data] == [["a", "b"], ["c"]]
        assert "batch" in fig.layout.title.text


def test_table_with_latency_records_its_settings():
    row = compare_table([tiny()], latency=dict(device="cpu", budget_s=0.0, min_samples=3, threads=1, warmup=1))[0]
    assert (row["batch"], row["dtype"], row["threads"]) == (1, "fp32", 1)
    assert row["channels_last"] is False and row["compile"] is False
    assert "1 thread" in bar_figure([row], "median_ms").layout.title.text


def test_latency_title_names_the_threads_once():
    fig = bar_figure([lat_row("a", 2.0), lat_row("b", 3.0)], "median_ms")
    assert fig.layout.title.text.count("thread") == 1


# -- the Compare view (AppTest) ------------------------------------------------------------------
APP = str(Path(__file__).resolve().parents[1] / "app.py")


def compare_view(preset: str, changes: dict[str, str]) -> AppTest:
    """The Compare view holding `preset` and the same with each sidebar widget in `changes` set."""
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["preset"] = preset
    at.run()
    at.session_state["view"] = "Compare"
    at.run()
    at.button(key="compare_add").click().run()
    for key, value in changes.items():
        at.selectbox(key=f"cfg_{key}").select(value).run()
    at.button(key="compare_add").click().run()
    return at


def test_compare_view_shows_the_differing_setting_and_measures_all():
    at = compare_view("resnet20", {"stride_on": "first"})
    assert not at.exception
    caption = next(c.value for c in at.caption if c.value.startswith("Highlighted"))
    assert caption.endswith("stride_on")
    assert "stride_on" in list(at.dataframe[0].value["setting"])  # the comparison table: a row per setting
    at.selectbox(key="lat_threads").select(1).run()
    at.button(key="compare_measure_all").click().run()
    assert not at.exception and not at.error
    results = at.session_state["latency_results"]
    settings = store.LatencySettings(device="cpu", batch=1, dtype="fp32", channels_last=False, compile=False,
                                     threads=1)
    cfgs = store.configs_of(at.session_state["compare"])
    assert all(store.latency_key(c, settings) in results for c in cfgs)
    assert all(isinstance(r, LatencyResult) and r.budget_s == LATENCY_BUDGET_S for r in results.values())
    assert any(s.value.startswith(r"Measured **resnet20**, **resnet20 \(stride\_on first\)** in") for s in at.success)
    assert "compare_chart_latency" in [c.key for c in at.get("plotly_chart")]
    at.button(key="compare_measure_all").click().run()  # the same settings again: nothing is timed
    assert not any("Measured" in s.value for s in at.success)
    assert any(i.value.startswith("Reused the earlier measurements of **resnet20**") for i in at.info)
    assert at.session_state["latency_results"] == results


def test_measure_all_over_the_limits_says_why(monkeypatch):
    at = compare_view("resnet20", {"stride_on": "first"})
    at.selectbox(key="lat_threads").select(1).run()
    monkeypatch.setenv("RESNET_EXPLORER_MAX_MACS", "1000")
    at.button(key="compare_measure_all").click().run()
    assert not at.exception
    errors = [e.value.replace("\\", "") for e in at.error if "was not measured" in e.value]  # shown as text: escaped
    assert len(errors) == 2 and all("input_size" in e and "This server sets the limit" in e for e in errors)
    assert not any("RESNET_EXPLORER" in e for e in errors)  # the command line names the variable, not the page
    assert not at.session_state["latency_results"]
