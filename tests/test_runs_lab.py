"""Lab runs in the run store: each variant x seed kept with its per-epoch curves as each epoch
ends, read back whole after a reload, from the CLI and the app alike."""
import json
import subprocess
import sys
from pathlib import Path


from explorer.lab import LabResult
from explorer.runs import Keeper, RunStore
from explorer.runs.lab_runs import LabRecorder, lab_result_of, latest_lab_result

from test_app import custom_lab, fresh, show

ROOT = Path(__file__).resolve().parents[1]


def _lab_cli(store, *args):
    out = subprocess.run([sys.executable, "-m", "explorer", "lab", "custom", "--config", "resnet20", "--set",
                          "depths=[1,1,1]", "--epochs", "2", "--max-train", "60", "--batch-size", "30",
                          "--seeds", "2", "--json", "--store", str(store), *args],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_cli_lab_keeps_every_run_and_reads_back_the_experiment(tmp_path):
    store = tmp_path / "runs.sqlite"
    printed = _lab_cli(store)
    records = RunStore(store).list(kind="lab")
    assert len(records) == 2 and {r.result["settings"]["seed"] for r in records} == {0, 1}
    assert all(r.status == "complete" and len(r.result["history"]) == 2 for r in records)
    assert all(r.device.startswith("CPU") and "1 thread" in r.device for r in records)
    assert len({r.settings["experiment_run"] for r in records}) == 1
    back, newest = latest_lab_result(Keeper(RunStore(store)), "custom")
    assert back.to_dict()["results"] == printed["results"]
    assert back.status == "complete" and back.seeds == (0, 1)
    assert LabResult.from_dict(printed).to_rows() == back.to_rows()


def test_each_epoch_is_written_as_it_ends(tmp_path):
    """A run in progress is in the store with the epochs it finished (a crash keeps them)."""
    from explorer import lab

    store = RunStore(tmp_path / "runs.sqlite")
    recorder = LabRecorder(Keeper(store))
    seen_in_store: list[tuple[str, int]] = []

    def on_update(partial):
        recorder.update(partial)
        for r in store.list(kind="lab"):
            seen_in_store.append((r.status, len(r.result["history"])))

    lab.run_experiment("custom", configs=[lab.EXPERIMENTS["skip_span"].configs[0]], seeds=1, epochs=3,
                       max_train=60, batch_size=30, on_update=on_update, on_end=recorder.finish)
    assert ("running", 1) in seen_in_store and ("running", 2) in seen_in_store
    final = store.list(kind="lab")
    assert [(r.status, len(r.result["history"])) for r in final] == [("complete", 3)]


def test_a_cancelled_experiment_is_kept_as_cancelled(tmp_path):
    from explorer import lab

    store = RunStore(tmp_path / "runs.sqlite")
    recorder = LabRecorder(Keeper(store))
    epochs_done = []
    lab.run_experiment("custom", configs=[lab.EXPERIMENTS["skip_span"].configs[0]], seeds=1, epochs=5,
                       max_train=60, batch_size=30, on_update=lambda p: (recorder.update(p), epochs_done.append(
                           sum(len(r.history) for r in p.runs))),
                       should_stop=lambda: bool(epochs_done) and epochs_done[-1] >= 2, on_end=recorder.finish)
    (record,) = store.list(kind="lab")
    assert record.status == "cancelled" and len(record.result["history"]) == 2
    assert "Cancelled" in record.message or "cancel" in record.message.lower()
    assert lab_result_of([record]).cancelled


def test_app_lab_is_kept_and_shown_after_a_reload(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_EXPLORER_STORE", str(tmp_path / "runs.sqlite"))
    at = custom_lab(epochs=1, seeds=1)
    at.button(key="lab_run").click().run()
    assert not at.exception
    records = RunStore(tmp_path / "runs.sqlite").list(kind="lab")
    assert len(records) == 1 and records[0].status == "complete"
    # a new session (a reload) of the same server: the kept result shows, said to be kept
    again = show(fresh({"preset": "resnet20"}), "Compare")
    again.button(key="compare_add").click().run()
    again = show(again, "Lab")
    again.selectbox(key="lab_experiment").select("custom").run()
    assert not again.exception
    assert any("Kept from an earlier run" in i.value for i in again.info)
    from test_app import table_with

    assert list(table_with(again, "val_acc")["run"]) == ["resnet20"]


def test_app_lab_choices_hold_across_tab_switches():
    at = show(fresh(), "Lab")
    at.selectbox(key="lab_experiment").select("units").run()
    at.number_input(key="lab_epochs").set_value(3).run()
    at = show(show(at, "Diagram"), "Lab")
    assert at.selectbox(key="lab_experiment").value == "units"
    assert at.number_input(key="lab_epochs").value == 3
