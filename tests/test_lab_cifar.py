"""The Lab on CIFAR: the official archive layout read by our own loader (a small fixture in the
same pickled layout), the papers' augmentation, the paper recipe, and the bugs met on the way
(seeds averaged at different epochs, an exploding validation loss not called diverged, worker
processes running the app's page again)."""
import hashlib
import json
import math
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import explorer.lab as lab
from explorer import ConfigError, preset
from explorer.__main__ import main
from explorer.lab import cifar, estimate, training
from explorer.lab.records import EpochRecord, RunResult
from explorer.lab.results import LabResult

from cifar_fixture import LAYOUT, write_cifar

ROOT = Path(__file__).resolve().parents[1]
TINY = preset("resnet20").replace(name="tiny", depths=[1, 1, 1], widths=[8, 8, 16], stem_width=8)


@pytest.fixture(scope="module")
def cifar_dirs(tmp_path_factory):
    """(folder only, archive only) of CIFAR-10, and a CIFAR-100 archive, each in its own directory."""
    base = tmp_path_factory.mktemp("cifar")
    folder = write_cifar(base / "folder", "cifar10", extracted=True, archive=False)
    archive = write_cifar(base / "archive", "cifar10", extracted=False, archive=True)
    hundred = write_cifar(base / "hundred", "cifar100", extracted=False, archive=True)
    return folder, archive, hundred


# -- the archive format ------------------------------------------------------------------------
def test_folder_and_archive_read_the_same_images_in_the_official_layout(cifar_dirs):
    folder, archive, _ = cifar_dirs
    a, b = cifar.load_cifar("cifar10", folder), cifar.load_cifar("cifar10", archive)
    assert a.x_train.shape == (200, 3, 32, 32) and a.x_val.shape == (100, 3, 32, 32)
    assert a.x_train.dtype == torch.uint8 and a.num_classes == 10
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    # row layout: 1,024 red values, then green, then blue, each 32x32 row-major; batches 1..5 in order
    with open(folder / "cifar-10-batches-py" / "data_batch_2", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    row = raw[b"data"][3]
    assert torch.equal(a.x_train[40 + 3, 1, 2], torch.from_numpy(row[1024 + 2 * 32: 1024 + 3 * 32].copy()))
    assert int(a.y_train[43]) == raw[b"labels"][3]
    # per-channel mean and std of the training set, scaled to [0, 1]
    pixels = a.x_train.double().div(255).transpose(0, 1).reshape(3, -1)
    assert a.mean == pytest.approx(pixels.mean(1).tolist(), abs=1e-9)
    assert a.std == pytest.approx(pixels.std(1, unbiased=False).tolist(), abs=1e-9)
    x, _ = a.probe_batch(200)
    assert x.mean(dim=(0, 2, 3)).abs().max() < 1e-4 and (x.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3


def test_cifar100_reads_the_fine_labels(cifar_dirs):
    data = cifar.load_cifar("cifar100", cifar_dirs[2])
    with _member(cifar_dirs[2] / "cifar-100-python.tar.gz", "cifar-100-python/train") as f:
        raw = pickle.load(f, encoding="bytes")
    assert data.num_classes == 100 and data.y_train.tolist() == raw[b"fine_labels"]
    assert data.y_train.tolist() != raw[b"coarse_labels"]


def _member(path: Path, name: str):
    import tarfile

    tar = tarfile.open(path, "r:gz")
    return tar.extractfile(name)


def test_missing_or_foreign_data_is_a_config_error(tmp_path, cifar_dirs):
    with pytest.raises(ConfigError) as info:
        cifar.load_cifar("cifar10", tmp_path)
    assert info.value.key == "data_dir" and "--download" in str(info.value)
    with pytest.raises(ConfigError) as info:
        cifar.load_cifar("cifar100", cifar_dirs[0])  # CIFAR-10 lies there, not CIFAR-100
    assert info.value.key == "data_dir"
    with pytest.raises(ConfigError):
        cifar.load_cifar("cifar7", cifar_dirs[0])
    # a batch file that is not a CIFAR batch
    bad = tmp_path / "bad" / "cifar-10-batches-py"
    bad.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (bad / name).write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ConfigError, match="3,072"):
        cifar.load_cifar("cifar10", tmp_path / "bad")


class _Boom:
    def __reduce__(self):
        return (subprocess.call, (["touch", "/tmp/never"],))


def test_a_pickle_may_build_arrays_only(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({b"data": _Boom(), b"labels": []}, protocol=2))
    with pytest.raises(ConfigError, match="not part of a CIFAR batch"):
        cifar.load_cifar("cifar10", tmp_path)


def test_download_verifies_the_checksum_and_fails_in_one_line(tmp_path, cifar_dirs, monkeypatch):
    archive = cifar_dirs[1] / "cifar-10-python.tar.gz"
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    real = cifar.SOURCES["cifar10"]
    assert real.url == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert real.md5 == "c58f30108f718f92721af3b95e74349a"
    assert cifar.SOURCES["cifar100"].md5 == "eb9058c3a382ffc7106e4002c42a8d85"
    # the same archive served from a file: URL (no network in tests)
    served = lambda url, md5: monkeypatch.setitem(  # noqa: E731
        cifar.SOURCES, "cifar10", real.__class__(**{**real.__dict__, "url": url, "md5": md5}))
    served(archive.as_uri(), md5)
    target = tmp_path / "fetched"
    data = cifar.load_cifar("cifar10", target, download=True)
    assert (target / "cifar-10-python.tar.gz").is_file() and len(data.x_train) == 200
    served(archive.as_uri(), "0" * 32)
    with pytest.raises(ConfigError, match="MD5") as info:
        cifar.load_cifar("cifar10", tmp_path / "wrong", download=True)
    assert not list((tmp_path / "wrong").iterdir())  # nothing half-written kept
    served((tmp_path / "nowhere.tar.gz").as_uri(), md5)
    with pytest.raises(ConfigError) as info:
        cifar.load_cifar("cifar10", tmp_path / "offline", download=True)
    assert info.value.key == "download" and "\n" not in str(info.value)


def test_cli_without_data_says_so_in_one_line(tmp_path, capsys):
    rc = main(["lab", "degradation", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--no-store"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err and "--download" in err


# -- augmentation ------------------------------------------------------------------------------
def test_augmentation_pads_crops_and_flips_per_image_from_a_seeded_generator():
    x = torch.randn(64, 3, 32, 32)
    out = cifar.augment(x, torch.Generator().manual_seed(1))
    again = cifar.augment(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and torch.equal(out, again)
    assert not torch.equal(out, cifar.augment(x, torch.Generator().manual_seed(2)))
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    flips = 0
    for i in range(64):  # each output is one 32x32 window of the zero-padded image, maybe mirrored
        windows = [padded[i, :, r: r + 32, c: c + 32] for r in range(9) for c in range(9)]
        plain = any(torch.equal(out[i], w) for w in windows)
        mirrored = any(torch.equal(out[i], w.flip(-1)) for w in windows)
        assert plain or mirrored
        flips += mirrored and not plain
    assert 16 < flips < 48  # about half


# -- configs, settings, recipe -----------------------------------------------------------------
def test_lab_config_follows_the_data_set():
    for dataset, shape in (("digits", (1, 8, 10)), ("cifar10", (3, 32, 10)), ("cifar100", (3, 32, 100))):
        cfg = lab.lab_config(preset("resnet56"), dataset)
        assert (cfg.in_channels, cfg.input_size, cfg.num_classes) == shape and cfg.stem == "cifar"
    with pytest.raises(ConfigError):
        lab.lab_config(preset("resnet56"), "imagenet")


def test_settings_with_data_and_recipe_round_trip():
    quick = lab.TrainSettings()
    paper = quick.with_overrides(recipe="paper", dataset="cifar100", data_dir="/data", device="cpu")
    assert (paper.optimizer, paper.lr, paper.batch_size, paper.momentum, paper.weight_decay, paper.iterations) == \
        ("sgd", 0.1, 128, 0.9, 1e-4, 64_000)
    by_epochs = lab.TrainSettings(recipe="paper", dataset="cifar10", iterations=None)
    for s in (quick, paper, by_epochs, paper.with_overrides(batch_size=64, seed=3)):
        assert lab.TrainSettings.from_dict(s.to_dict()) == s.resolved()
        assert lab.TrainSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s.resolved()
    assert paper.with_overrides(recipe="quick").iterations is None
    for bad in (dict(dataset="mnist"), dict(recipe="slow"), dict(iterations=0), dict(device="tpu"),
                dict(data_dir=7)):
        with pytest.raises(ConfigError) as info:
            lab.TrainSettings(**bad)
        assert info.value.key == next(iter(bad))


def test_paper_schedule_counts_iterations_and_warms_up_past_100_layers():
    s = lab.TrainSettings().with_overrides(recipe="paper")
    assert [s.lr_at_step(k, 56) for k in (1, 32_000, 32_001, 48_000, 48_001, 64_000)] == \
        pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    # ResNet-110 (He et al. 2015, Sec. 4.2): 0.01 for the first 400 iterations, then 0.1
    assert [s.lr_at_step(k, 110) for k in (1, 400, 401)] == pytest.approx([0.01, 0.01, 0.1])
    assert lab.TrainSettings().lr_at_step(1, 110) == pytest.approx(0.1)  # the quick recipe has no warm-up
    assert s.for_data(50_000).epochs == 164  # 391 steps a pass: 64k iterations are 163.7 passes
    with pytest.raises(ConfigError) as info:
        s.for_data(200)  # 2 steps a pass: 32,000 passes
    assert info.value.key == "iterations"


def test_degradation_experiment_on_cifar_trains_the_papers_four_networks(cifar_dirs):
    exp = lab.EXPERIMENTS["degradation"]
    assert [c.name for c in exp.configs] == ["plain20", "resnet20", "plain56", "resnet56"]
    runs = lab.prepare_runs("degradation", dataset="cifar10", data_dir=str(cifar_dirs[1]), recipe="paper",
                            iterations=10, seeds=1)
    assert all((c.in_channels, c.input_size, c.num_classes) == (3, 32, 10) for c in runs.configs)
    assert [s.weight_layers for s in runs.sizes] == [20, 20, 56, 56]
    assert runs.settings.iterations == 10 and runs.settings.epochs == 5  # 2 steps a pass over 200 images
    assert runs.settings.data_dir == str(cifar_dirs[1].resolve())  # the same place for every worker
    with pytest.raises(ConfigError) as info:
        lab.prepare_runs("degradation", dataset="cifar10", data_dir=str(cifar_dirs[1]), recipe="paper", epochs=3)
    assert info.value.key == "epochs"


# -- training on CIFAR -------------------------------------------------------------------------
def test_a_paper_recipe_run_on_the_fixture_is_deterministic_and_stops_at_its_last_step(cifar_dirs):
    settings = lab.TrainSettings(dataset="cifar10", data_dir=str(cifar_dirs[0]), device="cpu").with_overrides(
        recipe="paper", iterations=7)
    with training.torch_threads(lab.TRAIN_THREADS):
        run = lab.train(TINY, settings)
        again = lab.train(TINY, settings)
    assert run.status == "complete" and run.n_train == 200 and run.n_val == 100
    assert run.settings.epochs == 4 and [h.epoch for h in run.history] == [1, 2, 3, 4]
    # 7 steps, 2 a pass (the last pass 1): lr 0.1 to step 3.5, 0.01 to 5.25, then 0.001; each
    # epoch records its last step's
    assert [h.lr for h in run.history] == pytest.approx([0.1, 0.01, 0.001, 0.001])
    assert [h.train_loss for h in run.history] == [h.train_loss for h in again.history]
    assert all(math.isfinite(h.val_loss) and 0 <= h.val_acc <= 1 for h in run.history)
    assert run.config.in_channels == 3 and run.config.input_size == 32


def test_cli_trains_on_cifar_with_the_paper_recipe(cifar_dirs, capsys, tmp_path):
    rc = main(["lab", "custom", "--config", "resnet20", "--set", "depths=[1,1,1]", "--dataset", "cifar10",
               "--data-dir", str(cifar_dirs[1]), "--recipe", "paper", "--iterations", "4", "--seeds", "1",
               "--device", "cpu", "--json", "--store", str(tmp_path / "runs.sqlite")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["settings"]["dataset"] == "cifar10" and doc["settings"]["recipe"] == "paper"
    assert doc["settings"]["iterations"] == 4 and doc["settings"]["batch_size"] == 128
    assert doc["dataset"].startswith("CIFAR-10") and doc["status"] == "complete"
    assert doc["results"][0]["epochs"] == 2
    back = LabResult.from_dict(doc)
    assert back.settings.dataset == "cifar10" and back.to_dict()["results"] == doc["results"]


def test_estimate_calibrates_at_the_data_sets_input_and_counts_iterations(cifar_dirs, monkeypatch):
    narrow, wide = estimate._reference_configs("cifar10")
    assert (wide.in_channels, wide.input_size) == (3, 32)
    monkeypatch.setattr(estimate, "calibrate", lambda threads=1, dataset="digits": lab.REFERENCE)
    monkeypatch.setitem(sys.modules, "torch._dynamo", sys.modules.get("torch._dynamo", object()))  # no first-optimizer cost
    args = dict(dataset="cifar10", data_dir=str(cifar_dirs[1]), recipe="paper", seeds=1)
    short, long = (lab.estimate_seconds([TINY], iterations=n, **args) for n in (20, 200))
    assert 5 < long / short < 11  # ten times the steps (and passes), the build once
    # the same steps of the same batch: CIFAR's 32x32 colour images cost more than 8x8 digits
    digits = lab.estimate_seconds([TINY], epochs=1, max_train=256, batch_size=128, seeds=1)
    cifar10 = lab.estimate_seconds([TINY], iterations=2, **args)
    assert cifar10 > 2 * digits
    assert not lab.estimate_time([TINY], iterations=2, **{**args, "device": "cpu"}).gpu


# -- bugs ----------------------------------------------------------------------------------------
def _run(seed: int, losses: list[float], status: str) -> RunResult:
    history = tuple(EpochRecord("net", seed, e + 1, 0.1, loss, 0.5, loss, 0.1 * (e + 1), 1.0, e + 1.0)
                    for e, loss in enumerate(losses))
    return RunResult(lab.lab_config(TINY).replace(name="net"), lab.TrainSettings(epochs=3, seed=seed), 100, 8,
                     200, 100, history=history, status=status)


def test_a_cancelled_variant_averages_its_seeds_at_one_epoch():
    """Seed 0 finished epoch 2, seed 1 only epoch 1, both cut short: the row reads both at
    epoch 1 (and says so), never seed 0's epoch 2 beside seed 1's epoch 1."""
    res = LabResult("custom", "t", lab.TrainSettings(epochs=3), runs=(_run(0, [2.0, 1.0], "cancelled"),
                                                                         _run(1, [3.0], "cancelled")),
                    total_runs=2, status="cancelled", seeds=(0, 1))
    [row] = res.to_rows()
    assert row["epochs"] == 1 and row["seeds"] == 2
    assert row["train_loss"] == pytest.approx(2.5)  # (2.0 + 3.0) / 2, not (1.0 + 3.0) / 2
    assert row["val_acc"] == pytest.approx(0.1) and row["best_val_acc"] == pytest.approx(0.1)
    assert res.spread_of("net", "train_loss").values == (2.0, 3.0)
    finished = LabResult("custom", "t", lab.TrainSettings(epochs=3), runs=(_run(0, [2.0, 1.0, 0.5], "complete"),
                                                                           _run(1, [3.0, 2.0, 1.5], "complete")),
                         total_runs=2, seeds=(0, 1))
    assert finished.to_rows()[0]["epochs"] == 3 and finished.to_rows()[0]["train_loss"] == pytest.approx(1.0)


def test_an_exploding_validation_loss_is_divergence():
    assert training.diverged(2.0, 2.55e7, 10, steps=230)          # the run that was not marked
    assert training.diverged(float("nan"), 2.0, 10, steps=1)
    assert training.diverged(2.0, float("inf"), 10, steps=1)
    assert training.diverged(5000.0, 3.0, 10, steps=1)            # over 1000 x ln(10) = 2,303
    assert not training.diverged(2.0, 2000.0, 10, steps=500)
    assert not training.diverged(2.3, 3191.0, 10, steps=2)        # BatchNorm statistics not settled yet
    assert training.diverged(2.0, 5000.0, 100, steps=500)         # 1000 x ln(100) = 4,605
    assert not training.diverged(2.0, 4000.0, 100, steps=500)


def test_a_run_whose_loss_explodes_is_marked_diverged_and_stops():
    no_bn = TINY.replace(bn_position="none")
    run = lab.train(no_bn, lab.TrainSettings(epochs=4, max_train=200, batch_size=20, lr=5.0, weight_decay=0.0))
    assert run.status == "diverged" and len(run.history) < 4
    last = run.history[-1]
    assert not (math.isfinite(last.train_loss) and math.isfinite(last.val_loss)) or \
        max(last.train_loss, last.val_loss) > training.DIVERGED_FACTOR * math.log(10)


def test_lab_workers_do_not_run_the_app_page_again():
    """multiprocessing prepares each worker by running the main script's file as __mp_main__:
    under Streamlit that is app.py, which then drew the whole page in every worker without a
    ScriptRunContext (hundreds of warnings per run). As __mp_main__ it now does nothing."""
    probe = ("import runpy, sys; runpy.run_path(sys.argv[1], run_name=sys.argv[2]); "
             "print('explorer.app.page' in sys.modules)")
    as_worker = subprocess.run([sys.executable, "-c", probe, str(ROOT / "app.py"), "__mp_main__"],
                               capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert as_worker.returncode == 0, as_worker.stderr
    assert as_worker.stdout.strip() == "False" and "ScriptRunContext" not in as_worker.stderr
    as_script = subprocess.run([sys.executable, "-c", probe, str(ROOT / "app.py"), "__main__"],
                               capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert as_script.stdout.strip() == "True"  # run bare as the script, the page is drawn (and warns)
    assert "missing ScriptRunContext" in as_script.stderr


def test_fixture_has_the_official_file_names():
    assert set(LAYOUT["cifar10"][2]) == {f"data_batch_{i}" for i in range(1, 6)} | {"test_batch"}
    assert set(LAYOUT["cifar100"][2]) == {"train", "test"}
    assert all(cifar.SOURCES[k].folder == LAYOUT[k][0] and cifar.SOURCES[k].archive == LAYOUT[k][1] for k in LAYOUT)


# -- the app -------------------------------------------------------------------------------------
def test_app_lab_trains_on_cifar_from_the_servers_data_directory(cifar_dirs, tmp_path, monkeypatch):
    from test_app import fresh, show, table_with

    monkeypatch.setenv("RESNET_EXPLORER_STORE", str(tmp_path / "runs.sqlite"))
    monkeypatch.setenv(lab.DATA_DIR_VAR, str(tmp_path / "empty"))
    at = show(fresh({"preset": "resnet20"}), "Compare")
    at.button(key="compare_add").click().run()
    at = show(at, "Lab")
    at.selectbox(key="lab_experiment").select("custom").run()
    assert at.selectbox(key="lab_dataset").options[0].startswith("scikit-learn digits")
    at.selectbox(key="lab_dataset").select("cifar10").run()
    assert not at.exception
    # No data here: the page says how whoever runs the server gets it, naming no server variable.
    assert any("--download" in i.value and lab.DATA_DIR_VAR not in i.value for i in at.info)
    assert all(b.key != "lab_run" for b in at.button)
    monkeypatch.setenv(lab.DATA_DIR_VAR, str(cifar_dirs[1]))
    at.number_input(key="lab_epochs").set_value(1).run()
    at.selectbox(key="lab_seeds").select(1).run()
    at.button(key="lab_run").click().run()
    assert not at.exception
    results = table_with(at, "val_acc")
    assert list(results["run"]) == ["resnet20"] and list(results["epochs"]) == [1]
    assert at.selectbox(key="lab_recipe").options == ["quick (a few epochs)",
                                                      "paper (He et al. 2015: 64k iterations, batch 128)"]
    # a reload: the kept CIFAR result shows under CIFAR, not under the digits
    again = show(fresh({"preset": "resnet20"}), "Compare")
    again.button(key="compare_add").click().run()
    again = show(again, "Lab")
    again.selectbox(key="lab_experiment").select("custom").run()
    assert not any("Kept from an earlier run" in i.value for i in again.info)
    again.selectbox(key="lab_dataset").select("cifar10").run()
    assert any("Kept from an earlier run" in i.value for i in again.info)


def test_an_app_lab_run_in_worker_processes_logs_no_missing_context(monkeypatch):
    """While a two-seed Lab run trains in the app (worker processes, a relay thread, callbacks
    in the script's thread), this process logs no 'missing ScriptRunContext' warning."""
    import logging

    from test_app import custom_lab, table_with

    monkeypatch.setenv("RESNET_EXPLORER_STORE", "off")
    at = custom_lab(epochs=1, seeds=2)
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    logger.addHandler(handler)
    try:
        at.button(key="lab_run").click().run()
    finally:
        logger.removeHandler(handler)
    assert not at.exception and list(table_with(at, "val_acc")["seeds"]) == [2]
    assert not [m for m in seen if "missing ScriptRunContext" in m]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without a CUDA GPU")
def test_asking_for_a_gpu_that_is_not_there_is_said_before_training():
    with pytest.raises(ConfigError) as info:
        lab.prepare_runs([TINY], device="cuda")
    assert info.value.key == "device" and "no CUDA GPU" in str(info.value)
    assert lab.prepare_runs([TINY], device="auto").settings.device == "auto"
    assert training.train_device(lab.TrainSettings(dataset="cifar10")).type == "cpu"
