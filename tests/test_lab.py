"""Trainability lab: tiny real training runs on the digits (CPU, a few hundred images)."""
from __future__ import annotations

import ast
import csv
import dataclasses
import io
import json
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import explorer.lab as lab
from explorer import ArchConfig, ConfigError, build_model, preset
from explorer.__main__ import main
from explorer.arch.builder import ResidualUnit
from explorer.arch.plan import effective_span
from explorer.lab import estimate, gradients, training

TINY = preset("resnet20").replace(name="tiny", depths=[1, 1, 1], widths=[8, 8, 16], stem_width=8)
FAST = dict(epochs=1, max_train=200, batch_size=50)


def _unit_names(cfg: ArchConfig) -> list[str]:
    model = build_model(lab.lab_config(cfg))
    return [n for n, m in model.named_modules() if isinstance(m, ResidualUnit)]


@pytest.fixture(scope="module")
def tiny_run() -> lab.RunResult:
    return lab.train(TINY, **FAST)


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
    assert [row["epoch"] for row in r.history] == [1]
    row = r.history[0]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "seconds", "elapsed"):
        assert math.isfinite(row[key])
    assert 0 <= row["train_acc"] <= 1 and 0 <= row["val_acc"] <= 1
    assert not r.cancelled and not r.diverged
    assert [g["unit"] for g in r.grad_norms] == _unit_names(TINY)
    assert all(g["grad_norm"] > 0 and g["output_grad_norm"] > 0 for g in r.grad_norms)
    assert [g["layer"] for g in r.grad_norms] == [3, 5, 7]  # stem conv, then 2 convs a unit


def test_plain_net_reports_its_blocks_as_units():
    cfg = TINY.replace(name="plain", depths=[2, 1, 1], skip_span=0)
    r = lab.train(cfg, epochs=1, max_train=100, batch_size=50)
    assert [g["unit"] for g in r.grad_norms] == _unit_names(cfg) == ["layer1.0", "layer1.1", "layer2.0", "layer3.0"]
    assert not any(g["residual"] for g in r.grad_norms)


def test_skip_span_one_gives_a_grad_norm_per_layer():
    cfg = TINY.replace(name="span1", skip_span=1)
    r = lab.train(cfg, epochs=1, max_train=100, batch_size=50)
    assert len(r.grad_norms) == 6 == len(_unit_names(cfg))


def test_same_seed_same_losses_other_seed_other_losses(tiny_run):
    again = lab.train(TINY, **FAST)
    assert [h["train_loss"] for h in again.history] == [h["train_loss"] for h in tiny_run.history]
    assert [h["val_acc"] for h in again.history] == [h["val_acc"] for h in tiny_run.history]
    assert [g["grad_norm"] for g in again.grad_norms] == [g["grad_norm"] for g in tiny_run.grad_norms]
    other = lab.train(TINY, seed=1, **FAST)
    assert other.history[0]["train_loss"] != tiny_run.history[0]["train_loss"]


def test_training_leaves_global_torch_state_alone():
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    lab.train(TINY, epochs=1, max_train=60, batch_size=30)
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
    r = lab.train(cfg, epochs=1, max_train=60, batch_size=30)
    assert len(built) == 1
    used_cfg, model = built[0]
    assert used_cfg == lab.lab_config(cfg) == r.config
    reference = build_model(lab.lab_config(cfg))
    assert type(model) is type(reference)
    assert list(model.state_dict()) == list(reference.state_dict())
    assert r.params == sum(p.numel() for p in reference.parameters())


def test_adam_and_constant_schedule_train():
    s = lab.TrainSettings(epochs=2, optimizer="adam", schedule="constant", max_train=60, batch_size=30)
    r = lab.train(TINY, settings=s)
    assert [h["lr"] for h in r.history] == [1e-3, 1e-3]
    assert all(math.isfinite(h["train_loss"]) for h in r.history)


def test_step_schedule_divides_by_ten_at_half_and_three_quarters():
    s = lab.TrainSettings(epochs=8)
    assert [s.lr_at(e) for e in range(1, 9)] == pytest.approx([0.1] * 4 + [0.01] * 2 + [0.001] * 2)


def test_cancel_mid_run_keeps_finished_epochs():
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3  # 2 batches an epoch: stops in the second epoch

    r = lab.train(TINY, epochs=3, max_train=100, batch_size=50, should_stop=stop)
    assert r.cancelled
    assert [h["epoch"] for h in r.history] == [1]


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
        lab.train(TINY, **kwargs)
    assert info.value.key == key


def test_bad_configs_raise_config_error():
    with pytest.raises(ConfigError) as info:
        lab.train({"name": "x"})
    assert info.value.key == "config"
    # five stages halve 8x8 to 1x1 before the last stage can downsample
    with pytest.raises(ConfigError) as info:
        lab.train(TINY.replace(depths=[1] * 5, widths=[8] * 5), **FAST)
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
        assert not any("instead of" in w for w in measure_summary(cfg)["warnings"])  # no short units
    assert exp.expected_seconds is not None and 0 < exp.expected_seconds <= 90
    # The time model at the reference machine's rates agrees with the run measured there.
    monkeypatch.setattr(estimate, "calibrate", lambda: lab.REFERENCE)
    assert 0.5 < lab.estimate_seconds(name) / exp.expected_seconds < 2


def test_experiments_vary_what_they_claim_to():
    from explorer.facts.summary import measure_summary

    deg = lab.EXPERIMENTS["degradation"].configs
    assert sorted((measure_summary(c)["depth"], effective_span(c)) for c in deg) == [(20, 0), (20, 2), (56, 0), (56, 2)]
    spans = lab.EXPERIMENTS["skip_span"].configs
    assert [effective_span(c) for c in spans] == [0, 1, 2, 3]
    assert len({measure_summary(c)["depth"] for c in spans}) == 1
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
    res = lab.run_experiment(cfgs, epochs=1, max_train=60, batch_size=30,
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
                             max_train=60, batch_size=30,
                             progress=lambda done, total, epoch, name: seen.append(done),
                             should_stop=lambda: bool(seen) and seen[-1] >= 1)
    assert res.cancelled and res.total_runs == 3
    assert [r.name for r in res.runs] == ["tiny", "b"]
    assert res.runs[0].history and not res.runs[1].history and res.runs[1].cancelled


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
    res = lab.ExperimentResult("x", "x", lab.TrainSettings())
    run = lab.RunResult(TINY, lab.TrainSettings(), 1, 1, 1, 1)
    run.history.append({"run": "tiny", "epoch": 1, "train_loss": float("nan"), "train_acc": 0.1,
                        "val_loss": float("inf"), "val_acc": 0.1, "seconds": 0.1, "elapsed": 0.1})
    res.runs.append(run)
    doc = json.loads(res.to_json_bytes())  # strict JSON: would fail on NaN
    assert doc["runs"][0]["history"][0]["train_loss"] is None


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
    monkeypatch.setattr(estimate, "calibrate", lambda: slower)
    assert lab.estimate_seconds("degradation", epochs=2) == pytest.approx(10 * here.seconds)


def test_estimate_without_a_calibration_is_labelled_a_guess(monkeypatch):
    from explorer.timing import exclusive_measurement

    monkeypatch.setattr(estimate, "_calibration", [])  # as in a fresh process
    monkeypatch.setattr(estimate, "CALIBRATION_WAIT_S", 0.05)
    with exclusive_measurement():  # the machine is busy timing: no steps may run
        cal = lab.calibrate()
        guess = lab.estimate_time([TINY], epochs=1)
    assert cal == lab.REFERENCE and not cal.measured
    assert not guess.calibrated and "guess" in guess.label
    assert estimate._calibration == []  # tried again next time
    assert lab.calibrate().measured


def test_estimate_is_within_a_sane_factor_of_a_real_run(monkeypatch):
    cfg = preset("resnet20").replace(name="r20w8", widths=[8, 8, 8], stem_width=8)
    settings = dict(epochs=3, max_train=512)
    lab.train(TINY, epochs=1, max_train=60, batch_size=30)  # one-time costs of a first run
    monkeypatch.setattr(estimate, "_calibration", [])  # calibrated under the run's load
    expected = lab.estimate_seconds([cfg], **settings)
    actual = lab.run_experiment([cfg], **settings).seconds
    ratio = expected / actual
    print(f"estimate {expected:.2f} s, actual {actual:.2f} s, ratio {ratio:.2f}")
    assert 1 / 5 < ratio < 5  # a sanity bound on the model, not a speed target


def test_size_limits_are_checked_before_anything_is_built(monkeypatch):
    built = []
    monkeypatch.setattr(training, "build_model", lambda cfg: built.append(cfg) or build_model(cfg))
    monkeypatch.setenv("RESNET_EXPLORER_MAX_PARAMS", "1000")
    for call in (lambda: lab.run_experiment([TINY], **FAST), lambda: lab.estimate_seconds([TINY]),
                 lambda: lab.train(TINY, **FAST), lambda: lab.run_experiment("degradation")):
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
    r = lab.train(TINY, epochs=1, max_train=60, batch_size=30)
    assert [g["unit"] for g in r.grad_norms] == ["layer2.0"]


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


# -- CLI ---------------------------------------------------------------------------------------
def test_cli_json_and_progress(capsys):
    rc = main(["lab", "custom", "--config", "resnet20", "--set", "depths=[1,1,1]", "--epochs", "1",
               "--max-train", "60", "--batch-size", "30", "--seed", "2", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0
    doc = json.loads(out)
    assert doc["settings"]["seed"] == 2 and doc["results"][0]["epochs"] == 1
    assert "[1/1] resnet20 epoch 1/1" in err
    assert err.startswith(f"{lab.EXPERIMENTS['custom'].title}: 1 run, expected about ")


def test_cli_table(capsys):
    rc = main(["lab", "custom", "--config", "resnet20", "--set", "depths=[1,1,1]", "--epochs", "1",
               "--max-train", "60", "--batch-size", "30"])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert "val_acc" in out and "resnet20" in out


@pytest.mark.parametrize("argv", [["lab", "nope"], ["lab", "custom"], ["lab", "units", "--epochs", "0"],
                                  ["lab", "units", "--optimizer", "rmsprop"]])
def test_cli_bad_input_is_one_line_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_time_limit_ends_an_experiment_and_says_so():
    cfg = preset("resnet20").replace(name="r20", widths=[8, 8, 8], stem_width=8)
    res = lab.run_experiment([cfg, cfg.replace(name="r20b")], epochs=3, max_train=128, time_limit_s=0.0)
    assert res.timed_out and res.cancelled
    assert res.to_dict()["timed_out"] is True
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

    def begin(should_stop=None):
        ok = real_begin(should_stop)
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

    trainer = threading.Thread(target=lab.train, args=(TINY,),
                               kwargs=dict(epochs=200, max_train=100, batch_size=10, should_stop=should_stop))
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
            lab.train(TINY, epochs=2, max_train=100, batch_size=50, should_stop=stop)))
        trainer.start()
        trainer.join(timeout=60)  # a run that only looked at `stop` between steps would wait forever
        assert not trainer.is_alive()
    r = results[0]
    assert r.cancelled and r.history == [] and len(polls) == 6
