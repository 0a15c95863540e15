"""End-to-end: the CAM quickstart is configs/cam/quickstart.yaml run by the same tools as the other
quickstarts. tools/train_net.py trains a small Res2Net classifier (top-1 accuracy, Grad-CAM pictures),
then tools/cam_eval.py and tools/cam_visualize.py --config-file evaluate and draw the network it wrote;
its Grad-CAM localises the shapes clearly better than the model-free baselines."""
import json
import os
import subprocess
import sys
import time

import pytest

from tests.helpers import REPO

ROOT = str(REPO)
CONFIG = os.path.join(ROOT, "configs", "cam", "quickstart.yaml")


def _tool(name, *args, env, cwd):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", name), *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(f"{name}: {time.perf_counter() - start:.0f} s")
    return proc.stdout


@pytest.mark.slow
def test_cam_quickstart_beats_the_baselines(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               DETECTRON2_DATASETS=str(tmp_path / "datasets"))
    out = tmp_path / "out"
    _tool("train_net.py", "--config-file", CONFIG, "OUTPUT_DIR", str(out), env=env, cwd=str(tmp_path))
    top1 = json.loads((out / "inference" / "wsol_shapes_val" / "classification_results.json").read_text())
    accuracy = top1["results"]["classification"]["top1"]
    assert accuracy > 50.0  # 4 classes: chance is 25%
    pictures = sorted(os.listdir(out / "vis" / "wsol_shapes_val"))
    assert len(pictures) == 8  # TEST.VIS_IMAGES

    table = _tool("cam_eval.py", "--config-file", CONFIG, "--align-cams", "--faithfulness-images", "16",
                  "--output", str(out / "results.json"), "OUTPUT_DIR", str(out), env=env, cwd=str(tmp_path))
    print(table)
    result = json.loads((out / "results.json").read_text())
    assert result["settings"]["protocol"] == "wsol"
    rows = {(r["model"], r["method"]): r for r in result["rows"]}
    centre, whole = rows[("baseline", "centre box")], rows[("baseline", "whole image")]
    baseline = max(centre["gt_known_loc"], whole["gt_known_loc"])
    aligned = rows[("quickstart", "gradcam (aligned)")]["gt_known_loc"]
    published = rows[("quickstart", "gradcam")]
    print(f"CAM quickstart: top-1 {accuracy:.1f}%, Grad-CAM GT-known Loc {aligned:.1f}% (aligned maps) vs best "
          f"baseline {baseline:.1f}%; published-protocol MaxBoxAccV2 {published['max_box_acc_v2']:.1f} vs centre box "
          f"{centre['max_box_acc_v2']:.1f}")
    # "clearly": the aligned maps at least 15 points above the best model-free guess. Under the
    # published protocol the 4x4 maps of 64-pixel images sit half a stride (7.5 px) off the
    # evidence, which costs most boxes their IoU 0.5; the published-protocol maps must still beat
    # the centre box on MaxBoxAccV2.
    assert aligned >= baseline + 15.0, table
    assert published["max_box_acc_v2"] > centre["max_box_acc_v2"], table

    _tool("cam_visualize.py", "--config-file", CONFIG, "--num-images", "8", "--output", str(out / "cams.png"),
          "OUTPUT_DIR", str(out), env=env, cwd=str(tmp_path))
    assert os.path.getsize(out / "cams.png") > 10_000
