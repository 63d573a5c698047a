"""Timed runs kept in the run store: `latency` (plain, sweep, profile) and `compare --latency` record
each measurement as the app does; a kept run reads back as the result it was; the Latency view
shows a kept result after a reload, and Compare lists latency per device, imported runs included."""
import csv
import io
import json
from dataclasses import replace

import pytest
from streamlit.testing.v1 import AppTest

import explorer
from explorer import ArchConfig, ConfigError
from explorer.errors import LatencyError
from explorer.__main__ import main
from explorer.compare import LATENCY_COLUMNS, compare_table, to_csv_bytes, to_json_bytes, with_latency
from explorer.runs import Keeper, RunStore
from explorer.runs.timing_runs import (
    kept_measurement, latest_per_device, result_of, run_settings, stored_result, timing_record, when_where,
)
from explorer.timing import (
    LatencyResult, MeasurementCancelled, ProfileResult, SweepResult, default_threads, measure_latency,
)

from test_app import APP, show

GPU = "CUDA: NVIDIA H100 80GB HBM3"


def tiny(**kw) -> ArchConfig:
    base = dict(name="tiny", stem="cifar", stem_width=8, widths=[8, 16], depths=[1, 1], input_size=16,
                num_classes=10)
    return ArchConfig.from_dict({**base, **kw})


@pytest.fixture
def tiny_file(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(tiny().to_json())
    return str(path)


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "runs.sqlite"


def latency_cli(tiny_file, *more):
    return main(["latency", tiny_file, "--device", "cpu", "--threads", "1", *more])


def cpu_result(cfg=None) -> LatencyResult:
    return measure_latency(cfg or tiny(), device="cpu", threads=1, budget_s=0.0, min_samples=3, warmup=1)


def on_gpu(r: LatencyResult, median_ms=0.25) -> LatencyResult:
    """A real CPU measurement relabelled as one made on a GPU machine (as an imported run reads)."""
    return replace(r, device="cuda", device_name=GPU, median_ms=median_ms, p10_ms=0.8 * median_ms,
                   p90_ms=1.2 * median_ms, throughput=r.batch * 1e3 / median_ms, threads=8)


# -- the command line ------------------------------------------------------------------------------
def test_cli_latency_keeps_one_run_whose_result_is_the_printed_json(tiny_file, store_path, capsys):
    assert latency_cli(tiny_file, "--batch", "2", "--budget", "0", "--json", "--store", str(store_path)) == 0
    doc = json.loads(capsys.readouterr().out)
    [record] = RunStore(store_path).list()
    assert record.kind == "latency" and record.status == "complete" and not record.message
    assert record.result == {k: v for k, v in doc.items() if k != "config"}
    assert record.config == doc["config"] and record.network == tiny().arch_key() and record.name == "tiny"
    assert record.device == doc["device_name"]
    assert record.settings == dict(device="cpu", batch=2, dtype="fp32", channels_last=False, compile=False,
                                   threads=1, budget_s=0.0)
    assert result_of(record) == LatencyResult.from_dict(doc)
    assert record.ended is not None and record.started <= record.ended


def test_cli_resolves_torch_s_default_thread_count_in_the_settings(tiny_file, store_path, capsys):
    assert main(["latency", tiny_file, "--device", "cpu", "--budget", "0", "--store", str(store_path)]) == 0
    [record] = RunStore(store_path).list()
    assert record.settings["threads"] == default_threads() == record.result["threads"]


def test_no_store_and_store_off_keep_nothing(tiny_file, tmp_path, monkeypatch, capsys):
    env_store = tmp_path / "env.sqlite"
    monkeypatch.setenv("RESNET_EXPLORER_STORE", str(env_store))
    assert latency_cli(tiny_file, "--budget", "0", "--no-store") == 0
    assert not env_store.exists()
    monkeypatch.setenv("RESNET_EXPLORER_STORE", "off")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert latency_cli(tiny_file, "--budget", "0") == 0
    assert main(["compare", tiny_file, "--latency", "--device", "cpu", "--budget", "0"]) == 0
    assert not (tmp_path / "data").exists() and not env_store.exists()
    assert "warning" not in capsys.readouterr().err


def test_a_broken_store_is_one_warning_and_the_command_succeeds(tiny_file, tmp_path, capsys):
    broken = tmp_path / "notes.txt"
    broken.write_text("not a database\n")
    assert latency_cli(tiny_file, "--budget", "0", "--json", "--store", str(broken)) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["median_ms"] > 0
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ") and lines[0].endswith("; the run was not kept")
    assert str(broken) in lines[0]
    assert broken.read_text() == "not a database\n"
    # a comparison of two configs still says it once
    assert main(["compare", tiny_file, tiny_file, "--latency", "--device", "cpu", "--budget", "0",
                 "--store", str(broken)]) == 0
    assert capsys.readouterr().err.count("warning: ") == 1
    assert broken.read_text() == "not a database\n"


def test_cli_sweep_and_profile_are_kept(tiny_file, store_path, capsys):
    assert latency_cli(tiny_file, "--sweep", "--budget", "0.3", "--json", "--store", str(store_path)) == 0
    sweep_doc = json.loads(capsys.readouterr().out)
    assert latency_cli(tiny_file, "--profile", "--budget", "0.3", "--json", "--store", str(store_path)) == 0
    profile_doc = json.loads(capsys.readouterr().out)
    profile, sweep = RunStore(store_path).list()  # newest first
    assert sweep.kind == "sweep" and sweep.result == {k: v for k, v in sweep_doc.items() if k != "config"}
    assert sweep.settings["batch"] is None and sweep.settings["compile"] is False
    assert sweep.settings["budget_s"] == 0.3 and sweep.status in ("complete", "cancelled")
    assert isinstance(result_of(sweep), SweepResult) and result_of(sweep) == SweepResult.from_dict(sweep_doc)
    assert profile.kind == "profile" and profile.result == {k: v for k, v in profile_doc.items() if k != "config"}
    assert isinstance(result_of(profile), ProfileResult) and profile.settings["batch"] == 1
    assert profile.device == profile_doc["device_name"]


def test_cli_compare_latency_keeps_one_run_per_config(tiny_file, store_path, capsys):
    other = tiny_file.replace("tiny.json", "wide.json")
    with open(other, "w") as f:
        f.write(tiny(name="wide", widths=[16, 32]).to_json())
    assert main(["compare", tiny_file, other, "--latency", "--device", "cpu", "--budget", "0", "--json",
                 "--store", str(store_path)]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    records = sorted(RunStore(store_path).list(), key=lambda r: r.name)
    assert [r.kind for r in records] == ["compare", "compare"] and [r.name for r in records] == ["tiny", "wide"]
    for row, record in zip(sorted(rows, key=lambda r: r["name"]), records):
        assert {k: record.result[k] for k in LATENCY_COLUMNS} == {k: row[k] for k in LATENCY_COLUMNS}
        assert record.settings["device"] == "cpu" and record.settings["batch"] == 1
    assert records[0].network != records[1].network


# -- keeping a measurement as it ends ---------------------------------------------------------------
@pytest.mark.parametrize("stop", [MeasurementCancelled("stop"), KeyboardInterrupt()])
def test_a_stopped_measurement_is_kept_as_cancelled(store_path, stop):
    keeper = Keeper(RunStore(store_path))

    def work(progress):
        progress(0.3)
        raise stop
    with pytest.raises(type(stop)):
        kept_measurement(keeper, "latency", tiny(), run_settings("latency", {"device": "cpu"}), work)
    [record] = RunStore(store_path).list()
    assert record.status == "cancelled" and record.result is None and record.device.startswith("CPU (")


def test_a_failed_measurement_is_kept_with_its_line_and_a_refused_setting_is_no_run(store_path):
    keeper = Keeper(RunStore(store_path))
    settings = run_settings("latency", {"device": "cpu"})

    def fails(progress):
        progress(0.1)
        raise LatencyError("tiny: the forward pass failed: boom")

    def refused(progress):
        raise ConfigError("batch", 0, "an integer from 1")
    with pytest.raises(LatencyError):
        kept_measurement(keeper, "latency", tiny(), settings, fails)
    with pytest.raises(ConfigError):
        kept_measurement(keeper, "latency", tiny(), settings, refused)
    [record] = RunStore(store_path).list()
    assert record.status == "failed" and record.message == "tiny: the forward pass failed: boom"


def test_the_app_s_stop_exceptions_are_cancellations_too(store_path):
    class Rerun(BaseException):
        pass

    def work(progress):
        progress(0.5)
        raise Rerun()
    with pytest.raises(Rerun):
        kept_measurement(Keeper(RunStore(store_path)), "compare", tiny(), run_settings("compare", {}), work,
                         stops=(Rerun,))
    assert [r.status for r in RunStore(store_path).list()] == ["cancelled"]


# -- reading kept runs back ---------------------------------------------------------------------
def test_a_kept_latency_is_found_for_its_device_and_settings_only():
    r = cpu_result()
    settings = run_settings("latency", dict(device="cpu", threads=1, budget_s=0.0))
    older = timing_record("compare", tiny(), settings, replace(r, median_ms=9.0), started="2026-01-01T00:00:00Z")
    newer = timing_record("latency", tiny(), settings, r, started="2026-01-02T00:00:00Z")
    gpu = timing_record("latency", tiny(), {**settings, "device": "cuda", "threads": 8}, on_gpu(r))
    records = [gpu, newer, older]
    found, record = stored_result(records, "latency", settings, r.device_name)
    assert found == r and record is newer and isinstance(found, LatencyResult)
    assert stored_result([older], "latency", settings, r.device_name)[0].median_ms == 9.0  # Compare's count too
    assert stored_result(records, "latency", {**settings, "batch": 2}, r.device_name) is None
    assert stored_result(records, "sweep", settings, r.device_name) is None
    assert stored_result(records, "latency", {**settings, "threads": 8}, GPU)[0].device_name == GPU
    assert [x.device_name for x, _ in latest_per_device(records)] == [GPU, r.device_name]
    assert when_where(older) == f"measured 2026-01-01 00:00 UTC on host {older.host}"


def test_compare_downloads_carry_the_latency_of_every_measurement():
    a, b = tiny(), tiny(name="wide", widths=[16, 32])
    rows = compare_table([a, b])
    cpu = cpu_result(a)
    gpu = on_gpu(replace(cpu, batch=2, requested_batch=2))
    full = with_latency([a, b], rows, {0: [cpu, gpu]})
    assert [r["name"] for r in full] == ["tiny", "tiny", "wide"]
    assert full[0]["median_ms"] == cpu.median_ms and full[1]["device_name"] == GPU
    assert full[1] == {**compare_table([a, b], batch=2)[0], **{k: getattr(gpu, k) for k in LATENCY_COLUMNS}}
    assert "median_ms" not in full[2]
    table = list(csv.DictReader(io.StringIO(to_csv_bytes(full).decode("utf-8"))))
    assert [t["device_name"] for t in table] == [cpu.device_name, GPU, ""]
    assert float(table[1]["median_ms"]) == gpu.median_ms
    assert json.loads(to_json_bytes(full))[0]["throughput"] == cpu.throughput


# -- the app ----------------------------------------------------------------------------------------
def latency_view(preset="resnet20"):
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["preset"] = preset
    at.run()
    at = show(at, "Latency")
    at.selectbox(key="lat_threads").select(1).run()
    return at


def test_a_latency_measured_in_the_app_is_shown_again_after_a_reload(tmp_path, monkeypatch):
    from explorer.app import measuring

    store_path = tmp_path / "app.sqlite"
    monkeypatch.setenv("RESNET_EXPLORER_STORE", str(store_path))
    monkeypatch.setattr(measuring, "LATENCY_BUDGET_S", 0.3)
    at = latency_view()
    at.button(key="lat_run").click().run()
    assert not at.exception
    [record] = RunStore(store_path).list()
    assert record.kind == "latency" and record.name == "resnet20" and record.settings["threads"] == 1
    assert record.settings["budget_s"] == 0.3 and record.settings["device"] == "cpu"
    median = next(m.value for m in at.metric if m.label == "Median")
    assert not [c for c in at.caption if "Kept from an earlier session" in c.value]

    again = latency_view()  # a new session: nothing in memory
    assert not again.exception
    assert next(m.value for m in again.metric if m.label == "Median") == median
    note = next(c.value for c in again.caption if "Kept from an earlier session" in c.value)
    assert f"measured {record.started[:10]} " in note and f"UTC on host {record.host}" in note
    assert "Download the latency (JSON)" in [b.label for b in again.get("download_button")]
    # other settings have no kept result
    again.selectbox(key="lat_dtype").select("bf16").run()
    assert not [m for m in again.metric if m.label == "Median"]
    # the session's own fresh measurement wins over the kept one
    again.selectbox(key="lat_dtype").select("fp32").run()
    again.button(key="lat_run").click().run()
    assert not [c for c in again.caption if "Kept from an earlier session" in c.value]
    assert len(RunStore(store_path).list()) == 2


def test_compare_lists_a_kept_gpu_run_beside_this_machine_s_cpu_figure(tmp_path, monkeypatch):
    from explorer.app import measuring

    store_path = tmp_path / "app.sqlite"
    monkeypatch.setenv("RESNET_EXPLORER_STORE", str(store_path))
    monkeypatch.setattr(measuring, "LATENCY_BUDGET_S", 0.3)
    cfg = explorer.preset("resnet20")
    gpu = on_gpu(cpu_result(cfg))
    imported = timing_record("latency", cfg.replace(name="r20 on the box"),
                             run_settings("latency", dict(device="cuda", threads=8, budget_s=3.0)), gpu)
    RunStore(store_path).add(imported)
    at = latency_view()
    at = show(at, "Compare")
    at.button(key="compare_add").click().run()
    at.button(key="compare_measure_all").click().run()
    assert not at.exception and not at.error
    kept = [r for r in RunStore(store_path).list() if r.id != imported.id]
    assert [r.kind for r in kept] == ["compare"] and kept[0].device.startswith("CPU (")
    table = next(t.value.reset_index() for t in at.table if "measured" in t.value.columns)
    assert list(table["config"]) == ["resnet20", "resnet20"]  # under the name it has here
    assert list(table["device"]) == [kept[0].device, GPU]
    assert list(table["measured"]) == ["in this session", when_where(imported)]
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith("compare_chart_latency"))
    titles = [a["text"] for a in json.loads(chart.proto.spec)["layout"]["annotations"]]
    assert any(t.startswith(GPU) for t in titles) and any(t.startswith("CPU (") for t in titles)


def test_a_broken_store_is_said_once_and_the_latency_view_goes_on(tmp_path, monkeypatch):
    from explorer.app import measuring

    broken = tmp_path / "notes.txt"
    broken.write_text("not a database\n")
    monkeypatch.setenv("RESNET_EXPLORER_STORE", str(broken))
    monkeypatch.setattr(measuring, "LATENCY_BUDGET_S", 0.3)
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["preset"] = "resnet20"
    at = show(at.run(), "Latency")  # reading kept results finds the store unusable
    [notice] = [w.value for w in at.warning if w.value.startswith("Runs are not being kept")]
    assert "not a run store" in notice
    at.selectbox(key="lat_threads").select(1).run()
    at.button(key="lat_run").click().run()
    assert not at.exception and not at.error
    assert [m.label for m in at.metric][:1] == ["Median"]
    assert not [w for w in at.warning if w.value.startswith("Runs are not being kept")]  # once per session
    assert broken.read_text() == "not a database\n"
