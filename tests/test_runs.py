"""The run store: records round-trip, imports are idempotent and validated line by line, many writers
lose nothing, and a store that cannot be used says so in one line without being damaged."""
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import explorer
from explorer.runs import RunRecord, RunStore, StoreError, default_path, open_store
from explorer.runs.store import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[1]


def _record(**changes) -> RunRecord:
    cfg = explorer.preset("resnet18")
    base = dict(kind="latency", name=cfg.name, config=cfg.to_dict(), network=cfg.arch_key(),
                settings={"batch": 1, "dtype": "fp32"}, device="CPU (test, 1 thread)",
                result={"median_ms": 12.5, "batch": 1, "samples": 30})
    return RunRecord(**{**base, **changes})


def cli(*args, store: Path, check=True):
    env = {**os.environ, "RESNET_EXPLORER_STORE": str(store)}
    out = subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, env=env,
                         cwd=ROOT)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_record_round_trips_through_json_and_the_store(tmp_path):
    r = _record(status="cancelled", message="cancelled after 2 samples", ended="2026-12-06T10:00:00Z")
    assert RunRecord.from_dict(json.loads(r.to_json())) == r
    store = RunStore(tmp_path / "runs.sqlite")
    assert store.add(r) and not store.add(r)
    assert store.get(r.id) == r and store.get(r.id[:6]) == r
    assert store.list() == [r]


def test_list_filters_by_kind_network_and_device(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    a = _record(started="2026-01-01T00:00:00Z")
    b = _record(kind="sweep", device="CUDA: NVIDIA H100 80GB", started="2026-01-02T00:00:00Z")
    other = explorer.preset("resnet34")
    c = _record(name="resnet34", config=other.to_dict(), network=other.arch_key(), started="2026-01-03T00:00:00Z")
    for r in (a, b, c):
        store.add(r)
    assert [r.id for r in store.list()] == [c.id, b.id, a.id]  # newest first
    assert store.list(kind="sweep") == [b]
    assert store.list(device="h100") == [b]
    assert {r.id for r in store.list(network=explorer.preset("resnet18").arch_key())} == {a.id, b.id}
    assert store.delete([a.id, "nope"]) == 1 and store.get(a.id) is None


def test_import_is_idempotent_and_reports_bad_lines_by_number(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    good = [_record(), _record(kind="profile")]
    lines = [good[0].to_json(), "{not json", json.dumps({**good[1].to_dict(), "status": "exploded"}),
             "", good[1].to_json()]
    report = store.import_lines(lines)
    assert report.added == 2 and report.present == 0
    assert [n for n, _ in report.errors] == [2, 3]
    assert "status='exploded'" in report.errors[1][1]
    again = store.import_lines(lines)
    assert again.added == 0 and again.present == 2
    assert len(store.list()) == 2


def test_a_file_that_is_not_a_store_is_reported_and_left_untouched(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"my thesis, chapter 3\n" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a run store"):
        RunStore(path).add(_record())
    assert path.read_bytes() == before
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE notes (text TEXT)")
    with pytest.raises(StoreError, match="not a run store"):
        RunStore(other).list()


def test_a_newer_schema_is_refused_and_an_older_one_migrated(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path).add(_record())
    with sqlite3.connect(path) as con:
        con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer version"):
        RunStore(path).list()
    empty = tmp_path / "empty.sqlite"  # schema version 0: an empty SQLite file
    sqlite3.connect(empty).close()
    RunStore(empty).add(_record())
    with sqlite3.connect(empty) as con:
        assert con.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_read_only_store_says_so_in_one_line(tmp_path):
    """The store's folder mounted read-only (a real read-only file system, in a mount namespace)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    RunStore(folder / "runs.sqlite").add(_record())
    before = (folder / "runs.sqlite").read_bytes()
    (tmp_path / "one.jsonl").write_text(_record(kind="profile").to_json() + "\n")
    env = {**os.environ, "RESNET_EXPLORER_STORE": str(folder / "runs.sqlite")}
    out = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount --bind -o ro {folder} {folder} && "
         f"{sys.executable} -m explorer runs import {tmp_path / 'one.jsonl'}"],
        capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 1, out.stderr
    assert out.stderr.count("\n") == 1 and "is read-only" in out.stderr and "Traceback" not in out.stderr
    assert (folder / "runs.sqlite").read_bytes() == before


def test_a_store_locked_for_long_says_so(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path).list()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked"):
            RunStore(path, timeout_s=0.2).add(_record())
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_many_writers_lose_nothing(tmp_path):
    """8 threads (app sessions) and 4 processes (commands) writing at once: every record is kept."""
    path = tmp_path / "runs.sqlite"
    script = ("import sys, explorer\nfrom explorer.runs import RunRecord, RunStore\n"
              "s = RunStore(sys.argv[1])\ncfg = explorer.preset('resnet20')\n"
              "for i in range(25):\n"
              "    s.add(RunRecord(kind='latency', name=f'p{sys.argv[2]}-{i}', config=cfg.to_dict(),"
              " network=cfg.arch_key(), settings={}, device='CPU', result={'i': i}))\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), str(n)], cwd=ROOT) for n in range(4)]

    def session(n):
        s = RunStore(path)
        for i in range(25):
            s.add(_record(name=f"t{n}-{i}"))

    threads = [threading.Thread(target=session, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(p.wait(timeout=120) == 0 for p in procs)
    names = {r.name for r in RunStore(path).list()}
    assert len(names) == 12 * 25


def test_where_the_store_lives(monkeypatch, tmp_path):
    monkeypatch.setenv("RESNET_EXPLORER_STORE", "off")
    assert default_path() is None and open_store() is None
    monkeypatch.setenv("RESNET_EXPLORER_STORE", str(tmp_path / "a.sqlite"))
    assert default_path() == tmp_path / "a.sqlite"
    monkeypatch.delenv("RESNET_EXPLORER_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_path() == tmp_path / "data" / "resnet-explorer" / "runs.sqlite"
    assert open_store(tmp_path / "b.sqlite").path == tmp_path / "b.sqlite"
    assert open_store(tmp_path / "b.sqlite", off=True) is None


def test_cli_list_show_export_import_delete(tmp_path):
    store = tmp_path / "runs.sqlite"
    a, b = _record(), _record(kind="sweep", result={"points": [{"batch": 4, "throughput": 120.0}]})
    RunStore(store).add(a)
    RunStore(store).add(b)
    listed = json.loads(cli("runs", "list", "--json", store=store).stdout)
    assert {r["id"] for r in listed} == {a.id, b.id}
    assert {"id", "kind", "name", "config", "device", "status", "started", "result"} <= set(listed[0])
    assert [r["id"] for r in json.loads(cli("runs", "list", "--kind", "sweep", "--json", store=store).stdout)] == [b.id]
    assert json.loads(cli("runs", "list", "--config", "resnet34", "--json", store=store).stdout) == []
    text = cli("runs", "list", store=store).stdout
    assert a.id[:8] in text and "12.5 ms median" in text and "120 img/s at batch 4" in text
    assert json.loads(cli("runs", "show", a.id[:8], "--json", store=store).stdout) == a.to_dict()
    out = tmp_path / "runs.jsonl"
    cli("runs", "export", "-o", str(out), store=store)
    assert len(out.read_text().splitlines()) == 2
    other = tmp_path / "other.sqlite"
    assert "imported 2 runs" in cli("runs", "import", str(out), store=other).stdout
    assert "imported 0 runs; 2 already kept" in cli("runs", "import", str(out), store=other).stdout
    assert "deleted 1 run" in cli("runs", "delete", a.id, store=other).stdout
    missing = cli("runs", "show", "ffffffff", store=other, check=False)
    assert missing.returncode == 2 and "see `runs list`" in missing.stderr and "Traceback" not in missing.stderr


def test_cli_reports_a_broken_store_in_one_line(tmp_path):
    store = tmp_path / "runs.sqlite"
    store.write_text("not a database")
    out = cli("runs", "list", store=store, check=False)
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "left untouched" in out.stderr
    assert store.read_text() == "not a database"


def test_headlines_write_long_times_in_seconds():
    from explorer.runs import headline, make_record

    cfg = explorer.preset("resnet20")

    def line(kind, result):
        return headline(make_record(kind, cfg, {}, "CPU", result))
    assert line("latency", {"median_ms": 12.345, "batch": 8}) == "12.3 ms median, batch 8"
    assert line("latency", {"median_ms": 1234.5, "batch": 256}) == "1.23 s median, batch 256"
    assert line("profile", {"total_ms": 4567.8}) == "4.57 s in all"
    assert line("profile", {"total_ms": 999.7}) == "1 s in all"  # not "1e+03 ms"
