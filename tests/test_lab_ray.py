"""The Lab on Ray: each variant x seed a task on a real local Ray cluster, the same numbers as the
local worker processes, a Ctrl-C that keeps the finished epochs, a lost worker said and its
epochs kept.

A local Ray cluster talks over the host's own address; each test runs it in a network namespace
of its own that has only loopback (`unshare -n`), with usage statistics off and its files in a
temporary folder.
"""
import json
import os
import re
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


def _ray_task_processes(netns: str) -> list[int]:
    """Processes running a Lab task in the network namespace `netns` (the test's own cluster)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            name = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            if name.startswith(b"ray::train_task") and os.readlink(f"/proc/{pid}/ns/net") == netns:
                found.append(int(pid))
        except OSError:
            continue
    return found


@needs_ray
def test_a_lost_worker_is_said_and_ctrl_c_cancels_the_rest_keeping_finished_epochs(ray_env):
    """One Ray start for both: once both runs have finished an epoch one task's worker is killed
    (its run is said lost, its epochs kept, the other goes on); then Ctrl-C cancels the other."""
    command = [sys.executable, "-m", "explorer", "lab", "custom", "--config", "resnet20", "--set", "depths=[1,1,1]",
               "--batch-size", "30", "--seeds", "2", "--epochs", "40", "--json", "--no-store", "--executor", "ray"]
    proc = subprocess.Popen(_isolated(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ray_env)
    lines, killed = [], []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, "the command ended early:\n" + "".join(lines)
            lines.append(line)
            if not killed and len({l.split(" epoch ")[0] for l in lines if " epoch " in l}) == 2:
                killed = _ray_task_processes(os.readlink(f"/proc/{proc.pid}/ns/net"))[:1]
                assert killed, "no Lab task process found"
                os.kill(killed[0], signal.SIGKILL)  # a process of this test's own cluster
            if "worker lost" in line:
                break
        proc.send_signal(signal.SIGINT)  # exec'd by the shell: the command itself
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    result, said = json.loads(out), [line for line in lines if "worker lost" in line]
    runs = _per_seed(result)
    assert result["status"] == "cancelled" and "Stopped (Ctrl-C)" in err
    assert len(runs) == 2 and all(status == "cancelled" for _, _, status in runs.values())
    assert all(1 <= len(history) < 40 for history, _, _ in runs.values())  # every task was cancelled or lost
    (name, seed), = [key for key in runs if f"run {key[0]} seed {key[1]}: worker lost" in said[0]]
    assert f"worker lost after epoch {len(runs[name, seed][0])} (" in said[0]  # its finished epochs kept
    printed = sum(1 for line in lines + err.splitlines() if re.match(r"\[\d+/\d+\] .* epoch \d+/40: ", line))
    assert sum(len(history) for history, _, _ in runs.values()) >= printed >= 2  # every epoch printed is kept


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


APP_ON_RAY = """
import json, sys
sys.path.insert(0, "tests")
from test_app import custom_lab
from explorer.runs import RunStore

at = custom_lab(epochs=1, seeds=2)
at.radio(key="lab_executor").set_value("ray").run()
at.button(key="lab_run").click().run()
kept = RunStore(sys.argv[1]).list(kind="lab")
print("RESULT", json.dumps({"exception": [str(e.value) for e in at.exception], "captions": [c.value for c in at.caption],
                            "kept": sorted((r.result["settings"]["seed"], r.status, len(r.result["history"])) for r in kept)}))
"""


@needs_ray
def test_the_app_trains_on_ray_when_asked(ray_env, tmp_path):
    store = tmp_path / "runs.sqlite"
    env = dict(ray_env, RESNET_EXPLORER_STORE=str(store))
    out = subprocess.run(_isolated([sys.executable, "-c", APP_ON_RAY, str(store)]), capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=180)
    assert out.returncode == 0, out.stderr
    result = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert result["exception"] == []
    assert any("on a local Ray cluster" in c for c in result["captions"]), result["captions"]
    assert result["kept"] == [[0, "complete", 1], [1, "complete", 1]]


def test_the_app_offers_the_choice_and_trains_here_by_default():
    sys.path.insert(0, str(ROOT / "tests"))
    from test_app import fresh, show

    at = show(fresh(), "Lab")
    choice = at.radio(key="lab_executor")
    assert choice.value == "local" and list(choice.options) == ["this machine", "Ray"]


@pytest.mark.skipif(not HAVE_RAY, reason="needs ray")
def test_an_address_where_nothing_answers_is_refused_at_once():
    from explorer.lab.ray_runs import connect

    with pytest.raises(ConfigError, match="nothing answers there"):  # Ray itself would try for minutes
        connect(Executor("ray", "127.0.0.1:1"))
