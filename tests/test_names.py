"""Names that follow the network: a config that carries a preset's name but is no longer that
preset's network goes out (downloads, exported code, diagrams, stored runs, compare headers) under
its display name, "resnet50 (skip_span 1)", in files named resnet50_skip_span-1.*; presets and
unchanged configs go out exactly as before."""
import json

import pytest

import explorer
from explorer import ArchConfig
from explorer.__main__ import main
from explorer.app import inputs, text
from explorer.app.cache import diagram_bytes
from explorer.app.sidebar import export_bytes
from explorer.arch import presets
from explorer.arch.presets import (PRESETS, describe_changes, display_name, display_stem, named_for_changes,
                                   preset_changes)
from explorer.cli.compare import print_diff
from explorer.export import to_bytes
from explorer.limits import MAX_NAME
from explorer.runs import RunStore, make_record

R50 = explorer.preset("resnet50")
SPAN1 = R50.replace(skip_span=1)


def test_a_changed_preset_is_named_with_its_changes_and_its_file_follows():
    assert display_name(SPAN1) == "resnet50 (skip_span 1)"
    assert display_stem(SPAN1) == "resnet50_skip_span-1"
    assert text.safe_name(SPAN1) == "resnet50_skip_span-1"
    assert text.title(SPAN1) == "resnet50 (modified: skip_span 1)"
    renamed = named_for_changes(SPAN1)
    assert renamed.name == "resnet50 (skip_span 1)" and renamed.arch_key() == SPAN1.arch_key()
    assert named_for_changes(renamed) == renamed  # a display name is already its own


def test_lists_and_many_changes_read_in_the_name_and_the_file_name():
    cfg = R50.replace(depths=[3, 4, 23, 3], widths=[8, 16, 32, 64], stem_width=8, skip_span=1)
    assert display_name(cfg) == "resnet50 (depths [3, 4, 23, 3], widths [8, 16, 32, 64], skip_span 1, +1 more)"
    assert display_stem(cfg) == "resnet50_depths-3-4-23-3_widths-8-16-32-64_skip_span-1_and-1-more"
    # a preset's name on another preset's network still says how it differs from its own
    assert display_name(R50.replace(depths=[3, 4, 23, 3])) == "resnet50 (depths [3, 4, 23, 3])"


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_goes_out_under_its_own_name_unchanged(name):
    cfg = PRESETS[name]
    assert display_name(cfg) == name and display_stem(cfg) == name and named_for_changes(cfg) is cfg
    assert preset_changes(cfg) == []


def test_own_names_and_the_same_network_spelt_differently_are_left_alone():
    mine = SPAN1.replace(name="my net: v2")
    assert named_for_changes(mine) is mine and display_name(mine) == "my net: v2"
    assert display_stem(mine) == "my_net__v2"
    same = R50.replace(skip_span=3)  # resnet50's own span, written out
    assert display_name(same) == "resnet50" and named_for_changes(same) is same


def test_the_longest_changes_still_make_a_valid_name():
    cfg = R50.replace(depths=[1] * 8, widths=[2048] * 8, input_size=512, stem_width=2048)
    named = display_name(cfg)
    assert named.startswith("resnet50 (depths [1, 1, 1, 1, 1, 1, 1, 1], widths [2048, ") and len(named) <= MAX_NAME
    assert named_for_changes(cfg).name == named


def test_the_app_uses_the_library_s_one_definition():
    assert inputs.preset_changes is presets.preset_changes
    assert inputs.describe_changes is presets.describe_changes
    assert describe_changes(preset_changes(SPAN1)) == "skip_span 1"
    assert inputs.distinct_name(SPAN1, set()) == "resnet50 (skip_span 1)"
    assert inputs.distinct_name(SPAN1, {"resnet50 (skip_span 1)"}) == "resnet50 (skip_span 1) #2"


def test_the_config_file_and_exported_code_of_a_changed_preset_carry_its_name():
    doc = json.loads(named_for_changes(SPAN1).to_json())
    assert doc["name"] == "resnet50 (skip_span 1)" and ArchConfig.from_dict(doc).arch_key() == SPAN1.arch_key()
    assert "resnet50 (skip_span 1)" in export_bytes(SPAN1, "pytorch").decode()
    # a preset's code is the exporter's own, byte for byte
    r20 = explorer.preset("resnet20")
    assert export_bytes(r20, "pytorch") == to_bytes(r20, "pytorch")
    assert named_for_changes(R50).to_json() == R50.to_json()


def test_the_downloaded_diagram_of_a_changed_preset_is_titled_with_its_changes():
    cfg = explorer.preset("resnet20").replace(skip_span=1)
    dot = diagram_bytes(named_for_changes(cfg), "stages", "TB", True, False, "dot").decode()
    assert "resnet20 (skip_span 1)" in dot
    plain = diagram_bytes(cfg, "stages", "TB", True, False, "dot").decode()
    assert "resnet20 (skip_span 1)" not in plain  # what the old download said: just "resnet20"


def test_a_stored_run_of_a_changed_preset_is_named_by_its_changes():
    record = make_record("latency", SPAN1, {"batch": 1}, "CPU X, 1 thread", {"median_ms": 1.0})
    assert record.name == "resnet50 (skip_span 1)"
    assert record.config == SPAN1.to_dict() and record.network == SPAN1.arch_key()  # the config as given
    assert make_record("latency", R50, {"batch": 1}, "CPU X, 1 thread").name == "resnet50"


def test_the_cli_keeps_a_changed_preset_s_run_under_its_display_name(tmp_path, capsys):
    path = tmp_path / "span1.json"
    path.write_text(explorer.preset("resnet20").replace(skip_span=1).to_json())
    store = tmp_path / "runs.sqlite"
    assert main(["latency", str(path), "--device", "cpu", "--threads", "1", "--budget", "0", "--json",
                 "--store", str(store)]) == 0
    printed = json.loads(capsys.readouterr().out)
    [record] = RunStore(store).list()
    # the command names the changed preset by its changes everywhere: the output, the record, its config
    assert printed["name"] == printed["config"]["name"] == "resnet20 (skip_span 1)"
    assert record.name == record.config["name"] == record.result["name"] == "resnet20 (skip_span 1)"


def test_the_cli_names_a_changed_preset_in_every_output(tmp_path, capsys):
    assert main(["summary", "resnet50", "--set", "skip_span=1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["name"] == doc["config"]["name"] == "resnet50 (skip_span 1)"
    assert main(["summary", "resnet50"]) == 0 and capsys.readouterr().out.startswith("resnet50: ")
    out = tmp_path / "code"
    out.mkdir()
    import os
    cwd = os.getcwd()
    os.chdir(out)
    try:
        assert main(["export", "resnet20", "--set", "skip_span=1", "--format", "pytorch"]) == 0
    finally:
        os.chdir(cwd)
    assert [p.name for p in out.iterdir()] == ["resnet20_skip_span-1.py"]


def test_compare_diff_names_the_changed_preset(tmp_path, capsys):
    path = tmp_path / "span1.json"
    path.write_text(SPAN1.to_json())
    assert json.loads(path.read_text())["name"] == "resnet50"
    assert main(["compare", "resnet50", str(path), "--diff", "--no-store"]) == 0
    out = capsys.readouterr().out
    assert "\nresnet50 -> resnet50 (skip_span 1): " in out and "resnet50 -> resnet50:" not in out
    assert main(["compare", "resnet50", str(path), "--json", "--no-store"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["name"] for r in rows] == ["resnet50", "resnet50 (skip_span 1)"]


def test_the_diff_header_of_presets_is_as_before(capsys):
    print_diff(explorer.preset("resnet18"), explorer.preset("resnet34"))
    assert capsys.readouterr().out.startswith("\nresnet18 -> resnet34: ")
