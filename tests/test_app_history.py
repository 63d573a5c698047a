"""The History view (AppTest): kept runs listed and filtered, one shown whole, imports reported,
and a store that cannot be used said once while the app goes on."""
import json

import pytest
from streamlit.testing.v1 import AppTest

import explorer
from explorer.runs import RunRecord, RunStore

from test_app import APP, show


def _record(name="resnet18", kind="latency", device="CPU (test, 1 thread)", **changes):
    cfg = explorer.preset(name)
    return RunRecord(kind=kind, name=cfg.name, config=cfg.to_dict(), network=cfg.arch_key(),
                     settings={"batch": 1}, device=device, result={"median_ms": 12.5, "batch": 1}, **changes)


@pytest.fixture
def store(tmp_path, monkeypatch):
    path = tmp_path / "runs.sqlite"
    monkeypatch.setenv("RESNET_EXPLORER_STORE", str(path))
    return RunStore(path)


def history(query=None):
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    return show(at, "History")


def test_history_lists_kept_runs_and_filters_them(store):
    a, b = _record(), _record("resnet50", kind="sweep", device="CUDA: NVIDIA H100 80GB HBM3")
    store.add(a)
    store.add(b)
    at = history({"preset": "resnet18"})
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["network"]) == {"resnet18", "resnet50"}
    assert "12.5 ms median, batch 1" in set(table["result"])
    at.checkbox(key="hist_this").check().run()
    assert list(at.dataframe[0].value["network"]) == ["resnet18"]
    at.checkbox(key="hist_this").uncheck().run()
    at.text_input(key="hist_device").input("h100").run()
    assert list(at.dataframe[0].value["device"]) == [b.device]
    at.text_input(key="hist_device").input("").run()
    at.button_group(key="hist_kinds").set_value(["latency"]).run()
    assert list(at.dataframe[0].value["kind"]) == ["latency"]


def test_history_shows_one_run_whole(store):
    r = _record()
    store.add(r)
    at = history()
    at.session_state["hist_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert any(r.id in c.value for c in at.caption)
    assert any(j.value and "median_ms" in j.value for j in at.json)


def test_a_broken_store_is_said_once_and_the_app_goes_on(tmp_path, monkeypatch):
    path = tmp_path / "runs.sqlite"
    path.write_text("not a database")
    monkeypatch.setenv("RESNET_EXPLORER_STORE", str(path))
    at = history()
    assert not at.exception
    warnings = [w.value for w in at.warning if "not being kept" in w.value]
    assert len(warnings) == 1 and "left untouched" in warnings[0]
    at.run()
    assert not [w for w in at.warning if "not being kept" in w.value]  # once per session
    assert path.read_text() == "not a database"


def test_storing_off_says_so(monkeypatch):
    monkeypatch.setenv("RESNET_EXPLORER_STORE", "off")
    at = history()
    assert not at.exception
    assert any("not kept on this server" in i.value for i in at.info)
