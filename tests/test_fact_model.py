"""One fact, one definition: where the app and the command line used to disagree, they now read
the same object (each test here failed before the facts were unified)."""
import json
import subprocess
import sys

import pytest

import explorer
from explorer import ArchConfig
from explorer.arch.config import LATER_KEYS
from explorer.arch.presets import matching_preset, published


def test_block_length_span_is_one_config():
    a = explorer.preset("resnet18")
    b = a.replace(skip_span=2)
    assert b == a and b.skip_span is None and hash(a) == hash(b)
    assert ArchConfig.from_dict({**a.to_dict(), "block": "bottleneck", "skip_span": 3}).skip_span is None
    assert a.replace(skip_span=1).skip_span == 1


def test_arch_key_ignores_the_name_only():
    a = explorer.preset("resnet50")
    assert a.replace(name="mine").arch_key() == a.arch_key()
    assert a.replace(skip_span=3).arch_key() == a.arch_key()
    assert a.replace(shortcut="C").arch_key() != a.arch_key()
    assert json.loads(a.arch_key()) == {k: v for k, v in a.to_dict().items() if k != "name" and k not in LATER_KEYS}
    # Keys added later are left out at their defaults (keys of stored results stay), kept otherwise.
    assert a.arch_key() == '{"block":"bottleneck","bn_position":"after_conv","depths":[3,4,6,3],"groups":1,' \
        '"in_channels":3,"input_size":224,"num_classes":1000,"relu_position":"after_add","shortcut":"B",' \
        '"skip_span":null,"stem":"imagenet","stem_width":64,"stride_on":"3x3","width_per_group":64,' \
        '"widths":[64,128,256,512],"zero_init_residual":false}'
    assert json.loads(a.replace(avg_down=True).arch_key())["avg_down"] is True


def test_every_preset_is_its_own_match():
    for name, cfg in explorer.PRESETS.items():
        assert matching_preset(cfg.replace(name="x")) == name


def test_cli_summary_keeps_the_published_line_for_an_explicit_block_span():
    out = subprocess.run([sys.executable, "-m", "explorer", "summary", "resnet18", "--set", "skip_span=2",
                          "--json"], capture_output=True, text=True, check=True).stdout
    doc = json.loads(out)
    assert doc["published"] is not None and doc["published"]["preset"] == "resnet18"
    assert doc["published"] == {"preset": "resnet18", **published(explorer.preset("resnet18"))[1].__dict__}


def test_the_diff_reads_the_same_in_the_cli_json_and_the_app_download():
    from explorer.diff import diff_document
    from test_app import fresh, show

    a, b = explorer.preset("resnet18"), explorer.preset("resnet34")
    out = subprocess.run([sys.executable, "-m", "explorer", "compare", "resnet18", "resnet34", "--diff", "--json"],
                         capture_output=True, text=True, check=True).stdout
    doc = json.loads(out)
    want = json.loads(json.dumps(diff_document(a, b)))
    assert doc["diff"] == want["diff"] and doc["diff"] and doc["diff_total"] == want["diff_total"]
    at = show(fresh({"preset": "resnet18"}), "Compare")
    at.button(key="compare_add").click().run()
    at.selectbox(key="preset").select("resnet34").run()
    at.button(key="compare_add").click().run()
    assert not at.exception
    button = next(b for b in at.get("download_button") if b.proto.label == "Download the diff (JSON)")
    assert button.proto.ignore_rerun
