"""ArchConfig validation, round trips and the ConfigError contract."""
import json

import pytest

import explorer
from explorer import ArchConfig, ConfigError
from explorer.arch.config import choices, field_names, parse_value

# The keys of the README's "Config keys" table (JSON, URL query and CLI --set keys alike).
CONFIG_KEYS = {
    "name", "block", "depths", "widths", "skip_span", "bn_position", "relu_position", "shortcut",
    "stride_on", "stem", "stem_width", "groups", "width_per_group", "in_channels", "num_classes",
    "input_size", "zero_init_residual", "stem_type", "avg_down", "attention",
}


def test_every_config_key_is_a_field():
    assert set(field_names()) == CONFIG_KEYS


def test_choices_come_from_types():
    assert choices("block") == ("basic", "bottleneck")
    assert choices("bn_position") == ("after_conv", "before_conv", "after_add", "none")
    assert choices("relu_position") == ("after_add", "before_add", "before_conv")
    assert choices("shortcut") == ("A", "B", "C")
    assert choices("depths") == ()


@pytest.mark.parametrize("name", list(explorer.PRESETS))
def test_json_round_trip_of_every_preset(name):
    cfg = explorer.preset(name)
    again = ArchConfig.from_json(cfg.to_json())
    assert again == cfg and hash(again) == hash(cfg)
    assert ArchConfig.from_query(cfg.to_query()) == cfg


def test_config_is_frozen_and_hashable():
    cfg = explorer.preset("resnet50")
    with pytest.raises(Exception):
        cfg.block = "basic"
    assert {cfg: 1}[explorer.preset("resnet50")] == 1
    assert isinstance(cfg.depths, tuple)


@pytest.mark.parametrize("changes,key,fragment", [
    ({"block": "triple"}, "block", "one of basic, bottleneck"),
    ({"depths": [3, 0, 2, 2]}, "depths", "from 1 to"),
    ({"depths": []}, "depths", "list of 1 to"),
    ({"depths": "3,4"}, "depths", "list of"),
    ({"depths": [2.5, 2, 2, 2]}, "depths", "integers"),
    ({"widths": [64, 128]}, "widths", "one width per stage"),
    ({"skip_span": -1}, "skip_span", "from 0"),
    ({"skip_span": True}, "skip_span", "integer"),
    ({"bn_position": "sometimes"}, "bn_position", "after_conv"),
    ({"relu_position": None}, "relu_position", "before_add"),
    ({"shortcut": "D"}, "shortcut", "A, B, C"),
    ({"stride_on": "last"}, "stride_on", "3x3, first"),
    ({"stem": "mnist"}, "stem", "imagenet, cifar"),
    ({"input_size": 0}, "input_size", "from 1"),
    ({"input_size": 16}, "input_size", "at least 17"),
    ({"num_classes": 1.0}, "num_classes", "integer"),
    ({"zero_init_residual": "yes"}, "zero_init_residual", "true or false"),
    ({"groups": 32}, "groups", "basic blocks support only"),
    ({"name": ""}, "name", "1 to"),
    ({"colour": "red"}, "colour", "unknown key"),
    ({"block": "bottleneck", "widths": [1, 2, 4, 8], "width_per_group": 4}, "width_per_group", "inner width"),
])
def test_invalid_settings_name_key_value_and_what_is_valid(changes, key, fragment):
    with pytest.raises(ConfigError) as err:
        ArchConfig.from_dict({**explorer.preset("resnet18").to_dict(), **changes})
    exc = err.value
    assert exc.key == key
    assert fragment in str(exc)
    assert str(exc).startswith(f"{key}=")


def test_input_size_error_says_which_stage():
    with pytest.raises(ConfigError) as err:
        explorer.preset("resnet18").replace(input_size=16)
    assert "layer4" in str(err.value)
    assert explorer.preset("resnet18").replace(input_size=17).input_size == 17


def test_from_dict_rejects_non_mapping_and_bad_json():
    with pytest.raises(ConfigError):
        ArchConfig.from_dict([1, 2, 3])
    with pytest.raises(ConfigError) as err:
        ArchConfig.from_json("{not json")
    assert err.value.key == "config"


def test_from_dict_fills_defaults_and_lists_become_tuples():
    cfg = ArchConfig.from_dict({"depths": [1, 1], "widths": [8, 8], "stem": "cifar", "input_size": 8})
    assert cfg.depths == (1, 1) and cfg.block == "basic"
    assert json.loads(cfg.to_json())["depths"] == [1, 1]


def test_parse_value_follows_the_cli_rule():
    assert parse_value("depths", "[3,4,6,3]") == [3, 4, 6, 3]
    assert parse_value("skip_span", "1") == 1
    assert parse_value("skip_span", "null") is None
    assert parse_value("shortcut", "B") == "B"
    assert parse_value("name", "123") == "123"
    assert parse_value("name", '"quoted"') == "quoted"
    assert parse_value("zero_init_residual", "true") is True


def test_replace_validates():
    with pytest.raises(ConfigError):
        explorer.preset("resnet50").replace(shortcut="Z")
    assert explorer.preset("resnet50").replace(skip_span=1).skip_span == 1


def test_unknown_preset():
    with pytest.raises(ConfigError) as err:
        explorer.preset("resnet51")
    assert err.value.key == "preset" and "resnet50" in str(err.value)


def test_the_key_named_for_several_bad_choices_is_the_same_on_every_run():
    """Validation follows the field order, not a set's: PYTHONHASHSEED cannot change the message."""
    import os
    import subprocess
    import sys

    code = ("from explorer import ArchConfig, ConfigError\n"
            "try:\n"
            "    ArchConfig.from_dict(dict(stem='x', shortcut='Q', bn_position='y', relu_position='z', stride_on='w'))\n"
            "except ConfigError as e:\n"
            "    print(e.key)\n")
    keys = set()
    for seed in range(8):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        keys.add(out.stdout.strip())
    assert keys == {"bn_position"}


def test_bad_json_bytes_are_shown_as_text_with_line_and_column():
    with pytest.raises(ConfigError) as err:
        ArchConfig.from_json(b'{"name": "x",\n  depths: [1]}')
    msg = str(err.value)
    assert "b'" not in msg and "line 2, column 3" in msg
