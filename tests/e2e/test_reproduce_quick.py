"""End-to-end: `tools/reproduce.py detection-voc --quick` with a shortened schedule: both runs
train on the generated shapes in VOC format, are scored with the VOC07 11-point mAP, and the
comparison (table with Δ, JSON, chart) is written; running it again skips both runs."""
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO


@pytest.mark.slow
def test_reproduce_detection_voc_quick(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               DETECTRON2_DATASETS=str(tmp_path / "datasets"))
    cmd = [sys.executable, str(REPO / "tools" / "reproduce.py"), "detection-voc", "--quick",
           "--output-root", str(tmp_path / "out"),
           # shortened schedule: the pipeline, not the accuracy, is under test here
           "SOLVER.MAX_ITER", "20", "SOLVER.STEPS", "(15,)", "SOLVER.WARMUP_ITERS", "5",
           "SOLVER.CHECKPOINT_PERIOD", "0", "TEST.VIS_IMAGES", "0"]
    first = subprocess.run(cmd, env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=1200)
    assert first.returncode == 0, first.stderr[-3000:]
    print(first.stdout[-1500:])
    root = tmp_path / "out" / "detection-voc-quick"
    assert "| metric | resnet-24w1s | res2net-8w4s | Δ |" in first.stdout
    comparison = json.loads((root / "comparison" / "comparison.json").read_text())
    (table,) = comparison["tables"]
    assert (table["task"], table["dataset"]) == ("detection-voc", "shapes_voc_val")
    for run in ("resnet-24w1s", "res2net-8w4s"):
        assert 0.0 <= table["values"][run]["mAP"] <= 100.0
        results = json.loads((root / run / "inference" / "shapes_voc_val" / "voc_eval_results.json").read_text())
        assert set(results["bbox"]) >= {"AP50", "AP50_11point", "AP50_allpoint", "AP50-circle"}
    assert table["delta"]["res2net-8w4s"]["mAP"] == pytest.approx(
        table["values"]["res2net-8w4s"]["mAP"] - table["values"]["resnet-24w1s"]["mAP"])
    assert (root / "comparison" / "comparison.png").stat().st_size > 0

    again = subprocess.run(cmd, env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("finished earlier, skipped") == 2
