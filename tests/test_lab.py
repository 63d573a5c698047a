"""Trainability lab: tiny real training runs on the digits (CPU, a few hundred images)."""
from __future__ import annotations

import ast
import csv
import dataclasses
import io
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import typing
from pathlib import Path

import pytest
import torch

import explorer.lab as lab
from explorer import ArchConfig, ConfigError, build_model, preset
from explorer.__main__ import main
from explorer.arch.builder import ResidualUnit
from explorer.arch.plan import effective_span
from explorer.lab import estimate, gradients, training
from explorer.limits import ServerLimits

TINY = preset("resnet20").replace(name="tiny", depths=[1, 1, 1], widths=[8, 8, 16], stem_width=8)
FAST = dict(epochs=1, max_train=200, batch_size=50)


def fit(cfg, hooks: lab.RunHooks | None = None, **settings) -> lab.RunResult:
    """`lab.train` with these TrainSettings."""
    return lab.train(cfg, lab.TrainSettings(**settings), hooks)


_threads = training.torch_threads  # `n` torch threads in this test process for a while (nothing measures meanwhile)


def _unit_names(cfg: ArchConfig) -> list[str]:
    model = build_model(lab.lab_config(cfg))
    return [n for n, m in model.named_modules() if isinstance(m, ResidualUnit)]


@pytest.fixture(scope="module")
def tiny_run() -> lab.RunResult:
    return fit(TINY, **FAST)


# -- data --------------------------------------------------------------------------------------
def test_digits_split_is_fixed_stratified_and_normalised():
    data = lab.load_digits()
    assert len(data.x_train) + len(data.x_val) == 1797
    assert data.x_train.shape[1:] == (1, 8, 8) and data.x_val.shape[1:] == (1, 8, 8)
    for label in range(10):
        n_val, n_all = int((data.y_val == label).sum()), int((data.y_train == label).sum()) + int((data.y_val == label).sum())
        assert n_val == round(n_all * lab.VAL_FRACTION)
    assert abs(data.x_train.mean().item()) < 1e-4
    assert data.x_train.std().item() == pytest.approx(1.0, abs=1e-4)
    # train and validation together are the whole set, each image once
    from sklearn.datasets import load_digits

    raw = torch.tensor(load_digits().images, dtype=torch.float32).flatten(1) / 16.0
    restored = (torch.cat([data.x_train, data.x_val]) * data.std + data.mean).flatten(1)
    key = lambda x: torch.sort(x @ torch.arange(64, dtype=torch.float32)).values  # noqa: E731
    assert torch.allclose(key(restored), key(raw), atol=1e-2)


def test_lab_config_fits_the_data_and_keeps_the_architecture():
    cfg = lab.lab_config(preset("resnet50"))
    assert (cfg.stem, cfg.in_channels, cfg.input_size, cfg.num_classes) == ("cifar", 1, 8, 10)
    assert (cfg.block, cfg.depths, cfg.widths) == ("bottleneck", (3, 4, 6, 3), (64, 128, 256, 512))


# -- one run -----------------------------------------------------------------------------------
def test_run_records_history_and_one_grad_norm_per_unit(tiny_run):
    r = tiny_run
    assert r.n_train == 200 and r.n_val == len(lab.load_digits().x_val)
    assert [row.epoch for row in r.history] == [1]
    row = r.history[0]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "seconds", "elapsed"):
        assert math.isfinite(getattr(row, key))
    assert 0 <= row.train_acc <= 1 and 0 <= row.val_acc <= 1
    assert not r.cancelled and not r.diverged and r.status == "complete"
    assert [g.unit for g in r.grad_norms] == _unit_names(TINY)
    assert all(g.grad_norm > 0 and g.output_grad_norm > 0 for g in r.grad_norms)
    assert [g.layer for g in r.grad_norms] == [3, 5, 7]  # stem conv, then 2 convs a unit


def test_plain_net_reports_its_blocks_as_units():
    cfg = TINY.replace(name="plain", depths=[2, 1, 1], skip_span=0)
    r = fit(cfg, epochs=1, max_train=100, batch_size=50)
    assert [g.unit for g in r.grad_norms] == _unit_names(cfg) == ["layer1.0", "layer1.1", "layer2.0", "layer3.0"]
    assert not any(g.residual for g in r.grad_norms)


def test_skip_span_one_gives_a_grad_norm_per_layer():
    cfg = TINY.replace(name="span1", skip_span=1)
    r = fit(cfg, epochs=1, max_train=100, batch_size=50)
    assert len(r.grad_norms) == 6 == len(_unit_names(cfg))


def test_same_seed_same_losses_other_seed_other_losses(tiny_run):
    again = fit(TINY, **FAST)
    assert [h.train_loss for h in again.history] == [h.train_loss for h in tiny_run.history]
    assert [h.val_acc for h in again.history] == [h.val_acc for h in tiny_run.history]
    assert [g.grad_norm for g in again.grad_norms] == [g.grad_norm for g in tiny_run.grad_norms]
    other = fit(TINY, seed=1, **FAST)
    assert other.history[0].train_loss != tiny_run.history[0].train_loss


def test_training_leaves_global_torch_state_alone():
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fit(TINY, epochs=1, max_train=60, batch_size=30)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_lab_models_are_the_builders_models(monkeypatch):
    built = []

    def spy(cfg):
        model = build_model(cfg)
        built.append((cfg, model))
        return model

    monkeypatch.setattr(training, "build_model", spy)
    cfg = TINY.replace(bn_position="before_conv", relu_position="before_conv")
    r = fit(cfg, epochs=1, max_train=60, batch_size=30)
    assert len(built) == 1
    used_cfg, model = built[0]
    assert used_cfg == lab.lab_config(cfg) == r.config
    reference = build_model(lab.lab_config(cfg))
    assert type(model) is type(reference)
    assert list(model.state_dict()) == list(reference.state_dict())
    assert r.params == sum(p.numel() for p in reference.parameters())


def test_adam_and_constant_schedule_train():
    s = lab.TrainSettings(epochs=2, optimizer="adam", schedule="constant", max_train=60, batch_size=30)
    r = lab.train(TINY, s)
    assert [h.lr for h in r.history] == [1e-3, 1e-3]
    assert all(math.isfinite(h.train_loss) for h in r.history)


def test_step_schedule_divides_by_ten_at_half_and_three_quarters():
    s = lab.TrainSettings(epochs=8)
    assert [s.lr_at(e) for e in range(1, 9)] == pytest.approx([0.1] * 4 + [0.01] * 2 + [0.001] * 2)


def test_cancel_mid_run_keeps_finished_epochs():
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3  # 2 batches an epoch: stops in the second epoch

    r = fit(TINY, lab.RunHooks(should_stop=stop), epochs=3, max_train=100, batch_size=50)
    assert r.cancelled and r.status == "cancelled"
    assert [h.epoch for h in r.history] == [1]


@pytest.mark.parametrize("kwargs, key", [
    (dict(epochs=0), "epochs"),
    (dict(epochs=1.5), "epochs"),
    (dict(optimizer="rmsprop"), "optimizer"),
    (dict(batch_size=1), "batch_size"),
    (dict(lr=-0.1), "lr"),
    (dict(lr=float("nan")), "lr"),
    (dict(max_train=0), "max_train"),
    (dict(seed=-1), "seed"),
])
def test_bad_settings_raise_config_error(kwargs, key):
    with pytest.raises(ConfigError) as info:
        fit(TINY, **kwargs)
    assert info.value.key == key
    with pytest.raises(ConfigError) as info:
        lab.run_experiment([TINY], seeds=1, **kwargs)
    assert info.value.key == key


def test_bad_configs_raise_config_error():
    with pytest.raises(ConfigError) as info:
        lab.train({"name": "x"})
    assert info.value.key == "config"
    # five stages halve 8x8 to 1x1 before the last stage can downsample
    with pytest.raises(ConfigError) as info:
        fit(TINY.replace(depths=[1] * 5, widths=[8] * 5), **FAST)
    assert info.value.key == "input_size"


# -- experiments -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [n for n in lab.EXPERIMENTS if n != "custom"])
def test_ready_experiments_are_well_formed(name, monkeypatch):
    from explorer.facts.summary import measure_summary

    exp = lab.EXPERIMENTS[name]
    assert exp.configs and exp.claim and exp.source
    assert len({c.name for c in exp.configs}) == len(exp.configs)
    for cfg in exp.configs:
        assert lab.lab_config(cfg) == cfg  # already sized for the digits
        assert not any("instead of" in w for w in measure_summary(cfg).warnings)  # no short units
    assert exp.expected_seconds is not None and exp.expected_seconds > 0
    # At the default seeds the app's Start button is enabled on the reference machine: the time
    # model at its rates keeps every ready experiment inside the server's default time limit.
    monkeypatch.setattr(estimate, "calibrate", lambda threads=1: lab.REFERENCE)
    default_limit = ServerLimits().max_lab_seconds
    assert lab.estimate_seconds(name) < default_limit
    # ... and within the limit it gets: `max_lab_seconds` bounds the epochs the app can ask for
    assert lab.estimate_seconds(name, epochs=lab.MAX_EPOCHS) > default_limit


def test_experiments_vary_what_they_claim_to():
    from explorer.facts.summary import measure_summary

    deg = lab.EXPERIMENTS["degradation"].configs
    assert sorted((measure_summary(c).depth, effective_span(c)) for c in deg) == [(20, 0), (20, 2), (56, 0), (56, 2)]
    spans = lab.EXPERIMENTS["skip_span"].configs
    assert [effective_span(c) for c in spans] == [0, 1, 2, 3]
    assert len({measure_summary(c).depth for c in spans}) == 1
    assert len({c.replace(name="x", skip_span=None) for c in spans}) == 1
    units = lab.EXPERIMENTS["units"].configs
    assert [(c.bn_position, c.relu_position) for c in units] == [
        ("after_conv", "after_add"), ("after_add", "after_add"), ("after_conv", "before_add"),
        ("after_conv", "before_conv"), ("before_conv", "before_conv"),
    ]
    assert len({c.replace(name="x", bn_position="none", relu_position="after_add") for c in units}) == 1


def test_run_experiment_on_a_config_list():
    cfgs = [TINY, TINY.replace(skip_span=0)]  # same name twice: told apart by a suffix
    events, updates = [], []
    res = lab.run_experiment(cfgs, epochs=1, max_train=60, batch_size=30, seeds=1,
                             progress=lambda *a: events.append(a),
                             on_update=lambda r: updates.append(len(r.runs)))
    assert res.experiment == "custom" and not res.cancelled
    assert [r["run"] for r in res.to_rows()] == ["tiny", "tiny (2)"]
    assert events == [(0, 2, 0, "tiny"), (0, 2, 1, "tiny"), (1, 2, 0, "tiny (2)"),
                      (1, 2, 1, "tiny (2)"), (2, 2, 1, "tiny (2)")]
    assert updates == [1, 1, 2, 2, 2]
    assert {r["run"] for r in res.history_rows()} == {"tiny", "tiny (2)"}
    assert len(res.grad_norm_rows()) == 3 + 3

    doc = json.loads(res.to_json_bytes())
    assert doc["results"] == json.loads(json.dumps(res.to_rows()))
    assert ArchConfig.from_dict(doc["runs"][1]["config"]) == res.runs[1].config
    rows = list(csv.DictReader(io.StringIO(res.to_csv_bytes().decode())))
    assert [r["run"] for r in rows] == ["tiny", "tiny (2)"]
    hist = list(csv.DictReader(io.StringIO(res.to_csv_bytes("history").decode())))
    assert len(hist) == 2 and "val_acc" in hist[0]
    with pytest.raises(ConfigError):
        res.to_csv_bytes("nope")


def test_run_experiment_cancel_between_runs():
    seen = []
    res = lab.run_experiment([TINY, TINY.replace(name="b"), TINY.replace(name="c")], epochs=1,
                             max_train=60, batch_size=30, seeds=1,
                             progress=lambda done, total, epoch, name: seen.append(done),
                             should_stop=lambda: bool(seen) and seen[-1] >= 1)
    assert res.cancelled and res.total_runs == 3
    assert [r.name for r in res.runs] == ["tiny", "b"]
    assert res.runs[0].history and not res.runs[1].history and res.runs[1].cancelled


THREE = [TINY, TINY.replace(name="b"), TINY.replace(name="c")]


def test_cancel_in_the_second_run_keeps_its_true_numbers():
    """Cancel in epoch 2 of the second of three runs, two batches in (of five): that run keeps its
    one finished epoch, its wall time and the share of epoch 2 done, and is the only one marked
    cancelled; the third is listed as not run; the message says both."""
    armed, polls, heard = [False], [0], {}

    def progress(done, total, epoch, name):
        heard[(name, epoch)] = time.perf_counter()
        armed[0] = armed[0] or (name == "b" and epoch == 1)

    def should_stop() -> bool:
        polls[0] += armed[0]
        return polls[0] > 2

    res = lab.run_experiment(THREE, epochs=3, max_train=100, batch_size=20, seeds=1, progress=progress,
                             should_stop=should_stop)
    ended = time.perf_counter()
    first, cut = res.runs
    assert res.cancelled and not res.timed_out and [r.name for r in res.runs] == ["tiny", "b"]
    assert not first.cancelled and len(first.history) == 3 and first.seconds > 0
    assert cut.cancelled and len(cut.history) == 1 and cut.epoch_fraction == pytest.approx(0.4)
    # its true wall time: more than its finished epoch took, less than the time since the first run
    # ended (give or take the half millisecond of rounding its seconds to the ms)
    assert cut.history[-1].elapsed < cut.seconds < ended - heard[("tiny", 3)] + 0.0005
    assert res.cut_short() == [cut] and res.not_run() == [("c", 0)]
    rows = {r["run"]: r for r in res.to_rows()}
    assert set(rows) == {"tiny", "b"}
    assert rows["b"]["cancelled"] and rows["b"]["epochs"] == 1 and rows["b"]["seconds"] == round(cut.seconds, 2) > 0
    assert not rows["tiny"]["cancelled"] and rows["tiny"]["epochs"] == 3
    message = res.stop_message()
    assert message.startswith("Cancelled after ")
    assert "b ran " in message and "stopped 40 % into epoch 2 of 3 (1 finished epoch kept)" in message
    assert message.endswith("; c did not run.") and "tiny" not in message
    # one epoch of b against three of tiny: no verdict
    assert all(v.better is None and v.cut_short == ("b",) for v in res.conclusions())
    assert res.conclusion_lines()[0].startswith("tiny vs b — training loss: not judged, b was cut short (")
    doc = json.loads(res.to_json_bytes())
    assert doc["not_run"] == [{"run": "c", "seed": 0}] and doc["stop_message"] == message
    assert doc["runs"][1]["per_seed"][0]["epoch_fraction"] == pytest.approx(0.4)


class _Rerun(Exception):
    """Stands for the app's rerun: Streamlit raises inside a callback of the run."""


@pytest.mark.parametrize("seeds", [1, 2])
def test_an_exception_from_a_callback_keeps_the_runs_cut_short(seeds):
    """The app's Cancel reruns the page, which raises in `on_update`: the result `on_end`
    receives still has each interrupted run's true epochs, time and `cancelled` (in this process
    and from worker processes), and lists the runs that never started."""
    ended: list[lab.LabResult] = []

    def on_update(partial):
        assert partial.status == "running"
        if any(r.name == "b" and r.history for r in partial.runs):
            raise _Rerun()

    t0 = time.perf_counter()
    with pytest.raises(_Rerun):
        lab.run_experiment(THREE, epochs=3, max_train=100, batch_size=20, seeds=seeds, on_update=on_update,
                           on_end=ended.append)
    elapsed = round(time.perf_counter() - t0, 3)  # the result's times are to the millisecond
    [res] = ended
    assert res.cancelled and res.status == "cancelled" and 0 < res.seconds <= elapsed
    for r in res.runs:
        complete = len(r.history) == 3
        assert r.cancelled != complete and r.seconds > 0 and r.summary_row()["epochs"] == len(r.history)
        assert r.status == ("complete" if complete else "cancelled") and r.seconds <= elapsed
    b = [r for r in res.runs if r.name == "b"]
    assert b and all(r.cancelled for r in b) and any(r.history for r in b)
    assert len(res.runs) + len(res.not_run()) == 3 * seeds
    assert ("c", 0) in res.not_run()
    assert "c did not run" in res.stop_message()
    assert all(row["cancelled"] and row["seconds"] > 0 for row in res.to_rows() if row["run"] == "b")


def test_durations_read_in_minutes_past_one():
    from explorer.labels import fmt_duration

    assert [fmt_duration(s) for s in (0.5, 38.24, 59.4, 90, 3599, 3725)] == [
        "0.50 s", "38.2 s", "59.4 s", "1 m 30 s", "59 m 59 s", "1 h 02 m"]


def test_run_experiment_bad_inputs():
    with pytest.raises(ConfigError) as info:
        lab.run_experiment("nope")
    assert info.value.key == "experiment"
    with pytest.raises(ConfigError) as info:
        lab.run_experiment("custom")
    assert info.value.key == "configs"
    with pytest.raises(ConfigError) as info:
        lab.run_experiment("units", epochs=-1)
    assert info.value.key == "epochs"
    with pytest.raises(ConfigError) as info:
        lab.run_experiment([TINY, "resnet20"])
    assert info.value.key == "experiment"


def test_nan_results_export_as_null():
    epoch = lab.EpochRecord("tiny", 0, 1, 0.1, float("nan"), 0.1, float("inf"), 0.1, seconds=0.1, elapsed=0.1)
    run = lab.RunResult(TINY, lab.TrainSettings(), 1, 1, 1, 1, history=(epoch,), status="diverged")
    res = lab.LabResult("x", "x", lab.TrainSettings(), runs=(run,))
    doc = json.loads(res.to_json_bytes())  # strict JSON: would fail on NaN
    assert doc["runs"][0]["per_seed"][0]["history"][0]["train_loss"] is None
    assert doc["runs"][0]["mean"]["train_loss"] is None and doc["results"][0]["train_loss"] is None
    back = lab.LabResult.from_dict(doc)  # the non-finite numbers come back as missing ones
    assert back.runs[0].history[0].train_loss is None and back.runs[0].diverged


def test_estimate_grows_with_epochs_and_model_size():
    small = lab.estimate_seconds([TINY], epochs=1)
    assert small < lab.estimate_seconds([TINY], epochs=4)
    assert small < lab.estimate_seconds([preset("resnet56")], epochs=1)


def test_estimate_scales_with_this_machines_calibration(monkeypatch):
    cal = lab.calibrate()
    assert cal.measured and cal.seconds_per_mac > 0 and cal.seconds_per_layer_step > 0
    assert lab.calibrate() is cal  # measured once per process
    here = lab.estimate_time("degradation", epochs=2)
    assert here.calibrated and "guess" not in here.label
    slower = dataclasses.replace(cal, **{f: 10 * getattr(cal, f) for f in (
        "seconds_per_mac", "seconds_per_layer_step", "seconds_per_layer_build")})
    monkeypatch.setattr(estimate, "calibrate", lambda threads=1: slower)
    assert lab.estimate_seconds("degradation", epochs=2) == pytest.approx(10 * here.seconds)


def test_estimate_without_a_calibration_is_labelled_a_guess(monkeypatch):
    from explorer.timing import exclusive_measurement

    monkeypatch.setattr(estimate, "_calibration", {})  # as in a fresh process
    monkeypatch.setattr(estimate, "_busy", {})
    monkeypatch.setattr(estimate, "CALIBRATION_WAIT_S", 0.05)
    out: list = []
    with exclusive_measurement():  # another thread is timing: the calibration may not run
        asker = threading.Thread(target=lambda: out.append((lab.calibrate(), lab.estimate_time([TINY], epochs=1))))
        asker.start()
        asker.join(timeout=60)
    [(cal, guess)] = out
    assert cal == lab.REFERENCE and not cal.measured
    assert not guess.calibrated and "guess" in guess.label
    assert estimate._calibration == {}  # tried again next time
    assert lab.calibrate().measured


def pin_threads(cpus: set[int]) -> None:
    """Set the CPU affinity of every thread of this process (threads started later inherit it
    from the thread that starts them)."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:  # the thread has ended
            pass


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs per-thread CPU affinity (Linux)")
def test_a_calibration_on_a_busy_machine_is_not_kept(monkeypatch):
    """One busy-loop process shares one core with this process (both pinned to it, so the test
    loads one core whatever the machine's size) and takes half of it while the calibration runs:
    the estimate says the machine is busy, and the rates are measured again once it is free."""
    monkeypatch.setattr(estimate, "_calibration", {})
    monkeypatch.setattr(estimate, "_busy", {})
    cores = os.sched_getaffinity(0)
    core = max(cores)
    spinner = subprocess.Popen([sys.executable, "-c", f"import os\nos.sched_setaffinity(0, {{{core}}})\nwhile True: pass"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on one core: torch threads beyond one would only wait on each other
    pin_threads({core})  # whichever thread runs the calibration's steps
    try:
        time.sleep(0.5)
        busy = lab.calibrate()
        guess = lab.estimate_time("degradation", epochs=2)
    finally:
        pin_threads(cores)
        torch.set_num_threads(threads)
        spinner.kill()
        spinner.wait()
    assert busy.measured and busy.busy and busy.cpu_share < estimate.BUSY_SHARE
    assert guess.busy and "busy" in guess.label
    assert estimate._calibration == {} and lab.calibrate() is busy  # held for RECALIBRATE_S, not for good
    monkeypatch.setattr(estimate, "RECALIBRATE_S", 0.0)
    quiet = lab.calibrate()
    assert quiet is not busy and not quiet.busy and estimate._calibration == {lab.TRAIN_THREADS: quiet}
    assert quiet.seconds_per_layer_step < busy.seconds_per_layer_step  # the busy rates were slower


def test_estimate_is_within_a_sane_factor_of_a_real_run(monkeypatch):
    cfg = preset("resnet20").replace(name="r20w8", widths=[8, 8, 8], stem_width=8)
    settings = dict(epochs=3, max_train=512)
    fit(TINY, epochs=1, max_train=60, batch_size=30)  # one-time costs of a first run
    monkeypatch.setattr(estimate, "_calibration", {})  # calibrated under the run's load
    expected = lab.estimate_seconds([cfg], seeds=1, **settings)
    actual = lab.run_experiment([cfg], seeds=1, **settings).seconds
    ratio = expected / actual
    print(f"estimate {expected:.2f} s, actual {actual:.2f} s, ratio {ratio:.2f}")
    assert 1 / 5 < ratio < 5  # a sanity bound on the model, not a speed target


def test_size_limits_are_checked_before_anything_is_built(monkeypatch):
    built = []
    monkeypatch.setattr(training, "build_model", lambda cfg: built.append(cfg) or build_model(cfg))
    monkeypatch.setenv("RESNET_EXPLORER_MAX_PARAMS", "1000")
    for call in (lambda: lab.run_experiment([TINY], **FAST), lambda: lab.estimate_seconds([TINY]),
                 lambda: fit(TINY, **FAST), lambda: lab.run_experiment("degradation")):
        with pytest.raises(ConfigError) as info:
            call()
        assert info.value.key == "widths" and "RESNET_EXPLORER_MAX_PARAMS" in str(info.value)
    # a custom set is checked whole: the small first config does not train either
    monkeypatch.setenv("RESNET_EXPLORER_MAX_PARAMS", "100000")
    with pytest.raises(ConfigError):
        lab.run_experiment([TINY, preset("resnet56")], **FAST)
    assert built == []
    assert main(["lab", "custom", "--config", "resnet56", "--epochs", "1"]) == 2


def test_unit_labels_come_from_one_helper(monkeypatch):
    cfg = lab.lab_config(TINY)
    assert gradients._unit_names(cfg) == tuple(_unit_names(TINY))
    monkeypatch.setattr(gradients, "_unit_names", lambda c: ("layer2.0",))
    r = fit(TINY, epochs=1, max_train=60, batch_size=30)
    assert [g.unit for g in r.grad_norms] == ["layer2.0"]


# -- the package -------------------------------------------------------------------------------
def test_importing_the_lab_loads_neither_the_data_nor_dynamo():
    code = ("import sys, explorer.lab as lab; lab.calibrate(); "
            "print(sorted(m for m in ('sklearn', 'torch._dynamo') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.strip() == "[]"


def test_lab_modules_are_small_and_export_explicitly():
    pkg = Path(lab.__file__).parent
    for path in pkg.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path
    tree = ast.parse((pkg / "__init__.py").read_text())
    assert not any(a.name == "*" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                   for a in node.names)
    assert sorted(lab.__all__) == sorted(set(lab.__all__))
    assert all(hasattr(lab, name) for name in lab.__all__)


# -- the result records: frozen, JSON only at the edge ---------------------------------------
def test_results_round_trip_through_their_json():
    """`from_dict(to_dict(x)) == x` for a finished and a stopped experiment, each run, epoch
    and gradient-norm record, also through the JSON text the command line prints."""
    finished = lab.run_experiment([TINY, TINY.replace(name="plain", skip_span=0)], seeds=1, epochs=2,
                                  max_train=60, batch_size=30)
    stopped = lab.run_experiment(THREE, seeds=1, epochs=2, max_train=60, batch_size=30,
                                 should_stop=lambda: False, time_limit_s=0.0)
    assert finished.status == "complete" and stopped.status == "timed_out" and stopped.not_run()
    for res in (finished, stopped):
        assert lab.LabResult.from_dict(res.to_dict()) == res
        assert lab.LabResult.from_dict(json.loads(res.to_json_bytes())) == res
    run = finished.runs[0]
    assert lab.RunResult.from_dict(run.to_dict()) == run and run.status == "complete"
    assert lab.EpochRecord.from_dict(run.history[0].to_dict()) == run.history[0]
    assert lab.GradNorm.from_dict(run.grad_norms[0].to_dict()) == run.grad_norms[0]
    assert lab.TrainSettings.from_dict(run.settings.to_dict()) == run.settings == lab.TrainSettings(
        epochs=2, max_train=60, batch_size=30, lr=0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        finished.status = "cancelled"
    with pytest.raises(ConfigError) as info:
        lab.LabResult.from_dict({"experiment": "x"})
    assert info.value.key == "title"


def test_statuses_are_literal_types():
    assert typing.get_args(lab.RunStatus) == ("running", "complete", "cancelled", "diverged", "not run")
    assert typing.get_args(lab.LabStatus) == ("running", "complete", "cancelled", "timed_out")
    res = _fake_result({"x": [(0.1, 0.9)]}, plan=(("x", 0), ("y", 0)), status="cancelled")
    assert (res.status_of("x", 0), res.status_of("y", 0)) == ("complete", "not run")
    assert res.cancelled and not res.timed_out and res.planned_variants() == ["x", "y"]
    with pytest.raises(ConfigError) as info:
        dataclasses.replace(res, status="stopped")
    assert info.value.key == "status"
    with pytest.raises(ConfigError):
        dataclasses.replace(res.runs[0], status="not run")  # a run that exists has started


def test_settings_beside_a_loose_setting_is_an_error():
    """Nothing is silently ignored: settings= and an override together are refused."""
    with pytest.raises(ConfigError) as info:
        lab.run_experiment([TINY], settings=lab.TrainSettings(epochs=1), epochs=2, seeds=1)
    assert info.value.key == "epochs"
    with pytest.raises(ConfigError) as info:
        lab.prepare_runs("units", settings=lab.TrainSettings(), lr=0.5)
    assert info.value.key == "lr"
    with pytest.raises(ConfigError) as info:
        lab.train(TINY, {"epochs": 1})
    assert info.value.key == "settings"
    runs = lab.prepare_runs([TINY], seeds=1, epochs=1, max_train=60, batch_size=30)
    with pytest.raises(ConfigError) as info:
        lab.run_experiment(runs, epochs=3)
    assert info.value.key == "epochs"
    assert lab.run_experiment(runs).settings == runs.settings  # prepared runs, passed whole


def test_an_in_process_run_leaves_the_thread_count_alone():
    """A latency measured while the Lab trains in this process runs at the thread count it
    reports: the run never changes the process-wide count, neither while it runs nor after."""
    seen: list[int] = []
    with _threads(2):
        res = lab.run_experiment([TINY], seeds=1, epochs=2, max_train=60, batch_size=30,
                                 progress=lambda *a: seen.append(torch.get_num_threads()),
                                 on_update=lambda partial: seen.append(torch.get_num_threads()))
        hooks = lab.RunHooks(on_epoch=lambda record: seen.append(torch.get_num_threads()))
        fit(TINY, hooks, epochs=1, max_train=60, batch_size=30)
        after = torch.get_num_threads()
        assert estimate.measure_calibration() is not None  # timed at one thread, under the device lock
        after_calibration = torch.get_num_threads()
    assert res.workers == 1 and len(seen) >= 7
    assert set(seen) == {2} and after == after_calibration == 2


def test_in_process_training_steps_run_at_the_training_thread_count():
    """Inside a training step (seen at the optimiser's step) torch runs at TRAIN_THREADS; outside,
    and for any measurement (which starts only once no step is in flight), at the process's count."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from explorer.timing.gate import exclusive_measurement

    inside: list[int] = []
    handle = register_optimizer_step_pre_hook(lambda opt, args, kwargs: inside.append(torch.get_num_threads()))
    try:
        with _threads(2):
            epochs: list[int] = []
            hooks = lab.RunHooks(on_epoch=lambda record: epochs.append(torch.get_num_threads()))
            fit(TINY, hooks, epochs=1, max_train=60, batch_size=30)
            with exclusive_measurement():
                during_measurement = torch.get_num_threads()
            after = torch.get_num_threads()
    finally:
        handle.remove()
    assert len(inside) == 2 and set(inside) == {lab.TRAIN_THREADS}  # 60 images in batches of 30
    assert epochs == [2] and during_measurement == after == 2


def test_lab_limits_are_the_shared_ones():
    """The app's epoch bound, the library's and the command line's are one number."""
    from streamlit.testing.v1 import AppTest

    from explorer import limits

    assert (lab.MAX_EPOCHS, lab.MAX_SEEDS) == (limits.MAX_EPOCHS, limits.MAX_SEEDS)
    lab.TrainSettings(epochs=limits.MAX_EPOCHS)
    with pytest.raises(ConfigError):
        lab.TrainSettings(epochs=limits.MAX_EPOCHS + 1)
    with pytest.raises(ConfigError):
        lab.prepare_runs("units", seeds=limits.MAX_SEEDS + 1)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=180).run()
    at.session_state["view"] = "Lab"
    at.run()
    assert not at.exception
    assert at.number_input(key="lab_epochs").max == limits.MAX_EPOCHS
    assert max(int(o) for o in at.selectbox(key="lab_seeds").options) <= limits.MAX_SEEDS


# -- CLI ---------------------------------------------------------------------------------------
def test_cli_json_and_progress(capsys):
    rc = main(["lab", "custom", "--config", "resnet20", "--set", "depths=[1,1,1]", "--epochs", "1",
               "--max-train", "60", "--batch-size", "30", "--seed", "2", "--seeds", "1", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0
    doc = json.loads(out)
    assert doc["settings"]["seed"] == 2 and doc["results"][0]["epochs"] == 1
    assert set(doc) >= {"experiment", "title", "dataset", "settings", "seeds", "workers", "total_runs",
                        "seconds", "cancelled", "timed_out", "stop_message", "not_run", "results", "runs",
                        "rule", "conclusions"}
    assert lab.LabResult.from_dict(doc).runs[0].history[0].epoch == 1
    assert "[1/1] resnet20 (depths [1, 1, 1]) epoch 1/1" in err  # a changed preset is named by its changes
    assert err.startswith(f"{lab.EXPERIMENTS['custom'].title}: 1 run, expected about ")


def test_cli_table(capsys):
    rc = main(["lab", "custom", "--config", "resnet20", "--config", "plain20", "--set", "depths=[1,1,1]",
               "--epochs", "1", "--max-train", "60", "--batch-size", "30", "--seeds", "1"])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert "val_acc" in out and "resnet20" in out
    assert "resnet20 (depths [1, 1, 1]) vs plain20 (depths [1, 1, 1]) — training loss: no difference at this budget (one seed" in out


@pytest.mark.parametrize("argv", [["lab", "nope"], ["lab", "custom"], ["lab", "units", "--epochs", "0"],
                                  ["lab", "units", "--optimizer", "rmsprop"], ["lab", "units", "--seeds", "0"]])
def test_cli_bad_input_is_one_line_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_time_limit_ends_an_experiment_and_says_so():
    cfg = preset("resnet20").replace(name="r20", widths=[8, 8, 8], stem_width=8)
    res = lab.run_experiment([cfg, cfg.replace(name="r20b")], epochs=3, max_train=128, time_limit_s=0.0)
    assert res.timed_out and res.cancelled
    assert res.to_dict()["timed_out"] is True
    assert res.stop_message().startswith("Stopped at the 0 s time limit after ")
    assert res.stop_message().endswith(" did not run.") and len(res.runs) + len(res.not_run()) == 2 * 3
    full = lab.run_experiment([cfg], epochs=1, max_train=64, time_limit_s=600)
    assert not full.timed_out and not full.cancelled


# -- sharing the cores with latency measurements ----------------------------------------------
class _TimedPasses(torch.nn.Module):
    """A model for measure_latency whose every pass records its (start, end) times."""

    spans: list = []  # class attribute: shared with the private copy measure_latency makes

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 2)

    def forward(self, x):
        t0 = time.perf_counter()
        time.sleep(0.005)
        y = self.lin(x)
        _TimedPasses.spans.append((t0, time.perf_counter()))
        return y


def test_training_steps_pause_while_a_latency_measurement_runs(monkeypatch):
    from explorer.timing import measure_latency

    steps: list[tuple[float, float]] = []
    begun: list[float] = []
    real_begin, real_end = training.begin_training_step, training.end_training_step

    def begin(should_stop=None, **options):
        ok = real_begin(should_stop, **options)
        if ok:
            begun.append(time.perf_counter())
        return ok

    def end():
        steps.append((begun[-1], time.perf_counter()))
        real_end()

    monkeypatch.setattr(training, "begin_training_step", begin)
    monkeypatch.setattr(training, "end_training_step", end)
    measured = threading.Event()
    stop_after: list[int] = []

    def should_stop() -> bool:
        return bool(stop_after) and len(steps) >= stop_after[0]

    trainer = threading.Thread(target=fit, args=(TINY, lab.RunHooks(should_stop=should_stop)),
                               kwargs=dict(epochs=200, max_train=100, batch_size=10))
    trainer.start()
    while len(steps) < 3 and trainer.is_alive():  # training is under way before the measurement starts
        time.sleep(0.01)
    assert trainer.is_alive()
    _TimedPasses.spans.clear()
    measure_latency(_TimedPasses(), device="cpu", threads=1, budget_s=0.3, warmup=2, min_samples=10,
                    input_shape=(4,))
    measured.set()
    n_before_end = len(steps)
    stop_after.append(n_before_end + 3)  # a few more steps after the measurement, then stop
    trainer.join(timeout=120)
    assert not trainer.is_alive()

    first, last = _TimedPasses.spans[0][0], _TimedPasses.spans[-1][1]
    assert len(_TimedPasses.spans) >= 12
    overlapping = [s for s in steps if s[0] < last and s[1] > first]
    assert overlapping == []                       # no step ran during any timed or warm-up pass
    assert any(s[1] <= first for s in steps)       # training ran before the measurement ...
    assert any(s[0] >= last for s in steps)        # ... and went on after it


def test_cancel_while_paused_for_a_measurement_ends_the_run():
    from explorer.timing import exclusive_measurement

    polls: list[int] = []
    results: list[lab.RunResult] = []

    def stop() -> bool:  # asked before each step and again while the step waits
        polls.append(1)
        return len(polls) > 5

    with exclusive_measurement():  # a measurement in progress: the run cannot take a step
        trainer = threading.Thread(target=lambda: results.append(
            fit(TINY, lab.RunHooks(should_stop=stop), epochs=2, max_train=100, batch_size=50)))
        trainer.start()
        trainer.join(timeout=60)  # a run that only looked at `stop` between steps would wait forever
        assert not trainer.is_alive()
    r = results[0]
    assert r.cancelled and r.history == () and len(polls) == 6


# -- seeds: per-seed results, their spread, and the rule that reads them ----------------------
def _finals(run: lab.RunResult) -> tuple:
    last = run.history[-1]
    return last.train_loss, last.train_acc, last.val_loss, last.val_acc


def test_seeds_give_per_seed_results_with_their_mean_and_std():
    cfgs = [TINY, TINY.replace(name="plain", skip_span=0)]
    res = lab.run_experiment(cfgs, seeds=3, seed=5, **FAST)
    assert res.seeds == (5, 6, 7) and res.total_runs == 6 and not res.cancelled
    assert res.workers == lab.workers_for(3) == min(3, len(os.sched_getaffinity(0)))
    assert res.variants() == ["tiny", "plain"]
    for cfg in cfgs:
        runs = res.runs_of(cfg.name)
        assert [r.settings.seed for r in runs] == [5, 6, 7]
        # each seed in a worker trains exactly as it does alone at the workers' thread count
        for r in runs:
            with _threads(lab.TRAIN_THREADS):
                alone = fit(cfg, seed=r.settings.seed, **FAST)
            assert _finals(r) == _finals(alone)
            assert [g.grad_norm for g in r.grad_norms] == [g.grad_norm for g in alone.grad_norms]
        assert len({_finals(r) for r in runs}) == 3  # the seeds differ
    for row in res.to_rows():
        runs = res.runs_of(row["run"])
        losses = [r.history[-1].train_loss for r in runs]
        accs = [r.history[-1].val_acc for r in runs]
        assert row["seeds"] == 3 and row["epochs"] == 1
        assert row["train_loss"] == pytest.approx(statistics.fmean(losses))
        assert row["train_loss_std"] == pytest.approx(statistics.stdev(losses))
        assert row["val_acc"] == pytest.approx(statistics.fmean(accs))
        assert row["val_acc_std"] == pytest.approx(statistics.stdev(accs))
    band = [b for b in res.history_band_rows() if b["run"] == "tiny"]
    assert len(band) == 1 and band[0]["seeds"] == 3
    assert band[0]["train_loss_min"] <= band[0]["train_loss"] <= band[0]["train_loss_max"]
    assert len(res.seed_rows()) == 6 and {r["seed"] for r in res.seed_rows()} == {5, 6, 7}
    doc = json.loads(res.to_json_bytes())
    assert doc["seeds"] == [5, 6, 7]
    first = doc["runs"][0]
    assert first["run"] == "tiny" and first["seeds"] == [5, 6, 7]
    assert [p["final"]["train_loss"] for p in first["per_seed"]] == pytest.approx(
        [r.history[-1].train_loss for r in res.runs_of("tiny")])
    assert first["mean"]["val_acc"] == pytest.approx(doc["results"][0]["val_acc"])
    assert first["std"]["train_loss"] == pytest.approx(doc["results"][0]["train_loss_std"])


def test_one_seed_is_the_single_run_of_before(tiny_run):
    res = lab.run_experiment([TINY], seeds=1, **FAST)
    assert res.seeds == (0,) and res.workers == 1 and len(res.runs) == 1
    run = res.runs[0]
    assert _finals(run) == _finals(tiny_run)
    assert [g.grad_norm for g in run.grad_norms] == [g.grad_norm for g in tiny_run.grad_norms]
    row = res.to_rows()[0]
    old = tiny_run.summary_row()
    for key in ("run", "depth", "params", "epochs", "train_loss", "train_acc", "val_loss", "val_acc", "best_val_acc"):
        assert row[key] == old[key], key
    assert row["seeds"] == 1 and row["train_loss_std"] is None and row["val_acc_std"] is None


def _fake(name: str, seed: int, loss: float, acc: float) -> lab.RunResult:
    epoch = lab.EpochRecord(name, seed, 1, 0.1, loss, acc, loss, acc, seconds=0.1, elapsed=0.1)
    return lab.RunResult(TINY.replace(name=name), lab.TrainSettings(seed=seed, epochs=1), 1, 8, 100, 10,
                         history=(epoch,), seconds=0.1, status="complete")


def _fake_result(table: dict[str, list[tuple[float, float]]], **kwargs) -> lab.LabResult:
    runs = [_fake(name, seed, loss, acc) for name, pairs in table.items() for seed, (loss, acc) in enumerate(pairs)]
    return lab.LabResult("x", "x", lab.TrainSettings(), runs=runs, seeds=(0, 1, 2), **kwargs)


def test_conclusion_rule_names_a_winner_only_beyond_the_spread():
    close = lab.judge("a", lab.spread([0.50, 0.60, 0.70]), "b", lab.spread([0.55, 0.65, 0.75]), "train_loss")
    assert close.better is None and lab.NO_DIFFERENCE in close.text
    clear = lab.judge("a", lab.spread([0.10, 0.12, 0.11]), "b", lab.spread([0.50, 0.55, 0.45]), "train_loss")
    assert clear.better == "a" and clear.text.startswith("training loss: a lower")
    acc = lab.judge("a", lab.spread([0.90, 0.91, 0.92]), "b", lab.spread([0.95, 0.96, 0.97]), "val_acc")
    assert acc.better == "b" and "b higher" in acc.text and "96.0 ± 1.00 %" in acc.text
    # the boundary: a gap equal to the sum of the stds (bands that touch) is no difference
    a, b = lab.spread([0.0, 1.0, 2.0]), lab.spread([4.0, 5.0, 6.0])  # std 1 each, gap 4 > 2
    assert lab.judge("a", a, "b", b, "train_loss").better == "a"
    a, b = lab.spread([0.0, 1.0, 2.0]), lab.spread([2.0, 3.0, 4.0])  # gap 2 == 1 + 1
    assert lab.judge("a", a, "b", b, "train_loss").better is None
    # one seed has no spread: nothing is called better, however large the gap
    single = lab.judge("a", lab.spread([0.1]), "b", lab.spread([2.0]), "train_loss")
    assert single.better is None and "one seed" in single.text
    nan = lab.judge("a", lab.spread([0.1, float("nan")]), "b", lab.spread([2.0, 2.1]), "train_loss")
    assert nan.better is None and "diverged" in nan.text


def test_conclusion_numbers_read_like_the_tables():
    """Three significant figures as in the Lab's tables (not '2.3293 vs 2.3114'), more only where
    a variant is called better and three would print the two means alike."""
    one = lab.judge("a", lab.spread([2.3293]), "b", lab.spread([2.3114]), "train_loss")
    assert one.text.endswith("(2.33 vs 2.31)")
    close = lab.judge("a", lab.spread([2.32931, 2.32932]), "b", lab.spread([2.3314, 2.3315]), "train_loss")
    assert close.better == "a" and "(2.3293 ± 0.0000071 vs 2.3315 ± 0.000071)" in close.text
    assert lab.format_spread(lab.spread([0.969, 0.973]), "val_acc") == "97.1 ± 0.28 %"


def test_conclusions_of_an_experiment_result():
    res = _fake_result({
        "(a)": [(0.10, 0.95), (0.12, 0.96), (0.11, 0.94)],
        "(b)": [(0.11, 0.95), (0.10, 0.94), (0.13, 0.96)],   # within the spread of (a)
        "(e)": [(0.01, 0.99), (0.02, 0.99), (0.015, 0.98)],  # clearly better on loss and accuracy
    }, comparisons=(("(a)", "(b)"), ("(a)", "(e)")))
    verdicts = {(v.b, v.metric): v for v in res.conclusions()}
    assert verdicts[("(b)", "train_loss")].better is None and verdicts[("(b)", "val_acc")].better is None
    assert verdicts[("(e)", "train_loss")].better == "(e)" and verdicts[("(e)", "val_acc")].better == "(e)"
    lines = res.conclusion_lines()
    assert lines[0] == ("(a) vs (b) — training loss: no difference at this budget (0.11 ± 0.010 vs "
                        "0.11 ± 0.015); validation accuracy: no difference at this budget "
                        "(95.0 ± 1.00 % vs 95.0 ± 1.00 %)")
    assert lines[1].startswith("(a) vs (e) — training loss: (e) lower")
    # without comparisons given (custom): each variant against the first
    res = _fake_result({"x": [(0.1, 0.9)] * 3, "y": [(0.1, 0.9)] * 3})
    assert [(v.a, v.b) for v in res.conclusions()] == [("x", "y"), ("x", "y")]
    assert json.loads(res.to_json_bytes())["conclusions"] == res.conclusion_lines()


def test_ready_experiments_compare_runs_they_have():
    for exp in lab.EXPERIMENTS.values():
        names = {c.name for c in exp.configs}
        assert all(a in names and b in names for a, b in exp.comparisons)
        assert bool(exp.comparisons) == bool(exp.configs)


def test_cancel_during_a_multi_seed_run_keeps_partial_results():
    epochs_seen: list[tuple] = []
    res = lab.run_experiment([TINY, TINY.replace(name="b")], seeds=2, epochs=200, max_train=100, batch_size=10,
                             progress=lambda done, total, epoch, name: epoch and epochs_seen.append(epoch),
                             should_stop=lambda: len(epochs_seen) >= 3)
    assert res.cancelled and not res.timed_out and res.total_runs == 4
    assert res.runs and all(len(r.history) < 200 for r in res.runs)
    assert sum(len(r.history) for r in res.runs) >= 3  # what finished is kept
    for r in res.runs:  # each run's epochs in order, none lost in between
        assert [h.epoch for h in r.history] == list(range(1, len(r.history) + 1))
    assert any(r.cancelled for r in res.runs)
    assert res.to_rows() and json.loads(res.to_json_bytes())["cancelled"] is True


def test_a_latency_measurement_pauses_training_in_worker_processes():
    from explorer.timing import exclusive_measurement, measure_latency

    lock = threading.Lock()
    rows: list[int] = []
    stop = threading.Event()
    results: list[lab.ExperimentResult] = []

    def on_update(partial: lab.ExperimentResult) -> None:
        with lock:
            rows[:] = [len(partial.history_rows())]

    def count() -> int:
        with lock:
            return rows[0] if rows else 0

    trainer = threading.Thread(target=lambda: results.append(lab.run_experiment(
        [TINY], seeds=2, epochs=1000, max_train=40, batch_size=20, on_update=on_update, should_stop=stop.is_set)))
    trainer.start()
    try:
        while count() < 4 and trainer.is_alive():  # both workers are training
            time.sleep(0.05)
        assert trainer.is_alive()
        with exclusive_measurement() as wait:
            assert not wait.timed_out and wait.steps_running == 0  # the workers' steps drained first
            time.sleep(0.5)  # an epoch's evaluation in flight may still report
            paused = count()
            time.sleep(1.5)
            assert count() == paused  # no worker finished a step, so no epoch, while it held the cores
            _TimedPasses.spans.clear()
            measure_latency(_TimedPasses(), device="cpu", threads=1, budget_s=0.2, warmup=2, min_samples=5,
                            input_shape=(4,))  # a real measurement inside: the gate is re-entrant
            assert count() == paused
        deadline = time.monotonic() + 60
        while count() <= paused and time.monotonic() < deadline:  # ... and went on after it
            time.sleep(0.05)
        assert count() > paused
    finally:
        stop.set()
        trainer.join(timeout=60)
    assert not trainer.is_alive() and results[0].cancelled


def test_cancel_while_workers_wait_for_a_measurement_ends_the_run():
    from explorer.timing import exclusive_measurement

    polls: list[int] = []

    def stop() -> bool:
        polls.append(1)
        return len(polls) > 40  # about 2 s of the parent's polling

    with exclusive_measurement():  # the workers cannot take a step
        res = lab.run_experiment([TINY], seeds=2, epochs=2, max_train=100, batch_size=50, should_stop=stop)
    assert res.cancelled
    assert all(r.cancelled and r.history == () for r in res.runs)


def test_estimate_schedules_seeds_across_workers(monkeypatch):
    from explorer.lab import experiments

    assert estimate.schedule_seconds([3, 1, 1, 1], 2) == 3
    assert estimate.schedule_seconds([1, 1, 1, 1], 2) == 2
    assert estimate.schedule_seconds([1, 1, 1], 1) == 3
    monkeypatch.setattr(estimate, "calibrate", lambda threads=1: lab.REFERENCE)
    monkeypatch.setattr(estimate, "server_running", lambda: True)
    monkeypatch.setitem(sys.modules, "torch._dynamo", sys.modules.get("torch._dynamo", object()))
    one = lab.estimate_seconds([TINY], seeds=1, epochs=2)
    for workers in (1, 2, 4):
        monkeypatch.setattr(experiments, "workers_for", lambda n, w=workers: min(n, w))
        four = lab.estimate_seconds([TINY], seeds=4, epochs=2)
        if workers == 1:
            assert four == pytest.approx(4 * one)  # one after the other, in this process
        else:
            rounds = 4 // workers
            assert four == pytest.approx(estimate.WORKER_START_S + estimate.PARALLEL_SLOWDOWN * rounds * one)


def test_cli_seeds_json_shape(capsys):
    rc = main(["lab", "custom", "--config", "resnet20", "--config", "plain20", "--set", "depths=[1,1,1]",
               "--epochs", "1", "--max-train", "60", "--batch-size", "30", "--seeds", "2", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0
    doc = json.loads(out)
    assert doc["seeds"] == [0, 1] and doc["total_runs"] == 4 and not doc["cancelled"]
    assert [r["run"] for r in doc["runs"]] == ["resnet20 (depths [1, 1, 1])", "plain20 (depths [1, 1, 1])"]
    for variant, row in zip(doc["runs"], doc["results"]):
        assert variant["seeds"] == [0, 1] and [p["seed"] for p in variant["per_seed"]] == [0, 1]
        finals = [p["final"]["train_loss"] for p in variant["per_seed"]]
        assert variant["mean"]["train_loss"] == pytest.approx(statistics.fmean(finals)) == row["train_loss"]
        assert variant["std"]["train_loss"] == pytest.approx(statistics.stdev(finals)) == row["train_loss_std"]
        assert set(variant["mean"]) == set(variant["std"]) >= {"train_loss", "val_acc"}
        assert all(p["history"] and p["grad_norms"] for p in variant["per_seed"])
    assert doc["rule"] == lab.RULE and doc["conclusions"][0].startswith("resnet20 (depths [1, 1, 1]) vs plain20 (depths [1, 1, 1]) — training loss: ")
    assert "seed 1 epoch 1/1" in err and " x 2 seeds" in err


def test_cli_ctrl_c_stops_a_multi_seed_run_and_prints_what_finished():
    cmd = [sys.executable, "-m", "explorer", "lab", "custom", "--config", "resnet20", "--set", "depths=[1,1,1]",
           "--epochs", "500", "--max-train", "60", "--batch-size", "30", "--seeds", "2", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        lines = []
        for line in proc.stderr:  # wait until training is under way
            lines.append(line)
            if " epoch 2/500" in line:
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, "".join(lines) + err
    doc = json.loads(out)
    assert doc["cancelled"] is True
    histories = [p["history"] for v in doc["runs"] for p in v["per_seed"]]
    assert any(len(h) >= 2 for h in histories) and all(len(h) < 500 for h in histories)
    # what was cut short, said on stderr and kept in the JSON with each run's true numbers
    assert doc["stop_message"].startswith("Cancelled after ")
    assert "Stopped (Ctrl-C) after " + doc["stop_message"].removeprefix("Cancelled after ") in err
    per_seed = [p for v in doc["runs"] for p in v["per_seed"]]
    assert all(p["cancelled"] and p["seconds"] > 0 and p["final"]["epochs"] == len(p["history"]) for p in per_seed)
