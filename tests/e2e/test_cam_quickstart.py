"""End-to-end: the CAM quickstart trains a small Res2Net whose Grad-CAM localises the shapes."""
import json
import os
import subprocess
import sys

import pytest
from tests.helpers import REPO

ROOT = str(REPO)


@pytest.mark.slow
def test_cam_quickstart_beats_the_baselines(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               DETECTRON2_DATASETS=str(tmp_path / "datasets"))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "cam_quickstart.py"), "--output", str(out)],
                          env=env, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"] == "wsol"
    baseline = max(summary["baseline_centre_box_gt_known_loc"], summary["baseline_whole_image_gt_known_loc"])
    # "clearly": the aligned maps at least 15 points above the best model-free guess. Under the
    # published protocol the 4x4 maps of 64-pixel images sit half a stride (7.5 px) off the
    # evidence, which costs most boxes their IoU 0.5 (one run: 33.0 vs 78.5 aligned); the
    # published-protocol maps must still beat the centre box on MaxBoxAccV2.
    assert summary["gradcam_aligned_gt_known_loc"] >= baseline + 15.0, summary["table"]
    assert summary["gradcam_max_box_acc_v2"] > summary["baseline_centre_box_max_box_acc_v2"], summary["table"]
    assert summary["val_accuracy"] > 50.0  # 4 classes: chance is 25%
    assert os.path.getsize(out / "cams.png") > 10_000
    assert (out / "res2net_small.json").exists() and (out / "results.json").exists()
