"""Latency engine: result structure, the caller's model untouched, lock, budget, settings, CLI."""
import io
import json
import threading
import time

import pytest
import torch
from torch import nn

import explorer
from explorer import ArchConfig, ConfigError
from explorer.__main__ import main
from explorer.limits import LATENCY_BUDGET_S, SWEEP_BUDGET_S
from explorer.timing import (
    STOP_TEXT, LatencyError, LatencyResult, MeasurementCancelled, SkippedBatch, SweepResult, TimingSettings,
    available_devices, batch_sweep, default_threads, device_label, device_lock, measure_latency,
)
from explorer.timing import core, gate, memory
from explorer.timing.passes import percentile
from explorer.timing.results import STOP_REASONS

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")


def tiny(**kw) -> ArchConfig:
    base = dict(name="tiny", stem="cifar", stem_width=8, widths=[8, 16], depths=[1, 1],
                input_size=32, num_classes=10)
    base.update(kw)
    return ArchConfig.from_dict(base)


FAST = dict(device="cpu", threads=1, budget_s=0.0, warmup=1, min_samples=5)


class Sleeper(nn.Module):
    """A pass that takes at least `seconds` (time.sleep only overshoots), logging who ran it."""

    log: list = []  # class attribute: shared by deep copies

    def __init__(self, seconds=0.0, alternate=None):
        super().__init__()
        self.lin = nn.Linear(4, 2)
        self.seconds, self.alternate, self.calls = seconds, alternate, 0

    def forward(self, x):
        Sleeper.log.append(threading.current_thread().name)
        self.calls += 1
        s = self.alternate if self.alternate is not None and self.calls % 2 else self.seconds
        time.sleep(s)
        return self.lin(x)


# -- result structure ----------------------------------------------------------------------
def test_result_structure_on_cpu():
    r = measure_latency(tiny(), device="cpu", threads=1, budget_s=0.1, max_samples=40)
    assert isinstance(r, LatencyResult)
    assert r.device == "cpu" and r.threads == 1
    assert r.device_name.startswith("CPU (") and "1 thread" in r.device_name
    assert r.torch_version == torch.__version__
    assert 5 <= r.samples <= 40 and r.samples == len(r.times_ms)
    assert r.min_ms <= r.p10_ms <= r.median_ms <= r.p90_ms <= max(r.times_ms)
    assert r.iqr_ms >= 0
    assert r.throughput == pytest.approx(r.batch * 1000 / r.median_ms)
    assert r.input_shape == (1, 3, 32, 32)
    assert r.peak_memory_bytes is None and r.compile_s is None
    d = r.to_dict()
    for key in ("device", "device_name", "batch", "median_ms", "p10_ms", "p90_ms", "iqr_ms", "throughput",
                "samples", "noisy", "dtype", "channels_last", "torch_version", "threads", "compile_s"):
        assert key in d
    assert len(d["times_ms"]) == r.samples
    json.dumps(d)


def test_latency_result_round_trips_through_its_json_document():
    r = measure_latency(tiny(), batch=2, **FAST)
    doc = json.loads(json.dumps(r.to_dict()))
    assert LatencyResult.from_dict(doc) == r
    assert LatencyResult.from_dict({"config": tiny().to_dict(), **doc}) == r  # as `latency --json` prints it


def test_settings_object_and_options_are_one_measurement():
    s = TimingSettings(device="cpu", threads=1, budget_s=0.0, warmup=1, min_samples=3)
    r = measure_latency(tiny(), s, batch=2)
    assert (r.batch, r.samples, r.threads, r.budget_s) == (2, 3, 1, 0.0)
    assert TimingSettings().budget_s == LATENCY_BUDGET_S
    with pytest.raises(TypeError, match="bugdet_s"):
        measure_latency(tiny(), device="cpu", bugdet_s=0.0)  # a misspelt option goes no further


class ThreadSpy(nn.Module):
    """Records the CPU thread count torch runs each pass at."""

    seen: list = []  # class attribute: shared by deep copies

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x):
        ThreadSpy.seen.append(torch.get_num_threads())
        return self.lin(x)


def test_default_threads_hold_when_the_process_count_was_changed():
    """A measurement "at torch's default" runs at the count resolved once for the process and
    says that number, even when something in the process (an in-process training run) has set
    torch's count to another number meanwhile."""
    default = default_threads()
    other = 1 if default != 1 else 2
    before = torch.get_num_threads()
    torch.set_num_threads(other)
    try:
        ThreadSpy.seen.clear()
        r = measure_latency(ThreadSpy(), device="cpu", threads=None, budget_s=0.0, warmup=1, min_samples=3,
                            input_shape=(4,))
        assert torch.get_num_threads() == other  # the count found is restored after timing
    finally:
        torch.set_num_threads(before)
    assert set(ThreadSpy.seen) == {default}
    assert r.threads == default
    assert f", {default} thread" in r.device_name
    assert device_label("cpu") == device_label("cpu", default)


def test_percentile_interpolates():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 5.0
    assert percentile(values, 10) == pytest.approx(1.4)
    assert percentile([7.0], 90) == 7.0


def test_batch_dtype_layout_are_reported():
    r = measure_latency(tiny(), batch=4, dtype="bf16", channels_last=True, **FAST)
    assert (r.batch, r.requested_batch, r.dtype, r.channels_last) == (4, 4, "bf16", True)
    assert r.input_shape == (4, 3, 32, 32)
    assert r.throughput == pytest.approx(4000 / r.median_ms)


def test_noisy_flag_on_a_spread_out_model():
    r = measure_latency(Sleeper(0.002, alternate=0.012), device="cpu", threads=1, budget_s=0.0, warmup=0,
                        min_samples=8, input_shape=(4,))
    assert r.noisy
    assert r.iqr_ms > 0.2 * r.median_ms


# -- the caller's model ---------------------------------------------------------------------
def test_callers_model_left_untouched():
    model = explorer.build_model(tiny())
    model.train()
    model.fc.weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    measure_latency(model, dtype="bf16", channels_last=True, **FAST)
    assert model.training and all(m.training for m in model.modules())
    assert not model.fc.weight.requires_grad and model.conv1.weight.requires_grad
    after = model.state_dict()
    for k, v in before.items():  # BN running stats included: no pass ran in training mode
        assert after[k].dtype == v.dtype and after[k].device == v.device
        assert torch.equal(after[k], v), k
    assert model.conv1.weight.is_contiguous()  # not switched to channels_last


def test_generic_module_needs_an_input_shape():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(ConfigError, match="input_shape"):
        measure_latency(net, **FAST)
    r = measure_latency(net, input_shape=(3, 16, 16), **FAST)
    assert r.input_shape == (1, 3, 16, 16) and r.name == "Sequential"


def test_meta_model_is_refused():
    with torch.device("meta"):
        model = explorer.build_model(tiny())
    with pytest.raises(ConfigError, match="meta"):
        measure_latency(model, **FAST)


# -- bad settings ---------------------------------------------------------------------------
@pytest.mark.parametrize("settings, key", [
    (dict(device="tpu"), "device"),
    (dict(device=3), "device"),
    (dict(batch=0), "batch"),
    (dict(batch=2.5), "batch"),
    (dict(batch=True), "batch"),
    (dict(batch=10**6), "batch"),
    (dict(dtype="int8"), "dtype"),
    (dict(device="cpu", dtype="fp16"), "dtype"),
    (dict(budget_s=-1), "budget_s"),
    (dict(budget_s=float("nan")), "budget_s"),
    (dict(threads=0), "threads"),
    (dict(min_samples=0), "min_samples"),
    (dict(channels_last="yes"), "channels_last"),
] + ([] if CUDA else [(dict(device="cuda"), "device"), (dict(device="cuda:0"), "device")]))
def test_bad_settings_raise_config_error(settings, key):
    with pytest.raises(ConfigError) as info:
        measure_latency(tiny(), **{**dict(device="cpu"), **settings})
    assert info.value.key == key


def test_fp16_on_cpu_message_says_why():
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        measure_latency(tiny(), device="cpu", dtype="fp16")


def test_not_a_model():
    with pytest.raises(ConfigError, match="ArchConfig or a torch.nn.Module"):
        measure_latency("resnet18", device="cpu")


def test_batch_too_large_for_cpu_memory_is_refused():
    big = tiny(input_size=1024)  # ~100 MB of activations an image: 4096 images cannot fit
    with pytest.raises(ConfigError) as info:
        measure_latency(big, device="cpu", batch=4096, threads=1)
    assert info.value.key == "batch" and "GiB" in str(info.value)


# -- lock, budget, progress -----------------------------------------------------------------
def test_lock_serialises_concurrent_callers():
    Sleeper.log.clear()
    errors = []

    def work():
        try:
            measure_latency(Sleeper(0.001), device="cpu", threads=1, budget_s=0.0, warmup=2, min_samples=8,
                            input_shape=(4,))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, name=f"caller{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(set(Sleeper.log)) == ["caller0", "caller1"] and len(Sleeper.log) == 20
    switches = sum(1 for a, b in zip(Sleeper.log, Sleeper.log[1:]) if a != b)
    assert switches == 1  # one caller's passes all ran before the other's


def test_time_budget_stops_sampling():
    # Each pass sleeps >= 20 ms, so a 0.2 s budget has room for at most 10 passes in all.
    r = measure_latency(Sleeper(0.02), device="cpu", threads=1, budget_s=0.2, warmup=0, min_samples=1,
                        max_samples=1000, input_shape=(4,))
    assert 1 <= r.samples and r.warmup + r.samples <= 11
    assert r.elapsed_s >= 0.2  # it did use the budget rather than stopping early


def test_zero_budget_takes_exactly_the_minimum():
    r = measure_latency(tiny(), device="cpu", threads=1, budget_s=0.0, warmup=3, min_samples=4)
    assert (r.warmup, r.samples) == (3, 4)


def test_max_samples_caps_a_long_budget():
    r = measure_latency(tiny(), device="cpu", threads=1, budget_s=60.0, warmup=1, min_samples=2, max_samples=7)
    assert r.samples == 7


def test_progress_reports_and_threads_are_restored():
    seen = []
    threads_before = torch.get_num_threads()
    measure_latency(tiny(), progress=seen.append, **FAST)
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert all(0.0 <= a <= b <= 1.0 for a, b in zip(seen, seen[1:]))
    assert torch.get_num_threads() == threads_before


@pytest.mark.parametrize("how", ["return", "raise"])
def test_progress_callback_cancels(how):
    def stop(_fraction):
        if how == "return":
            return False
        raise MeasurementCancelled("user pressed stop")

    with pytest.raises(MeasurementCancelled):
        measure_latency(tiny(), **FAST, progress=stop)
    # The lock was released: another thread can take it at once.
    got = []

    def try_lock():
        ok = device_lock().acquire(blocking=False)
        got.append(ok)
        if ok:
            device_lock().release()

    t = threading.Thread(target=try_lock)
    t.start()
    t.join()
    assert got == [True]


# -- devices ----------------------------------------------------------------------------------
def test_available_devices_and_labels():
    devices = available_devices()
    assert devices[-1] == "cpu"
    assert ("cuda" in devices) == CUDA
    assert device_label("cpu", 3).startswith("CPU (") and device_label("cpu", 3).endswith(", 3 threads)")
    assert device_label("cpu", 1).endswith(", 1 thread)")


# -- batch sweep ------------------------------------------------------------------------------
def test_batch_sweep_rows():
    s = batch_sweep(tiny(), device="cpu", batches=(4, 1, 2), budget_s=30, per_batch_s=0.0, min_samples=3,
                    threads=1)
    assert s.stopped == "done"
    assert [r.batch for r in s] == [1, 2, 4]
    for r in s:
        assert r.p10_ms <= r.median_ms <= r.p90_ms
        assert r.throughput == pytest.approx(r.batch * 1000 / r.median_ms)
        assert r.ms_per_image == pytest.approx(r.median_ms / r.batch)
        assert r.device == "cpu" and r.samples >= 3
    assert SweepResult.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert s.to_dict()["rows"][0]["ms_per_image"] == s[0].ms_per_image


def test_batch_sweep_stops_on_time():
    # batch 1 takes >= 4 x 50 ms; batch 64 is predicted to take 64x that: past the budget.
    s = batch_sweep(Sleeper(0.05), device="cpu", batches=(1, 64), budget_s=1.0, per_batch_s=0.0,
                    min_samples=3, threads=1, input_shape=(4,))
    assert s.stopped == "time" and [r.batch for r in s] == [1]


def test_batch_sweep_stops_on_memory():
    s = batch_sweep(tiny(input_size=1024), device="cpu", batches=(1, 4096), budget_s=60, per_batch_s=0.0,
                    min_samples=1, threads=1)
    assert s.stopped == "memory" and [r.batch for r in s] == [1]


def test_batch_sweep_says_why_each_planned_size_was_skipped():
    # A budget far too small for the larger sizes: whatever the timings, the measured and the
    # skipped sizes together are the planned ones, and every skipped size carries a reason.
    planned = (1, 8, 32, 128, 512)
    s = batch_sweep(Sleeper(0.02), device="cpu", batches=planned, budget_s=0.3, per_batch_s=0.0,
                    min_samples=3, threads=1, input_shape=(4,))
    measured = [r.batch for r in s]
    skipped = [k.batch for k in s.skipped]
    assert sorted(measured + skipped) == list(planned) and not set(measured) & set(skipped)
    assert skipped, "a 0.3 s budget cannot hold batch 512 of 20 ms passes"
    assert all(k.reason in STOP_REASONS for k in s.skipped)
    assert {k.reason for k in s.skipped} == {s.stopped}
    doc = json.loads(json.dumps(s.to_dict()))
    assert doc["skipped"] == [{"batch": k.batch, "reason": k.reason} for k in s.skipped] and doc["budget_s"] == 0.3
    assert SweepResult.from_dict(doc) == s
    text = s.skipped_text()
    assert text.startswith("batch ") and ", ".join(map(str, skipped)) in text


def test_batch_sweep_done_skips_nothing_and_memory_is_named():
    s = batch_sweep(tiny(), device="cpu", batches=(1, 2), budget_s=30, per_batch_s=0.0, min_samples=1, threads=1)
    assert s.stopped == "done" and s.skipped == () and s.stop_text() == STOP_TEXT["done"]
    s = batch_sweep(tiny(input_size=1024), device="cpu", batches=(1, 2048, 4096), budget_s=60, per_batch_s=0.0,
                    min_samples=1, threads=1)
    assert s.skipped == (SkippedBatch(2048, "memory"), SkippedBatch(4096, "memory"))
    assert s.skipped_text() == "batch 2048, 4096 not measured: did not fit in memory"
    assert s.stop_text() == "stopped before batch 2048: did not fit in memory"
    timed_out = SweepResult((), "time", "cpu", "CPU", skipped=(SkippedBatch(512, "time"), SkippedBatch(2048, "time")),
                            budget_s=20.0)
    assert timed_out.skipped_text() == "batch 512, 2048 not measured: the budget of 20 s ran out"


def test_every_stop_reason_has_its_text_and_the_cli_says_cancelled():
    from explorer.cli.latency import print_sweep

    assert set(STOP_TEXT) == set(STOP_REASONS) == {"done", "time", "memory", "cancelled"}
    s = SweepResult((), "cancelled", "cpu", "CPU X", skipped=(SkippedBatch(8, "cancelled"),), budget_s=20.0)
    out = io.StringIO()
    print_sweep("net", s, out=out)
    assert "stopped before batch 8: cancelled" in out.getvalue()


def test_batch_sweep_cancelled_after_a_row_keeps_it():
    calls = []

    def progress(f):
        calls.append(f)
        return f <= 0.5  # stop inside the second of two sizes (the first ends at 0.5)

    s = batch_sweep(tiny(), device="cpu", batches=(1, 2), budget_s=30, per_batch_s=0.0, min_samples=1, threads=1,
                    progress=progress)
    assert s.stopped == "cancelled" and [r.batch for r in s] == [1]
    assert s.skipped == (SkippedBatch(2, "cancelled"),)


def test_batch_sweep_bad_batches():
    with pytest.raises(ConfigError):
        batch_sweep(tiny(), device="cpu", batches=())
    with pytest.raises(ConfigError):
        batch_sweep(tiny(), device="cpu", batches=(1, 0))


# -- CUDA (run where a GPU is present) ----------------------------------------------------------
@needs_cuda
def test_cuda_result_and_model_stays_on_cpu():
    model = explorer.build_model(tiny())
    r = measure_latency(model, device="cuda", budget_s=0.2)
    assert r.device.startswith("cuda") and r.device_name.startswith("CUDA: ") and "GiB" in r.device_name
    assert r.p10_ms <= r.median_ms <= r.p90_ms and r.samples >= 5
    assert r.peak_memory_bytes is not None and r.peak_memory_bytes > 0
    assert next(model.parameters()).device.type == "cpu" and model.training
    assert measure_latency(tiny(), device="auto", budget_s=0.0).device.startswith("cuda")


@needs_cuda
@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_cuda_half_precisions(dtype):
    if dtype == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("no bf16 on this GPU")
    r = measure_latency(tiny(), device="cuda", dtype=dtype, channels_last=True, batch=8, budget_s=0.1)
    assert r.dtype == dtype and r.batch == 8


@needs_cuda
def test_cuda_out_of_memory_retries_smaller():
    free, _ = torch.cuda.mem_get_info()
    side = 2048
    per_image = 64 * side * side * 4 * 3  # a few 64-channel maps at 2048x2048
    batch = min(4096, int(free / per_image * 4))
    if batch <= 1:
        pytest.skip("GPU too small for this check")
    net = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1))
    r = measure_latency(net, device="cuda", batch=batch, input_shape=(3, side, side), budget_s=0.0,
                        min_samples=1, warmup=1)
    assert r.batch < r.requested_batch == batch
    assert any("out of GPU memory" in w for w in r.warnings)


# -- CLI ------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_file(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(tiny().to_json())
    return str(path)


def test_cli_latency_json(tiny_file, capsys):
    code = main(["latency", tiny_file, "--device", "cpu", "--batch", "2", "--budget", "0", "--threads", "1",
                 "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("device", "device_name", "batch", "median_ms", "p10_ms", "p90_ms", "throughput", "samples"):
        assert key in doc
    assert doc["batch"] == 2 and doc["device"] == "cpu"
    assert ArchConfig.from_dict(doc["config"]) == tiny()


def test_cli_latency_text_and_sweep(tiny_file, capsys):
    assert main(["latency", tiny_file, "--device", "cpu", "--budget", "0", "--threads", "1",
                 "--set", "name=small"]) == 0
    out = capsys.readouterr().out
    assert "small on CPU (" in out and ", 1 thread)" in out and "median" in out and "e+" not in out
    assert main(["latency", tiny_file, "--device", "cpu", "--sweep", "--budget", "2", "--threads", "1"]) == 0
    assert "batch sweep" in capsys.readouterr().out


@pytest.mark.parametrize("args, key", [
    (["--device", "gpu"], "device"),
    (["--batch", "0"], "batch"),
    (["--device", "cpu", "--dtype", "fp16"], "dtype"),
])
def test_cli_latency_bad_settings_one_line(tiny_file, capsys, args, key):
    assert main(["latency", tiny_file, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {key}=") and err.count("\n") == 1


def test_forward_failure_is_one_clear_error():
    with pytest.raises(LatencyError, match="forward pass failed"):
        measure_latency(nn.Conv2d(3, 4, 3), device="cpu", input_shape=(5, 8, 8), **{"threads": 1})


def test_config_too_big_for_free_memory_is_refused_before_it_is_built(monkeypatch):
    built = []
    real_build = core.build_model
    monkeypatch.setattr(core, "build_model", lambda cfg: built.append(cfg) or real_build(cfg))
    weights = explorer.facts.costs.measure_costs(explorer.preset("resnet50")).weight_bytes  # ~98 MiB
    # A machine with a little less free memory than twice those weights: they alone do not fit.
    monkeypatch.setattr(memory, "free_memory_bytes", lambda dev: 2 * weights - 2**20)
    with pytest.raises(LatencyError, match="weights alone need 0.1 GiB"):
        measure_latency(explorer.preset("resnet50"), device="cpu", threads=1)
    # With room for the weights but not a big batch: the batch is refused, still before building.
    monkeypatch.setattr(memory, "free_memory_bytes", lambda dev: 4 * weights)
    with pytest.raises(ConfigError) as info:
        measure_latency(explorer.preset("resnet50"), device="cpu", threads=1, batch=256)
    assert info.value.key == "batch" and "weights and activations" in str(info.value)
    assert built == []


# -- size limits ----------------------------------------------------------------------------------
def test_config_over_the_size_limits_is_refused_before_it_is_built(monkeypatch):
    built = []
    real_build = core.build_model
    monkeypatch.setattr(core, "build_model", lambda cfg: built.append(cfg) or real_build(cfg))
    monkeypatch.setenv("RESNET_EXPLORER_MAX_WEIGHT_LAYERS", "3")  # tiny() has more
    with pytest.raises(ConfigError) as info:
        measure_latency(tiny(), **FAST)
    assert info.value.key == "depths" and "MAX_WEIGHT_LAYERS" in str(info.value)
    with pytest.raises(ConfigError):
        batch_sweep(tiny(), device="cpu", batches=(1, 2), budget_s=0.0, per_batch_s=0.0, threads=1)
    assert built == []
    monkeypatch.delenv("RESNET_EXPLORER_MAX_WEIGHT_LAYERS")
    assert measure_latency(tiny(), **FAST).samples == 5


# -- the Lab gate -------------------------------------------------------------------------------
@pytest.fixture
def step_in_flight(monkeypatch):
    """A Lab training step that stays in flight, and a gate that waits only 50 ms for it."""
    monkeypatch.setattr(gate, "STEP_WAIT_S", 0.05)
    assert gate.begin_training_step()
    try:
        yield
    finally:
        gate.end_training_step()


def test_result_says_the_gate_gave_up_waiting_for_training(step_in_flight):
    r = measure_latency(tiny(), **FAST)
    assert r.gate_timed_out
    assert any("1 Lab training step still running" in w for w in r.warnings)
    assert r.to_dict()["gate_timed_out"] is True
    json.dumps(r.to_dict())


def test_result_without_training_in_flight_is_not_flagged():
    r = measure_latency(tiny(), **FAST)
    assert not r.gate_timed_out and not any("Lab training" in w for w in r.warnings)


def test_sweep_says_which_batches_shared_the_machine_with_training(step_in_flight):
    s = batch_sweep(tiny(), device="cpu", batches=(1, 2), budget_s=30, per_batch_s=0.0, min_samples=3, threads=1)
    assert [r.batch for r in s] == [1, 2]
    assert len(s.warnings) == 2 and all("Lab training" in w for w in s.warnings)
    assert s.to_dict()["warnings"] == list(s.warnings)


def test_cli_latency_prints_a_line_when_the_gate_gave_up(tiny_file, capsys, step_in_flight):
    assert main(["latency", tiny_file, "--device", "cpu", "--budget", "0", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "warning: 1 Lab training step still running after waiting" in out
    assert main(["latency", tiny_file, "--device", "cpu", "--budget", "0", "--threads", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["gate_timed_out"] is True


def test_a_sweep_waits_for_training_once_not_per_batch(step_in_flight, monkeypatch):
    waits = []
    real_wait_for = gate._GATE.wait_for
    monkeypatch.setattr(gate._GATE, "wait_for", lambda *a, **kw: waits.append(1) or real_wait_for(*a, **kw))
    batch_sweep(tiny(), device="cpu", batches=(1, 2, 4), budget_s=30, per_batch_s=0.0, min_samples=3, threads=1)
    assert len(waits) == 1


# -- budgets ------------------------------------------------------------------------------------
def test_default_budgets_are_the_limits_module_s():
    s = batch_sweep(tiny(), device="cpu", batches=(1,), per_batch_s=0.0, threads=1)
    assert s.budget_s == SWEEP_BUDGET_S
    assert measure_latency.__module__ == "explorer.timing.measure" and TimingSettings().budget_s == LATENCY_BUDGET_S


def test_one_vocabulary_of_dtypes_for_costs_and_timing():
    from typing import get_args

    from explorer import vocab
    from explorer.facts import costs
    from explorer.timing.devices import DTYPE_INFO

    assert costs.DTYPE_BYTES is vocab.DTYPE_BYTES
    assert list(DTYPE_INFO) == list(vocab.DTYPE_BYTES) == list(get_args(vocab.Dtype))
    for name, info in DTYPE_INFO.items():  # bytes per element agree with torch's own
        assert torch.empty((), dtype=info.torch_dtype).element_size() == vocab.DTYPE_BYTES[name]
