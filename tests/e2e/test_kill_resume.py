"""A training run killed with SIGKILL at a random iteration and resumed with ``--resume`` ends with
the weights of the run that was never interrupted (CPU, one thread: both are bit-reproducible).

Shortened schedules of the three quickstart configs on the torchvision engine; the iteration of
the kill is drawn anew each run and printed, so a failure names the iteration to replay.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.helpers import REPO

TASKS = {
    "detection": ("configs/quickstart.yaml", ["TEST.VIS_IMAGES", "0"]),
    "saliency": ("configs/sod/quickstart.yaml", ["SOLVER.IMS_PER_BATCH", "4"]),
    "classification": ("configs/cam/quickstart.yaml", ["SOLVER.IMS_PER_BATCH", "8"]),
}
MAX_ITER = 8


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    return tmp_path_factory.mktemp("datasets")


def _command(config, opts, out, resume=False):
    return ([sys.executable, str(REPO / "tools" / "train_net.py"), "--config-file", str(REPO / config)]
            + (["--resume"] if resume else [])
            + ["OUTPUT_DIR", str(out), "SOLVER.MAX_ITER", str(MAX_ITER), "SOLVER.STEPS", "(6,)",
               "SOLVER.WARMUP_ITERS", "2", "SOLVER.CHECKPOINT_PERIOD", "2", "SOLVER.LOG_PERIOD", "1",
               "NUM_THREADS", "1", "DATALOADER.NUM_WORKERS", "0", "SEED", "3", "MODEL.DEVICE", "cpu", *opts])


def _env(datasets):
    return dict(os.environ, PYTHONPATH=str(REPO), DETECTRON2_DATASETS=str(datasets), OMP_NUM_THREADS="1")


def _logged_iterations(out):
    path = out / "metrics.json"
    if not path.is_file():
        return -1
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip().endswith("}")]
    return max((line["iteration"] for line in lines if "total_loss" in line), default=-1)


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(TASKS))
def test_killed_run_resumes_to_the_unbroken_weights(task, tmp_path, datasets):
    config, opts = TASKS[task]
    env = _env(datasets)
    unbroken, broken = tmp_path / "unbroken", tmp_path / "broken"
    subprocess.run(_command(config, opts, unbroken), check=True, env=env, cwd=tmp_path, timeout=900,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    kill_after = random.randint(1, MAX_ITER - 1)  # the iteration whose metrics line triggers the kill
    print(f"{task}: killing after iteration {kill_after}")
    proc = subprocess.Popen(_command(config, opts, broken), env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 900
    while _logged_iterations(broken) < kill_after and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (broken / "model_final.pth").exists() or kill_after >= MAX_ITER - 1
    subprocess.run(_command(config, opts, broken, resume=True), check=True, env=env, cwd=tmp_path, timeout=900,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    want = torch.load(unbroken / "model_final.pth", weights_only=True)["model"]
    got = torch.load(broken / "model_final.pth", weights_only=True)["model"]
    assert want.keys() == got.keys()
    diff = max((want[k].double() - got[k].double()).abs().max().item() for k in want if want[k].numel())
    print(f"{task}: max abs weight difference {diff:g}")
    assert diff <= 1e-6
    # Metrics are a continuation too: each iteration once, in order.
    lines = [json.loads(line) for line in (broken / "metrics.json").read_text().splitlines()]
    iterations = [line["iteration"] for line in lines if "total_loss" in line]
    assert iterations == list(range(MAX_ITER))
    assert (broken / "final_results.json").is_file()


@pytest.mark.slow
def test_a_run_killed_during_its_final_evaluation_evaluates_on_resume(tmp_path, datasets):
    config, opts = TASKS["detection"]
    out = tmp_path / "run"
    env = _env(datasets)
    subprocess.run(_command(config, opts, out), check=True, env=env, cwd=tmp_path, timeout=900,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = json.loads((out / "final_results.json").read_text())
    # As if killed after model_final was written but before the evaluation finished:
    (out / "final_results.json").unlink()
    done = subprocess.run(_command(config, opts, out, resume=True), env=env, cwd=tmp_path, timeout=900,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "running the final evaluation the last run did not finish" in done.stderr + done.stdout
    assert json.loads((out / "final_results.json").read_text()) == results
