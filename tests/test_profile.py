"""Per-layer profile: rows cover the trace, the sum check is self-consistent, hooks stay private, CLI, app.

No timing assertions: what is checked is the shape of the result and that its figures agree
with each other, never how fast anything ran.
"""
import json
import math
import threading

import pytest
import torch
from streamlit.testing.v1 import AppTest
from torch import nn

import explorer
from explorer import ConfigError
from explorer.__main__ import main
from explorer.app import store
from explorer.limits import PROFILE_BUDGET_S
from explorer.timing import PROFILE_TOP, ProfileResult, profile_latency, stage_shares
from explorer.timing.profile import COVERAGE_TOLERANCE
from explorer.trace import trace

FAST = dict(device="cpu", threads=1, budget_s=0.0, min_passes=3)
SMALL18 = explorer.preset("resnet18").replace(input_size=64)


@pytest.fixture(scope="module")
def r18() -> ProfileResult:
    return profile_latency(SMALL18, batch=1, **FAST)


def assert_consistent(p: ProfileResult) -> None:
    """Totals, shares, coverage and the note agree with the rows they come from."""
    assert p.total_ms == pytest.approx(sum(r.ms for r in p.rows))
    assert p.coverage == pytest.approx(p.total_ms / p.whole_ms)
    assert p.overhead == pytest.approx(p.instrumented_ms / p.whole_ms - 1)
    assert sum(r.share for r in p.rows) == pytest.approx(1.0)
    assert sum(share for _s, _ms, share in p.stages) == pytest.approx(1.0)
    assert all(r.ms >= 0 for r in p.rows) and p.whole_ms > 0
    off = abs(p.coverage - 1) > COVERAGE_TOLERANCE
    assert bool(p.note) == off, (p.coverage, p.note)
    if off:  # the note says by how much and why
        assert f"{abs(p.coverage - 1):.0%}" in p.note
        assert any(why in p.note for why in ("between modules", "slower", "faster", "noisy", "median"))


def test_profile_covers_every_conv_and_op_of_the_trace(r18):
    t = trace(SMALL18)
    modules = {r.module for r in r18.rows}
    assert {n.id for n in t.nodes if n.kind == "conv"} <= modules
    assert {n.id for n in t.nodes if n.kind not in ("input", "output")} == modules  # adds and flatten too
    assert [r.module for r in r18.rows] == [n.id for n in t.nodes if n.id in modules]  # execution order
    by_id = t.by_id
    for r in r18.rows:
        assert r.kind == by_id[r.module].kind and r.unit == by_id[r.module].unit
    assert {r.stage for r in r18.rows} == {"stem", "layer1", "layer2", "layer3", "layer4", "head"}
    assert r18.input_shape == (1, 3, 64, 64) and r18.device == "cpu" and r18.passes >= 3


def test_profile_sum_check_is_self_consistent(r18):
    assert_consistent(r18)
    assert r18.unattributed_ms >= 0 and r18.instrumented_ms > 0


def test_stage_shares_in_network_order(r18):
    shares = stage_shares(r18)
    assert list(shares) == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]
    for stage, share in shares.items():
        assert share == pytest.approx(sum(r.share for r in r18.rows if r.stage == stage))
    assert stage_shares(r18.to_dict()) == shares


def test_times_and_dict_shape(r18):
    times = r18.times()
    assert times["layer1.0.conv1"] == next(r.ms for r in r18.rows if r.module == "layer1.0.conv1")
    assert "layer1.0.add" in times and "flatten" in times
    d = r18.to_dict()
    json.dumps(d)
    for key in ("whole_ms", "total_ms", "coverage", "note", "device", "device_name", "batch", "stages",
                "instrumented_ms", "unattributed_ms", "overhead", "method"):
        assert key in d
    assert len(d["profile"]) == len(r18.rows)
    assert set(d["profile"][0]) >= {"module", "kind", "ms", "stage", "share"}
    top = r18.top(5)
    assert len(top) == 5 and [r.ms for r in top] == sorted((r.ms for r in r18.rows), reverse=True)[:5]
    assert len(r18.top()) == PROFILE_TOP


def test_profile_round_trips_through_its_json_document(r18):
    doc = json.loads(json.dumps(r18.to_dict()))
    back = ProfileResult.from_dict(doc)
    assert back == r18
    assert back.top(3) == r18.top(3) and back.stage_shares() == r18.stage_shares()
    assert ProfileResult.from_dict({"config": SMALL18.to_dict(), **doc}) == r18  # as `--profile --json` prints it


def test_profile_default_budget_is_the_limits_module_s():
    p = profile_latency(explorer.preset("resnet20"), device="cpu", threads=1, min_passes=1, max_passes=1)
    assert p.budget_s == PROFILE_BUDGET_S and p.passes == 1


def test_profile_refuses_compile():
    with pytest.raises(ConfigError) as e:
        profile_latency(explorer.preset("resnet20"), compile=True, **FAST)
    assert e.value.key == "compile"


def test_note_when_the_sum_is_off():
    from explorer.timing.profile import _note

    assert _note(total=9.5, whole=10.0, gap=0.3, spans=10.2, noisy=False) == ""
    note = _note(total=6.0, whole=10.0, gap=3.0, spans=13.0, noisy=False)
    assert "40% below" in note and "3 ms per pass went between modules" in note and "30% slower" in note
    assert "noisy" in _note(total=13.0, whole=10.0, gap=0.0, spans=10.0, noisy=True)


def test_callers_model_is_not_hooked_moved_or_switched():
    model = explorer.build_model(explorer.preset("resnet20")).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    p = profile_latency(model, **FAST)
    assert_consistent(p)
    assert model.training
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert any(r.kind == "zero_pad" for r in p.rows)  # option A shortcuts are modules too


def test_hooks_are_removed_and_another_thread_s_model_is_untouched(monkeypatch):
    """A forward of another model in another thread while a profile runs sees no hooks."""
    from explorer.timing import profile as prof

    other = explorer.build_model(explorer.preset("resnet20")).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        want = other(x)
    copies, seen, outs = [], [], []
    real = prof._hooked_pass

    def spy(model, *args):
        copies.append(model)
        seen.append(sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in other.modules()))
        return real(model, *args)

    monkeypatch.setattr(prof, "_hooked_pass", spy)
    stop = threading.Event()

    def forwards():
        with torch.inference_mode():
            while not stop.is_set():
                outs.append(other(x))

    t = threading.Thread(target=forwards)
    t.start()
    try:
        profile_latency(explorer.preset("resnet20"), device="cpu", threads=1, budget_s=0.3, min_passes=3)
    finally:
        stop.set()
        t.join()
    assert outs and all(torch.equal(o, want) for o in outs)
    assert seen and not any(seen)
    for m in copies[-1].modules():  # the profiled copy itself: no hook left after the last pass
        assert not m._forward_hooks and not m._forward_pre_hooks


def test_a_module_without_a_trace_is_profiled_by_leaf():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Sequential(nn.Conv2d(8, 8, 3), nn.ReLU()), nn.Flatten())
    p = profile_latency(model, input_shape=(3, 16, 16), **FAST)
    assert [(r.module, r.kind, r.stage) for r in p.rows] == [
        ("0", "conv2d", "0"), ("1", "relu", "1"), ("2.0", "conv2d", "2"), ("2.1", "relu", "2"),
        ("3", "flatten", "3")]
    assert_consistent(p)


@pytest.mark.parametrize("settings, key", [
    (dict(batch=0), "batch"), (dict(dtype="fp8"), "dtype"), (dict(budget_s=-1), "budget_s"),
    (dict(min_passes=0), "min_passes"), (dict(channels_last="yes"), "channels_last"), (dict(device="tpu"), "device"),
])
def test_bad_settings_raise_config_error(settings, key):
    with pytest.raises(ConfigError) as e:
        profile_latency(explorer.preset("resnet20"), **{**FAST, **settings})
    assert e.value.key == key


def test_channels_last_and_bf16_profile():
    p = profile_latency(explorer.preset("resnet20"), dtype="bf16", channels_last=True, **FAST)
    assert p.dtype == "bf16" and p.channels_last
    assert_consistent(p)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_profile_with_events_and_the_model_stays_on_cpu():
    model = explorer.build_model(explorer.preset("resnet20"))
    p = profile_latency(model, device="cuda", budget_s=0.0, min_passes=3)
    assert p.device.startswith("cuda") and "CUDA events" in p.method
    assert_consistent(p)
    assert next(model.parameters()).device.type == "cpu"


# -- command line ----------------------------------------------------------------------------
def test_cli_profile_json(capsys):
    rc = main(["latency", "resnet20", "--profile", "--json", "--device", "cpu", "--threads", "1", "--budget", "0"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("profile", "whole_ms", "total_ms", "coverage", "note", "device", "device_name", "batch", "stages"):
        assert key in doc
    assert doc["config"]["name"] == "resnet20" and doc["device"] == "cpu" and doc["batch"] == 1
    convs = {n.id for n in trace(explorer.preset("resnet20")).nodes if n.kind == "conv"}
    assert convs <= {r["module"] for r in doc["profile"]}
    for r in doc["profile"]:
        assert {"module", "kind", "ms", "stage", "share"} <= set(r)
    assert doc["total_ms"] == pytest.approx(sum(r["ms"] for r in doc["profile"]))
    assert doc["coverage"] == pytest.approx(doc["total_ms"] / doc["whole_ms"])
    assert math.isfinite(doc["coverage"])


def test_cli_profile_text_top(capsys):
    rc = main(["latency", "resnet20", "--profile", "--top", "4", "--device", "cpu", "--threads", "1", "--budget", "0"])
    assert rc == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["module", "kind"])
    assert lines[header + 5].strip().startswith("... ")  # four rows, then the rest summed
    assert "stages: stem" in out and "sum check: rows" in out and "whole-model median" in out


@pytest.mark.parametrize("flag", ["--sweep", "--compile"])
def test_cli_profile_refuses_sweep_and_compile(flag, capsys):
    assert main(["latency", "resnet20", "--profile", flag, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and flag in err


# -- app -------------------------------------------------------------------------------------
def test_profile_key_ignores_compile():
    s = store.LatencySettings(device="cpu", batch=1, dtype="fp32", channels_last=False, compile=True, threads=1)
    cfg = explorer.preset("resnet20")
    assert store.profile_key(cfg, s) == store.profile_key(cfg, store.LatencySettings(**{**s.kwargs(), "compile": False}))
    assert "compile" not in s.profile_kwargs()


def test_app_profile_button_shows_the_table_and_stage_chart():
    from pathlib import Path

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=180).run()
    at.session_state["view"] = "Latency"
    at.run()
    at.selectbox(key="preset").select("resnet20").run()
    at.selectbox(key="lat_threads").select(1).run()
    at.button(key="lat_profile").click().run()
    assert not at.exception
    table = next(df.value for df in at.dataframe if "module" in df.value.columns)
    assert {"module", "kind", "stage", "time", "share %"} <= set(table.columns)  # time in engineering units
    assert 0 < len(table) <= 15
    # the table is the stored result's own top rows, slowest first
    profile = next(v for k, v in at.session_state["latency_results"].items() if k[0] == "profile")
    assert list(table["module"]) == [r.module for r in profile.top(PROFILE_TOP)]
    assert any("Per-layer profile on" in c.value for c in at.caption)
    assert any("whole-model median" in c.value for c in at.caption)
