"""Fuzzing: hostile raw input through the config parsers, the CLI and the app's links and uploads.

Whatever comes in (wrong types, huge or negative numbers, NaN and infinity, control characters,
unknown keys, empty lists, deeply nested JSON), the answer is a ConfigError or a one-line
message; valid configs build on the meta device, and the app keeps showing a valid view.
"""
import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

import explorer
from explorer import ArchConfig, ConfigError, build_model
from explorer.__main__ import main
from explorer.app.text import title
from explorer.arch.config import choices, field_names

APP = str(Path(__file__).resolve().parents[1] / "app.py")
KEYS = field_names()
TEXT_KEYS = ("block", "bn_position", "relu_position", "shortcut", "stride_on", "stem", "stem_type", "attention")
DEEP = "[" * 10_000 + "]" * 10_000           # 10,000 nested lists as JSON text
SMALL = explorer.preset("resnet20").replace(widths=[8, 16, 32], stem_width=8, num_classes=10)
CLI_BASE = "resnet20"
HOSTILE_TEXT = ["NaN", "Infinity", "-Infinity", "-1", "0", "1e999", "[]", "{}", "null", "[1,2,3", '"quoted"',
                DEEP, "9" * 5000, "<script>alert(1)</script>", "\x00", "\u202e"]

# -- strategies -----------------------------------------------------------------------------
names = st.text(min_size=0, max_size=260)    # unicode, control characters, empty, too long
hostile_numbers = st.one_of(
    st.integers(), st.integers(min_value=-2**70, max_value=2**70), st.floats(),  # floats: NaN, inf, -0.0
    st.sampled_from([0, -1, 2**31, 2**63, 10**30, math.nan, math.inf, -math.inf, 1e308, True, False]),
)
scalars = st.one_of(st.none(), st.booleans(), hostile_numbers, names)
json_like = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12)
# Plausible values (often valid, so valid configs get built) mixed with hostile ones.
small_ints = st.integers(min_value=-2, max_value=12)
int_lists = st.lists(st.one_of(small_ints, st.sampled_from([0, 10**6, 2**40])), min_size=0, max_size=9)


def plausible(key: str):
    if key == "name":
        return names
    if key in TEXT_KEYS:
        return st.sampled_from(choices(key))
    if key in ("depths", "widths"):
        return st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=4).map(
            lambda xs: [8 * x for x in xs] if key == "widths" else xs)
    if key == "skip_span":
        return st.one_of(st.none(), st.integers(min_value=0, max_value=7))
    if key in ("zero_init_residual", "avg_down"):
        return st.booleans()
    if key == "input_size":
        return st.integers(min_value=1, max_value=64)
    if key in ("groups", "width_per_group"):
        return st.sampled_from([1, 2, 4, 64])
    return st.integers(min_value=1, max_value=16)


def value_for(key: str):
    return st.one_of(plausible(key), plausible(key), json_like, int_lists)


@st.composite
def raw_dicts(draw):
    """A JSON-like object: a small valid base with some keys changed, dropped or unknown."""
    data = SMALL.to_dict()
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=4, unique=True)):
        if draw(st.booleans()) and draw(st.booleans()):
            del data[key]
        else:
            data[key] = draw(value_for(key))
    if draw(st.integers(0, 9)) == 0:
        data[draw(st.text(max_size=12).filter(lambda k: k not in KEYS))] = draw(json_like)
    return data


def check_built(cfg: ArchConfig) -> None:
    """A config that validated builds on the meta device and survives every round trip."""
    with torch.device("meta"):
        model = build_model(cfg)
    assert model.config == cfg
    assert ArchConfig.from_dict(cfg.to_dict()) == cfg
    assert ArchConfig.from_json(cfg.to_json()) == cfg
    assert ArchConfig.from_query(cfg.to_query()) == cfg


def config_or_error(make):
    """The config `make()` returns, or None when it raised ConfigError (anything else fails)."""
    try:
        cfg = make()
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)
        event("ConfigError")
        return None
    event("valid")
    return cfg


# -- (a) parsers ----------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(raw_dicts())
@example({"depths": [], "widths": []})
@example({"input_size": math.nan})
@example({"input_size": math.inf, "stem_width": -math.inf})
@example({"depths": [3, 3, 3], "widths": [16, 32, 64], "input_size": 10**30})
@example({"name": "\x00\x1b[31m\u202e\n"})
@example({"bogus": 1})
@example({"depths": "3, 3, 3"})
def test_from_dict_is_config_or_config_error(data):
    cfg = config_or_error(lambda: ArchConfig.from_dict(data))
    if cfg is not None:
        check_built(cfg)


@settings(max_examples=60, deadline=None)
@given(json_like)
def test_from_dict_on_any_json_value(value):
    config_or_error(lambda: ArchConfig.from_dict(value))
    config_or_error(lambda: ArchConfig.from_dict({"depths": value}))


@settings(max_examples=200, deadline=None)
@given(st.one_of(raw_dicts().map(lambda d: json.dumps(d, allow_nan=True)),
                 st.text(max_size=200), st.binary(max_size=200)))
@example(DEEP)
@example('{"depths": ' + DEEP + "}")
@example('{"input_size": ' + "9" * 5000 + "}")
@example('{"input_size": 1e999, "stem_width": NaN}')
@example(b"\xff\xfe{")
@example("")
@example("[]")
def test_from_json_is_config_or_config_error(text):
    cfg = config_or_error(lambda: ArchConfig.from_json(text))
    if cfg is not None:
        check_built(cfg)


def as_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@st.composite
def query_params(draw, keys=tuple(KEYS), min_size=0):
    """URL query parameters: config keys (and others) with plausible or hostile text values."""
    params = {}
    for key in draw(st.lists(st.one_of(st.sampled_from(keys), st.text(max_size=10)), min_size=min_size, max_size=4,
                                 unique=True)):
        hostile = st.one_of(names, json_like.map(json.dumps), st.sampled_from(HOSTILE_TEXT))
        params[key] = draw(st.one_of(plausible(key).map(as_text), plausible(key).map(as_text), hostile))
    return params


@settings(max_examples=200, deadline=None)
@given(query_params())
@example({"depths": DEEP})
@example({"input_size": "NaN", "stem_width": "-Infinity"})
@example({"depths": "[]", "widths": "[]"})
@example({"skip_span": "1e999"})
@example({"name": "\x00"})
def test_from_query_is_config_or_config_error(params):
    cfg = config_or_error(lambda: ArchConfig.from_query(params, base=SMALL))
    if cfg is not None:
        check_built(cfg)


# Edge cases that once escaped as other exceptions.
def nested_list(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def deepest_parsable_json(limit: int = 10_000) -> str:
    """The most deeply nested `depths` list json.loads still parses at this stack depth."""
    for depth in range(min(limit, sys.getrecursionlimit()), 0, -5):
        text = '{"depths": ' + "[" * depth + "]" * depth + "}"
        try:
            json.loads(text)
            return text
        except RecursionError:
            continue
    raise AssertionError("no nesting depth parses")


def test_deeply_nested_value_is_a_config_error():
    with pytest.raises(ConfigError):
        ArchConfig.from_dict({"depths": nested_list(10_000)})


def test_json_nested_to_the_parser_limit_is_a_config_error():
    with pytest.raises(ConfigError):
        ArchConfig.from_json(deepest_parsable_json())


def test_huge_int_is_a_config_error():
    with pytest.raises(ConfigError):
        ArchConfig.from_dict({"input_size": 10**5000})


def test_from_json_of_a_non_text_is_a_config_error():
    with pytest.raises(ConfigError):
        ArchConfig.from_json(None)


def test_name_with_lone_surrogate_is_refused():
    with pytest.raises(ConfigError):
        ArchConfig.from_json('{"name": "\\ud800"}')


# -- (b) the CLI, in process ----------------------------------------------------------------
def assert_cli_outcome(rc: int, err: str) -> None:
    assert rc in (0, 2)
    assert "Traceback" not in err
    if rc == 2:
        assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err


def set_items():
    return query_params(min_size=1).map(lambda params: [f"{k}={v}" for k, v in params.items()])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(set_items())
@example(["depths=" + DEEP])
@example(["=3"])
@example(["novalue"])
@example(["input_size=NaN", "stem_width=-Infinity"])
@example(["name=\x00\x1b[2J"])
def test_cli_set_values_exit_0_or_2_with_one_line(capsys, sets):
    capsys.readouterr()
    rc = main(["summary", CLI_BASE, "--json", *(f"--set={s}" for s in sets)])
    out, err = capsys.readouterr()
    assert_cli_outcome(rc, err)
    event(f"exit {rc}")
    if rc == 0:
        assert ArchConfig.from_dict(json.loads(out)["config"])  # the printed config loads again


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(raw_dicts().map(lambda d: json.dumps(d, allow_nan=True).encode()),
                 json_like.map(lambda v: json.dumps(v).encode()), st.binary(max_size=300)))
@example(DEEP.encode())
@example(b'{"depths": ' + DEEP.encode() + b"}")
@example(b"{}" + b" " * (65 * 1024))   # over the 64 KiB file limit
@example(b"\xef\xbb\xbf{}")             # UTF-8 byte-order mark
def test_cli_config_files_exit_0_or_2_with_one_line(capsys, tmp_path, content):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    capsys.readouterr()
    rc = main(["summary", str(path)])
    _, err = capsys.readouterr()
    assert_cli_outcome(rc, err)
    event(f"exit {rc}")


def test_cli_refuses_oversized_file_by_name(capsys, tmp_path):
    path = tmp_path / "big.json"
    path.write_bytes(b"{}" + b" " * (65 * 1024))
    assert main(["summary", str(path)]) == 2
    assert "at most 64 KiB" in capsys.readouterr().err


# -- (c) the app's links and uploads (AppTest) ----------------------------------------------
def run_app(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def expected_from_link(query: dict[str, str]) -> tuple[ArchConfig | None, str]:
    """What the app should show for a link: (config or None when refused, title shown)."""
    params = dict(query)
    base = explorer.preset("resnet50")
    try:
        if "preset" in params:
            base = explorer.preset(params.pop("preset"))
        cfg = ArchConfig.from_query(params, base=base) if params else base
        return cfg, title(cfg)  # a changed preset's title says so: "resnet20 (modified: block bottleneck)"
    except ConfigError:
        return None, base.name


def links():
    """Query parameters of a shared link: a tiny preset, then a few fuzzed keys (maybe `preset` too)."""
    return query_params(keys=(*KEYS, "preset", "bogus")).map(lambda params: {"preset": "resnet20", **params})


def main_title(at: AppTest) -> str:
    heads = at.main.subheader
    assert len(heads) >= 1, "no title in the main area"
    return heads[0].value


def unescape(markdown: str) -> str:
    """Title text as shown: the app escapes every Markdown character with a backslash."""
    return re.sub(r"\\(.)", r"\1", markdown.replace("\u2060", ""), flags=re.S)  # and the autolink breaker


@settings(max_examples=30, deadline=None)
@given(links())
@example({"preset": "resnet20", "depths": DEEP})
@example({"preset": "no-such-net"})
@example({"preset": "resnet20", "block": "bottleneck"})
@example({"preset": "resnet20", "input_size": "NaN", "bogus": "1"})
def test_app_link_never_raises_and_keeps_a_valid_view(query):
    at = run_app(query)
    assert not at.exception
    cfg, shown = expected_from_link(query)
    warnings = [w.value for w in at.warning]
    refused = any("The link's settings were not used" in w for w in warnings)
    assert refused == (cfg is None)
    assert unescape(main_title(at)) == " ".join(shown.split())  # a valid view: the title and counts
    assert any(re.search(r"[\d.,]+ ?[kMG]? params", c.value) for c in at.main.caption)  # counts in engineering units
    if cfg is not None:
        assert at.text_input(key="cfg_name").value == cfg.name
    event("refused" if cfg is None else "shown")


def test_app_link_with_lone_surrogate_name_is_refused():
    at = run_app({"preset": "resnet20", "name": '"\\ud800"'})
    assert not at.exception
    assert any("The link's settings were not used" in w.value for w in at.warning)


def upload(at: AppTest, name: str, content: bytes) -> AppTest:
    at.file_uploader(key="upload_config").set_value((name, content, "application/json"))
    return at.run()


def test_app_upload_is_size_limited_and_validated():
    at = run_app({"preset": "resnet20"})
    good = SMALL.replace(name="uploaded_net")
    padded = good.to_json().encode() + b" " * (64 * 1024)  # a valid config, but over 64 KiB
    at = upload(at, "big.json", padded)
    assert not at.exception
    assert any("at most 64 KiB" in e.value for e in at.error)
    assert at.text_input(key="cfg_name").value == "resnet20"  # nothing loaded
    for bad in (DEEP.encode(), b'{"depths": ' + DEEP.encode() + b"}", b"\xff\xfe", b'{"depths": [0]}',
                b'{"input_size": NaN}', b'{"bogus": 1}'):
        at = upload(at, "bad.json", bad)
        assert not at.exception
        assert at.error and "is invalid" in at.error[0].value
        assert at.text_input(key="cfg_name").value == "resnet20"
        assert unescape(main_title(at)) == "resnet20"
    at = upload(at, "good.json", good.to_json().encode())
    assert not at.exception and not at.error
    assert at.text_input(key="cfg_name").value == "uploaded_net"
    assert unescape(main_title(at)) == "uploaded_net"


# The link fuzzer's payloads and integers longer than Python converts, as an uploaded file: the
# whole file, a raw JSON value, a quoted one, a list item; each is a config or one ConfigError.
UPLOAD_PAYLOADS = [*HOSTILE_TEXT, "9" * 4301, "-" + "9" * 5000, "1" + "0" * 10_000, "1e" + "9" * 5000]


def upload_documents(text: str) -> list[bytes]:
    docs = [text, '{"skip_span": %s}' % text, json.dumps({"skip_span": text}), '{"depths": [%s, 1]}' % text,
            '{"input_size": %s, "name": %s}' % (text, json.dumps(text))]
    return [d.encode("utf-8", "surrogatepass") for d in docs]


def test_upload_of_link_payloads_is_config_or_one_config_error():
    from explorer.app.inputs import config_from_upload

    for text in UPLOAD_PAYLOADS:
        for data in upload_documents(text):
            try:
                cfg = config_from_upload("fuzz.json", len(data), data)
            except ConfigError as exc:
                assert str(exc) and "\n" not in str(exc)
                continue
            check_built(cfg)


def test_app_upload_of_huge_numbers_and_hostile_payloads_never_raises():
    at = run_app({"preset": "resnet20"})
    for text in ("9" * 5000, "-" + "9" * 5000, "1e" + "9" * 5000, DEEP, "NaN", "<script>alert(1)</script>"):
        at = upload(at, "fuzz.json", upload_documents(text)[1])
        assert not at.exception, text[:20]
        assert at.error and "is invalid" in at.error[0].value
        assert unescape(main_title(at)) == "resnet20"
