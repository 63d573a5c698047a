"""The Lab on Ray: each variant x seed a task on a real local Ray cluster, the same numbers as the
local worker processes, a Ctrl-C that keeps the finished epochs, a lost worker said and its
epochs kept.

A local Ray cluster talks over the host's own address; each test runs it in a network namespace
of its own that has only loopback (`unshare -n`), with usage statistics off and its files in a
temporary folder.
"""
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from explorer.errors import ConfigError
from explorer.lab import TrainSettings
from explorer.lab.ray_runs import Executor, resources
from explorer.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]
RUN = ["--config", "resnet20", "--config", "plain20", "--set", "depths=[1,1,1]", "--batch-size", "30",
       "--seeds", "2", "--json"]


def _can_isolate() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True).returncode == 0


try:
    import ray  # noqa: F401
    HAVE_RAY = True
except ImportError:
    HAVE_RAY = False

needs_ray = pytest.mark.skipif(not (HAVE_RAY and _can_isolate()),
                               reason="needs ray and a loopback-only network namespace (unshare -n)")


@pytest.fixture
def ray_env():
    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths have a length limit
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_TMPDIR=tmp, HOME=tmp,
               RESNET_EXPLORER_STORE="off", PYTHONPATH=str(ROOT))
    yield env
    shutil.rmtree(tmp, ignore_errors=True)


def _isolated(cmd: list[str]) -> list[str]:
    return ["unshare", "-n", "sh", "-c", "ip link set lo up && exec " + shlex.join(cmd)]


def _lab(*args: str) -> list[str]:
    return [sys.executable, "-m", "explorer", "lab", "custom", *RUN, *args]


def _per_seed(result: dict) -> dict:
    """Every run's numbers: per-epoch losses and accuracies, gradient norms at initialisation."""
    return {(r["run"], s["seed"]): ([(e["epoch"], e["lr"], e["train_loss"], e["train_acc"], e["val_loss"],
                                      e["val_acc"]) for e in s["history"]],
                                    [g["grad_norm"] for g in s["grad_norms"]], s["status"])
            for r in result["runs"] for s in r["per_seed"]}


@needs_ray
def test_ray_gives_the_local_numbers_and_keeps_every_run(ray_env, tmp_path):
    """2 variants x 2 seeds as Ray tasks: the same losses and accuracies, to the last bit, as the
    local worker processes, streamed epoch by epoch and kept in the run store."""
    small = ["--epochs", "2", "--max-train", "60"]
    local = subprocess.run(_lab(*small, "--no-store"), capture_output=True, text=True, cwd=ROOT,
                           env=ray_env, timeout=120)
    assert local.returncode == 0, local.stderr
    store = tmp_path / "runs.sqlite"
    on_ray = subprocess.run(_isolated(_lab(*small, "--executor", "ray", "--store", str(store))),
                            capture_output=True, text=True, cwd=ROOT, env=ray_env, timeout=180)
    assert on_ray.returncode == 0, on_ray.stderr
    assert "on a local Ray cluster (0 GPUs, " in on_ray.stderr and "one CPU per run" in on_ray.stderr
    assert on_ray.stderr.count(" epoch ") == 8  # every epoch of the 4 runs was heard as it ended
    mine, theirs = json.loads(on_ray.stdout), json.loads(local.stdout)
    assert mine["status"] == "complete" and len(_per_seed(mine)) == 4
    assert _per_seed(mine) == _per_seed(theirs)
    assert mine["results"] == [{**row, "seconds": mine_row["seconds"]}
                               for row, mine_row in zip(theirs["results"], mine["results"])]
    kept = RunStore(store).list(kind="lab")
    assert sorted((r.result["config"]["name"], r.result["settings"]["seed"], r.status, len(r.result["history"]))
                  for r in kept) == sorted((name, seed, "complete", 2) for name, seed in _per_seed(theirs))


@needs_ray
def test_ctrl_c_cancels_every_task_and_keeps_the_finished_epochs(ray_env):
    proc = subprocess.Popen(_isolated(_lab("--epochs", "30", "--no-store", "--executor", "ray")),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ray_env)
    seen = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, "the command ended before an epoch finished"
            if " epoch " in line:
                seen.append(line)
                break
        proc.send_signal(signal.SIGINT)  # exec'd by the shell: the command itself
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    result = json.loads(out)
    runs = _per_seed(result)
    assert result["status"] == "cancelled" and "Stopped (Ctrl-C)" in err
    assert runs, "the runs that had started are kept"
    assert all(status in ("cancelled", "complete") for _, _, status in runs.values())
    assert any(status == "cancelled" for _, _, status in runs.values())
    assert all(len(history) < 30 for history, _, _ in runs.values())  # every task was cancelled
    assert sum(len(history) for history, _, _ in runs.values()) >= len(seen)  # what was printed is kept


LOSE_A_WORKER = """
import json, os, signal
from explorer import lab
from explorer.arch.presets import preset
from explorer.lab.ray_runs import Executor

netns, killed, notes = os.readlink("/proc/self/ns/net"), [], []

def kill_one_worker(partial):
    # once both runs have finished an epoch, kill one process running a Lab task in this namespace
    if killed or sum(1 for r in partial.runs if r.history) < 2:
        return
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            name = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")[0]
            if name.startswith(b"ray::train_task") and os.readlink(f"/proc/{pid}/ns/net") == netns:
                os.kill(int(pid), signal.SIGKILL)
                killed.append(pid)
                return
        except OSError:
            continue

res = lab.run_experiment("custom", configs=[preset("resnet20").replace(depths=[1, 1, 1])], seeds=2, epochs=6, max_train=300,
                         batch_size=30, on_update=kill_one_worker, executor=Executor("ray", on_note=notes.append))
print("RESULT", json.dumps([len(killed), [(r.seed, len(r.history), r.status) for r in res.runs], res.status, notes]))
"""


@needs_ray
def test_a_lost_worker_is_said_and_its_finished_epochs_kept(ray_env):
    out = subprocess.run(_isolated([sys.executable, "-c", LOSE_A_WORKER]), capture_output=True, text=True,
                         cwd=ROOT, env=ray_env, timeout=180)
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    killed, runs, status, notes = json.loads(line[len("RESULT "):])  # runs: [seed, epochs, status]
    assert killed == 1
    lost = [r for r in runs if r[2] == "cancelled"]
    assert len(lost) == 1 and 1 <= lost[0][1] < 6, runs
    assert [r for r in runs if r[2] == "complete" and r[1] == 6], runs  # the other run went on
    said = [n for n in notes if "worker lost" in n]
    assert len(said) == 1 and said[0].startswith(f"run resnet20 seed {lost[0][0]}: worker lost after epoch "
                                                 f"{lost[0][1]} ("), notes
    assert status == "complete"


def test_ray_is_imported_only_for_the_ray_executor():
    code = ("import sys, explorer, explorer.lab, explorer.cli, explorer.lab.running, explorer.cli.lab; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr


def test_each_task_asks_for_a_gpu_only_where_its_run_trains_on_one():
    digits, cifar = TrainSettings(), TrainSettings(dataset="cifar10")
    assert resources(cifar, gpus=4) == {"num_gpus": 1}
    assert resources(TrainSettings(device="cuda"), gpus=1) == {"num_gpus": 1}
    assert resources(digits, gpus=4) == {"num_cpus": 1}  # auto trains the digits on the CPU
    assert resources(TrainSettings(dataset="cifar10", device="cpu"), gpus=4) == {"num_cpus": 1}
    assert resources(cifar, gpus=0) == {"num_cpus": 1}
    with pytest.raises(ConfigError, match="the Ray cluster has no GPU"):
        resources(TrainSettings(device="cuda"), gpus=0)


def test_the_executor_is_checked():
    assert Executor().kind == "local" and Executor("ray", "10.0.0.5:6379").address == "10.0.0.5:6379"
    with pytest.raises(ConfigError, match="executor"):
        Executor("dask")
    with pytest.raises(ConfigError, match="ray_address"):
        Executor("local", "10.0.0.5:6379")


def test_cli_refuses_an_address_without_ray():
    out = subprocess.run([sys.executable, "-m", "explorer", "lab", "degradation", "--ray-address", "h:6379"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and "ray_address='h:6379' is invalid: only with the ray executor" in out.stderr
