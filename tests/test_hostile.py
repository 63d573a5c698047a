"""Hostile input, in the app (AppTest) and on the command line (subprocesses): a huge number in an
upload, Markdown in links and uploads, long and odd file arguments, repeated and several bad link
parameters, the app's own JSON files uploaded as configs, and the Lab's helper processes after exit."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import explorer

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
SMALL = explorer.preset("resnet20").replace(widths=[8, 16, 32], stem_width=8, num_classes=10, name="tiny_net")
UNESCAPED_LINK = re.compile(r"(?<!\\)\]\s*(?<!\\)\(")  # "](" that Markdown would render as a link


def app(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in (query or {"preset": "resnet20"}).items():
        at.query_params[k] = v
    return at.run()


def upload(at: AppTest, name: str, content: bytes) -> AppTest:
    at.file_uploader(key="upload_config").set_value((name, content, "application/json"))
    return at.run()


def raw_messages(at: AppTest) -> list[str]:
    """The errors and warnings as the app wrote them (Markdown)."""
    return [m.value for m in (*at.error, *at.warning)]


def messages(at: AppTest) -> list[str]:
    """The errors and warnings as shown: Markdown's backslash escapes read."""
    return [re.sub(r"\\(.)", r"\1", m, flags=re.S) for m in raw_messages(at)]


# -- 1: a crash from an upload ----------------------------------------------------------------
def test_upload_with_a_5000_digit_integer_is_one_clear_error():
    at = upload(app(), "huge.json", b'{"skip_span": ' + b"9" * 5000 + b"}")
    assert not at.exception
    assert any("4300 digits" in e and "huge.json" in e for e in messages(at)), messages(at)
    assert at.text_input(key="cfg_name").value == "resnet20"


# -- 2: Markdown injection ----------------------------------------------------------------------
def test_link_text_in_the_warning_is_shown_as_text():
    at = app({"preset": "resnet20", "depths": "[Your session expired](https://evil.example/login)",
              "widths": "![x](http://127.0.0.1:9/pixel.png)"})
    assert not at.exception
    warnings = [w for w in raw_messages(at) if "link" in w]
    assert warnings
    assert not any(UNESCAPED_LINK.search(w) for w in warnings), warnings


def test_uploaded_key_names_are_shown_as_text():
    at = upload(app(), "proto.json", b'{"__proto__": 1, "[a](https://evil.example)": 2}')
    assert not at.exception
    errors = raw_messages(at)
    assert any(r"\_\_proto\_\_" in e for e in errors), errors
    assert not any("__proto__" in e or UNESCAPED_LINK.search(e) for e in errors), errors


# -- 5: links -------------------------------------------------------------------------------------
def test_a_parameter_given_twice_is_named():
    at = app({"preset": "resnet20", "depths": ["[1,1,1]", "[2,2,2]"]})
    assert not at.exception
    warnings = [w for w in messages(at) if "link" in w]
    assert len(warnings) == 1 and "depths is given 2 times" in warnings[0], warnings
    assert "widths" not in warnings[0]


def test_each_bad_link_parameter_is_named():
    at = app({"preset": "resnet20", "depths": "[0]", "widths": "x", "shortcut": "Z"})
    assert not at.exception
    warning = next(w for w in messages(at) if "link" in w)
    for key in ("depths", "widths", "shortcut"):
        assert f"{key}=" in warning, warning


def test_a_link_valid_only_as_a_whole_is_used():
    from explorer.app.inputs import config_from_link

    _, cfg, error = config_from_link({"preset": "resnet18", "block": "bottleneck", "groups": "32"})
    assert error is None and cfg.groups == 32


# -- 6: the app's own files uploaded as configs -------------------------------------------------------
def test_summary_json_uploaded_gives_its_config():
    from explorer.facts.summary import measure_summary

    doc = json.dumps(measure_summary(SMALL).to_dict()).encode()
    at = upload(app(), "tiny_net_summary.json", doc)
    assert not at.exception and not at.error
    assert at.text_input(key="cfg_name").value == "tiny_net"


def test_comparison_json_uploaded_says_what_it_is():
    from explorer import compare

    rows = compare.compare_table([SMALL, explorer.preset("resnet20")])
    at = upload(app(), "comparison.json", compare.to_json_bytes(rows))
    assert not at.exception
    assert any("comparison table of 2 networks" in e for e in messages(at)), messages(at)


# -- 4: the command line ----------------------------------------------------------------------------
def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "explorer", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_cli_argument_too_long_for_a_file_name_is_one_line():
    p = cli("summary", "a" * 300)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1 and p.stderr.startswith("error: config=")


def test_cli_names_a_file_that_is_not_json_and_never_quotes_it(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    p = cli("summary", str(secret))
    assert p.returncode == 2
    assert str(secret) in p.stderr and "root:x" not in p.stderr and "Line 1, column 1" in p.stderr


def test_cli_and_app_accept_a_byte_order_mark(tmp_path):
    data = b"\xef\xbb\xbf" + SMALL.to_json().encode()
    path = tmp_path / "bom.json"
    path.write_bytes(data)
    p = cli("summary", str(path), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["config"]["name"] == "tiny_net"
    at = upload(app(), "bom.json", data)
    assert not at.exception and not at.error
    assert at.text_input(key="cfg_name").value == "tiny_net"


# -- 7: the Lab's helper processes ------------------------------------------------------------------
HARNESS = textwrap.dedent('''
    import ctypes, os, subprocess, sys, time
    assert ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER: orphans become ours
    subprocess.run([sys.executable, "-c", sys.argv[1]], check=True)
    time.sleep(1.0)
    me, left = str(os.getpid()), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:
            left.append(f"{pid} {fields[0]}")
    print(left)
    for item in left:
        pid = int(item.split()[0])
        os.kill(pid, 9)
        os.waitpid(pid, 0)
''')
LAB_WORKERS = textwrap.dedent('''
    import os
    from concurrent.futures import ProcessPoolExecutor
    from explorer.lab.workers import SharedGate, context
    ctx = context()
    gate = SharedGate(ctx)
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        assert pool.submit(os.getpid).result() != os.getpid()
''')


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc, uses prctl")
def test_lab_worker_processes_leave_nothing_behind_after_exit():
    p = subprocess.run([sys.executable, "-c", HARNESS, LAB_WORKERS], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]", f"processes left behind (pid state): {p.stdout}"


# -- 3: bounded work ------------------------------------------------------------------------------
def test_a_pass_far_over_the_budget_is_refused_before_anything_is_built():
    from explorer import timing

    big = explorer.preset("resnet50").replace(input_size=4096)
    for run in (lambda: timing.measure_latency(big, device="cpu", threads=1),
                lambda: timing.profile_latency(big, device="cpu", threads=1),
                lambda: timing.batch_sweep(big, device="cpu", threads=1)):
        with pytest.raises(timing.LatencyError, match=r"GMACs\) takes about \d+ s or more, far over"):
            run()


def slow_pass(x) -> None:
    """A pass of at least 0.2 s (a plain callable: the clock's decisions, not torch, are tested)."""
    import time

    time.sleep(0.2)


def test_least_warm_up_and_sample_counts_give_way_to_the_budget():
    import torch

    from explorer.timing.passes import Clock, time_passes

    clock = Clock(budget_s=0.25, min_samples=5, max_samples=100, progress=None)
    times, warm = time_passes(slow_pass, None, torch.device("cpu"), clock, warmup=2)
    assert (warm, len(times)) == (1, 1)  # not 2 warm-up passes and 5 samples: 1.4 s against 0.25 s


def test_a_first_pass_far_over_the_budget_ends_the_measurement():
    import torch

    from explorer import timing
    from explorer.timing.passes import Clock, time_passes

    clock = Clock(budget_s=0.05, min_samples=5, max_samples=100, progress=None)
    with pytest.raises(timing.LatencyError, match="as measured"):
        time_passes(slow_pass, None, torch.device("cpu"), clock, warmup=2)


def test_a_long_onnx_export_is_prepared_in_a_child_process_then_offered():
    import onnx

    from explorer.app.sidebar import ONNX_FILE
    from explorer.export.background import is_quick

    deep = {"preset": "resnet20", "depths": "[43,43,43]", "widths": "[4,4,4]", "stem_width": "4"}
    assert not is_quick(explorer.ArchConfig.from_query({k: v for k, v in deep.items() if k != "preset"},
                                                        base=explorer.preset("resnet20")), "onnx")
    at = app(deep)
    assert not at.exception
    assert "Download ONNX" not in [b.label for b in at.get("download_button")]
    at.button(key="prepare_onnx").click().run(timeout=180)
    assert not at.exception and not at.error
    assert "Download ONNX" in [b.label for b in at.get("download_button")]
    assert onnx.load_from_string(at.session_state[ONNX_FILE][1]).graph.input[0].name == "input"


def test_an_export_in_a_child_process_ends_with_whoever_stops_waiting():
    import multiprocessing

    from explorer.export.background import export_in_child

    def stop(fraction):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_in_child(explorer.preset("resnet20"), "onnx", stop)
    assert multiprocessing.active_children() == []
