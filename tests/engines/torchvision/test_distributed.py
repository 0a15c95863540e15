"""Two processes under torchrun (gloo on the CPU): DDP training, checkpoint and gathered evaluation."""
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO

ROOT = str(REPO)


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               DETECTRON2_DATASETS=str(tmp_path / "datasets"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29571",
           os.path.join(ROOT, "tools", "train_net.py"),
           "--config-file", os.path.join(ROOT, "configs", "quickstart.yaml"),
           "SOLVER.MAX_ITER", "3", "SOLVER.CHECKPOINT_PERIOD", "2", "SOLVER.LOG_PERIOD", "1", "TEST.VIS_IMAGES", "0",
           "OUTPUT_DIR", str(out)]
    subprocess.run(cmd, check=True, env=env, cwd=str(tmp_path), timeout=1200)
    assert (out / "model_final.pth").is_file() and (out / "model_0000001.pth").is_file()
    with open(out / "metrics.json") as f:
        lines = [json.loads(line) for line in f]
    assert [entry["iteration"] for entry in lines if "total_loss" in entry] == [0, 1, 2]  # rank 0 writes, once
    # detections of both processes' halves of shapes_val were gathered and evaluated together
    with open(out / "inference" / "shapes_val" / "coco_instances_results.json") as f:
        image_ids = {d["image_id"] for d in json.load(f)}
    assert min(image_ids) <= 50 < max(image_ids)
    assert any(entry.get("bbox/AP50") is not None for entry in lines)
