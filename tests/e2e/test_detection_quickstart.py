"""End-to-end: the README's main job (configs/quickstart.yaml) trains, reaches its AP50 bar, draws;
and the same config reaches the same bar on the Detectron2 engine (skipped without Detectron2).

The bar is below what every one of 5 seeds reached on each engine (docs/engines.md, "Training
parity, measured": torchvision 87.5-93.3, Detectron2 86.2-90.2), so a run below it is a
regression of the recipe or of an engine, not bad luck."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO

ROOT = str(REPO)
AP50_BAR = 70.0  # percent, as Detectron2 reports it


def _train_quickstart(tmp_path, *opts):
    out = tmp_path / "quickstart"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               DETECTRON2_DATASETS=str(tmp_path / "datasets"))
    cmd = [sys.executable, os.path.join(ROOT, "tools", "train_net.py"),
           "--config-file", os.path.join(ROOT, "configs", "quickstart.yaml"), "OUTPUT_DIR", str(out), *opts]
    subprocess.run(cmd, check=True, env=env, cwd=str(tmp_path), timeout=3600)
    with open(out / "inference" / "shapes_val" / "coco_eval_results.json") as f:
        bbox = json.load(f)["bbox"]
    print(f"quickstart {' '.join(opts) or '(as shipped)'}: box AP50 {bbox['AP50']:.1f}, AP {bbox['AP']:.1f}")
    return out, bbox


@pytest.mark.slow
def test_quickstart_reaches_ap50_bar(tmp_path):
    out, bbox = _train_quickstart(tmp_path)
    assert bbox["AP50"] >= AP50_BAR
    pngs = os.listdir(out / "vis" / "shapes_val")
    assert len(pngs) == 8 and all(p.endswith(".png") for p in pngs)
    assert (out / "model_final.pth").is_file() and (out / "metrics.json").is_file()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("detectron2") is None,
                    reason="Detectron2 is not installed; build it from source (docs/detectron2.md) to run this test")
def test_quickstart_reaches_the_same_bar_on_detectron2(tmp_path):
    _, bbox = _train_quickstart(tmp_path, "ENGINE", "detectron2", "TEST.VIS_IMAGES", "0")
    assert bbox["AP50"] >= AP50_BAR
