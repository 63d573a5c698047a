"""The command line: python -m explorer summary ..."""
import json
import subprocess
import sys

import pytest

import explorer
from explorer.__main__ import main


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_summary_json_has_design_keys_and_reloads(tmp_path):
    rc, out, err = run_cli("summary", "resnet50", "--json")
    assert rc == 0, err
    s = json.loads(out)
    for key in ("config", "params", "trainable_params", "macs", "output_shape", "units", "warnings"):
        assert key in s
    assert s["params"] == 25_557_032
    unit = s["units"][0]
    assert set(unit) >= {"name", "in_shape", "out_shape", "shortcut", "shortcut_params"}
    assert unit["shortcut"] in ("identity", "zero_pad", "projection")
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
