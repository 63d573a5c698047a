"""The command line: python -m explorer summary ..."""
import json
import subprocess
import sys

import pytest
import torch

import explorer
from explorer.__main__ import main


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_summary_json_gives_the_published_figures_and_reloads(tmp_path):
    rc, out, err = run_cli("summary", "resnet50", "--json")
    assert rc == 0, err
    s = json.loads(out)
    cfg = explorer.preset("resnet50")
    assert explorer.ArchConfig.from_dict(s["config"]) == cfg
    # torchvision's published figures for resnet50: 25,557,032 parameters, 4.089 GMACs at 224x224
    assert s["params"] == s["trainable_params"] == 25_557_032
    assert round(s["macs"] / 1e9, 3) == 4.089
    assert s["output_shape"] == [1, 1000] and s["warnings"] == []
    # one entry per residual unit, each shortcut costing what the built module's shortcut holds
    with torch.device("meta"):
        model = explorer.build_model(cfg)
    assert [u["name"] for u in s["units"]] == [f"layer{i + 1}.{j}" for i, d in enumerate(cfg.depths)
                                               for j in range(d)]
    for unit in s["units"]:
        block = model.get_submodule(unit["name"])
        projected = getattr(block, "downsample", None) is not None
        assert unit["shortcut"] == ("projection" if projected else "identity"), unit
        assert unit["shortcut_params"] == (sum(p.numel() for p in block.downsample.parameters())
                                           if projected else 0), unit
    first = s["units"][0]  # 64 -> 256 channels at 56x56: a 1x1 conv and its BN (option B)
    assert (first["in_shape"], first["out_shape"]) == ([64, 56, 56], [256, 56, 56])
    assert first["shortcut_params"] == 64 * 256 + 2 * 256
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(s["config"]))
    rc, out2, _ = run_cli("summary", str(path), "--json")
    assert rc == 0 and json.loads(out2)["params"] == s["params"]


def test_set_overrides(capsys):
    assert main(["summary", "resnet18", "--set", "skip_span=1", "--set", "depths=[1,1,1,1]",
                 "--set", "shortcut=C", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["config"]["skip_span"] == 1 and s["config"]["depths"] == [1, 1, 1, 1]
    assert s["shortcuts"]["projection"] == s["residual_units"] == 8


def test_text_output_shows_counts_and_units(capsys):
    assert main(["summary", "resnet20"]) == 0
    out = capsys.readouterr().out
    assert "269,722" in out and "layer2.0" in out and "zero_pad" in out


@pytest.mark.parametrize("args,fragment", [
    (["summary", "resnet50", "--set", "shortcut=A", "--set", "skip_span=1"], "shortcut='A' is invalid"),
    (["summary", "resnet50", "--set", "depth=3"], "unknown key"),
    (["summary", "resnet50", "--set", "noequals"], "key=value"),
    (["summary", "no_such_model"], "preset name"),
    (["summary", "resnet18", "--set", "input_size=8"], "input_size=8 is invalid"),
])
def test_bad_settings_exit_2_with_one_line_and_no_traceback(args, fragment):
    rc, out, err = run_cli(*args)
    assert rc == 2
    assert fragment in err and "Traceback" not in err
    assert err.strip().count("\n") == 0


def test_bad_json_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"block": "basic", "depths": [2, 2], ')
    rc, _, err = run_cli("summary", str(path))
    assert rc == 2 and "valid JSON" in err and "Traceback" not in err


def test_preset_names_are_cli_names():
    assert "resnet110_skip1" in explorer.PRESETS


def test_cli_text_json_and_app_tables_render_one_summary(capsys):
    """`summary`, `summary --json` and the app's Summary tab read the same Summary record."""
    import io

    from explorer.app.views import summary as view
    from explorer.cli.summary import print_summary
    from explorer.facts.costs import measure_costs
    from explorer.facts.results import Summary
    from explorer.facts.summary import measure_summary

    cfg = explorer.preset("resnet50")
    s = measure_summary(cfg)
    assert isinstance(s, Summary) and measure_summary(cfg) is s  # cached and frozen: safe to share
    assert main(["summary", "resnet50", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == s.to_dict()
    assert main(["summary", "resnet50"]) == 0
    text = capsys.readouterr().out
    buf = io.StringIO()
    print_summary(s, out=buf)
    assert text == buf.getvalue() and f"published    resnet50: {s.published.info.source}" in text
    frame = view.stages_frame(s, measure_costs(cfg))
    assert list(frame["stage"]) == [st.name for st in s.stages] == ["layer1", "layer2", "layer3", "layer4"]
    for st in s.stages:
        assert f"  {st.name:<8}{st.units:>6}{st.params:>12,}" in text
    assert [r["figure"] for r in view.published_rows(s)][:2] == ["parameters", "GMACs"]
