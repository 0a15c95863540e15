"""End-to-end: the README's main job (configs/quickstart.yaml) trains, reaches its AP50 bar, draws."""
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO

ROOT = str(REPO)


@pytest.mark.slow
def test_quickstart_reaches_ap50_bar(tmp_path):
    out = tmp_path / "quickstart"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               DETECTRON2_DATASETS=str(tmp_path / "datasets"))
    cmd = [sys.executable, os.path.join(ROOT, "tools", "train_net.py"),
           "--config-file", os.path.join(ROOT, "configs", "quickstart.yaml"), "OUTPUT_DIR", str(out)]
    subprocess.run(cmd, check=True, env=env, cwd=str(tmp_path), timeout=3600)
    with open(out / "inference" / "shapes_val" / "coco_eval_results.json") as f:
        bbox = json.load(f)["bbox"]
    print(f"quickstart box AP50 {bbox['AP50']:.1f}, AP {bbox['AP']:.1f}")
    assert bbox["AP50"] >= 50.0  # percent, as Detectron2 reports it
    pngs = os.listdir(out / "vis" / "shapes_val")
    assert len(pngs) == 8 and all(p.endswith(".png") for p in pngs)
    assert (out / "model_final.pth").is_file() and (out / "metrics.json").is_file()
