"""tools/cam_eval.py on the authors' metadata layout with saved score maps (no model needed)."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np

from res2net_det.evaluation.bootstrap import cam_metrics
from res2net_det.evaluation.per_image import load_per_image
from tests.helpers import REPO


def _authors_set(tmp_path):
    """Two 40x30 images, evaluated at 20x20 (x * 20/40, y * 20/30, truncated):

    a: box [10, 6, 29, 20] -> [5, 4, 14, 13]; its map is 1.0 on rows 4-12, cols 5-13, whose
       contour box is [5, 4, 5+9, 4+9] = [5, 4, 14, 13]: IoU 1 at every threshold.
    b: box [0, 0, 39, 29] -> [0, 0, 19, 19]; its map is all zero: the box [0, 0, 0, 0], IoU 1/400.
    So MaxBoxAcc = 50 and every MaxBoxAccV2 level is 50.
    """
    meta = tmp_path / "metadata" / "CUB" / "test"
    meta.mkdir(parents=True)
    (meta / "image_ids.txt").write_text("x/a.jpg\nx/b.jpg")
    (meta / "class_labels.txt").write_text("x/a.jpg,3\nx/b.jpg,7")
    (meta / "image_sizes.txt").write_text("x/a.jpg,40,30\nx/b.jpg,40,30")
    (meta / "localization.txt").write_text("x/a.jpg,10,6,29,20\nx/b.jpg,0,0,39,29")
    (tmp_path / "data" / "x").mkdir(parents=True)
    maps = tmp_path / "scoremaps" / "x"
    maps.mkdir(parents=True)
    for name in ("a", "b"):
        cv2.imwrite(str(tmp_path / "data" / "x" / f"{name}.jpg"), np.zeros((30, 40, 3), np.uint8))
    a = np.zeros((20, 20))
    a[4:13, 5:14] = 1.0
    np.save(maps / "a.jpg.npy", a)  # the authors' naming: <image id>.npy
    np.save(maps / "b.npy", np.zeros((20, 20)))  # the extension-less name is accepted too
    return tmp_path


def _run(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, str(REPO / "tools" / "cam_eval.py"), *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_scoremaps_on_the_authors_metadata(tmp_path):
    root = _authors_set(tmp_path)
    out = root / "results.json"
    proc = _run("--wsol-metadata", str(root / "metadata" / "CUB"), "--split", "test", "--data-root", str(root / "data"),
                "--scoremaps", str(root / "scoremaps"), "--image-size", "20", "--output", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[0].startswith("protocol wsol: the published WSOL protocol")
    rows = {r["method"]: r for r in json.loads(out.read_text())["rows"]}
    maps = rows["scoremaps"]
    assert maps["protocol"] == "wsol" and maps["num_images"] == 2
    assert maps["max_box_acc"] == 50.0 and maps["max_box_acc_v2"] == 50.0 and maps["gt_known_loc"] == 50.0
    assert "top1_loc" not in maps  # saved maps carry no prediction
    # beside the rows, their per-image data for compare_runs' intervals, reproducing the row
    section = load_per_image(str(root / "results.per_image.npz"))[maps["per_image"]]
    again = cam_metrics(section, np.ones((1, 2), np.float32))
    assert [again[k][0] for k in ("max_box_acc", "max_box_acc_v2", "gt_known_loc")] == [50.0, 50.0, 50.0]

    # the other protocol, by name, with a header saying what it is
    proc = _run("--wsol-metadata", str(root / "metadata" / "CUB" / "test"), "--data-root", str(root / "data"),
                "--scoremaps", str(root / "scoremaps"), "--image-size", "20", "--output", str(out),
                "--protocol", "continuous")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "NOT comparable with published WSOL numbers" in proc.stdout.splitlines()[0]


def test_bad_metadata_and_missing_map_are_named(tmp_path):
    root = _authors_set(tmp_path)
    (root / "metadata" / "CUB" / "test" / "localization.txt").write_text("x/a.jpg,10,6,29,20\nx/b.jpg,0,0,40,29")
    proc = _run("--wsol-metadata", str(root / "metadata" / "CUB" / "test"), "--data-root", str(root / "data"),
                "--scoremaps", str(root / "scoremaps"), "--image-size", "20", "--output", str(root / "r.json"))
    assert proc.returncode != 0 and "localization.txt:2: box [0, 0, 40, 29] lies outside the 40x30 image" in proc.stderr
    (root / "metadata" / "CUB" / "test" / "localization.txt").write_text("x/a.jpg,10,6,29,20\nx/b.jpg,0,0,39,29")
    os.remove(root / "scoremaps" / "x" / "b.npy")
    proc = _run("--wsol-metadata", str(root / "metadata" / "CUB" / "test"), "--data-root", str(root / "data"),
                "--scoremaps", str(root / "scoremaps"), "--image-size", "20", "--output", str(root / "r.json"))
    assert proc.returncode != 0 and "no score map for image 'x/b.jpg'" in proc.stderr


def test_metadata_needs_a_data_root(tmp_path):
    proc = _run("--wsol-metadata", str(tmp_path), "--scoremaps", str(tmp_path), "--output", str(tmp_path / "r.json"))
    assert proc.returncode != 0 and "--wsol-metadata needs --data-root" in proc.stderr
