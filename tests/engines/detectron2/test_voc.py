"""PASCAL VOC on the Detectron2 engine: VOC data sets (Detectron2's names and ours) are scored by
Detectron2's own PascalVOCDetectionEvaluator, whose metrics land in the same results file as on
the torchvision engine (skipped without Detectron2)."""
import argparse
import json
import os

import numpy as np
import pytest

pytest.importorskip("detectron2", reason="Detectron2 is not installed")
import cv2  # noqa: E402
from detectron2.data import DatasetCatalog as D2DatasetCatalog  # noqa: E402
from detectron2.data import MetadataCatalog as D2MetadataCatalog  # noqa: E402
from detectron2.evaluation import COCOEvaluator, PascalVOCDetectionEvaluator  # noqa: E402

from res2net_det.data.catalog import DatasetCatalog  # noqa: E402
from res2net_det.engines.detectron2.detection import DetectionTrainer  # noqa: E402
from res2net_det.engines.detectron2.evaluation import ResultsFileWriter  # noqa: E402
from res2net_det.engines.detectron2.train_net import main  # noqa: E402
from res2net_det.evaluation.bootstrap import voc_metrics  # noqa: E402
from res2net_det.evaluation.per_image import load_per_image  # noqa: E402

CLASSES = ["square", "bar"]


def _tiny_voc(root):
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        image = rng.integers(0, 60, (64, 96, 3), dtype=np.uint8)
        image[8:40, 8:40] = 230
        assert cv2.imwrite(os.path.join(root, "JPEGImages", f"im{i}.jpg"), image)
        with open(os.path.join(root, "Annotations", f"im{i}.xml"), "w") as f:
            f.write("<annotation><size><width>96</width><height>64</height></size>"
                    "<object><name>square</name><pose>x</pose><truncated>0</truncated><difficult>0</difficult>"
                    "<bndbox><xmin>9</xmin><ymin>9</ymin><xmax>40</xmax><ymax>40</ymax></bndbox></object>"
                    f"<object><name>bar</name><pose>x</pose><truncated>0</truncated><difficult>{i}</difficult>"
                    "<bndbox><xmin>31</xmin><ymin>45</ymin><xmax>90</xmax><ymax>56</ymax></bndbox></object>"
                    "</annotation>")
    with open(os.path.join(root, "ImageSets", "Main", "test.txt"), "w") as f:
        f.write("im0\nim1\n")


def test_builtin_voc_names_get_detectron2s_voc_evaluator(tmp_path):
    import detectron2.data.datasets  # noqa: F401  (registers Detectron2's builtin names)

    assert D2MetadataCatalog.get("voc_2007_test").evaluator_type == "pascal_voc"
    evaluator = DetectionTrainer.build_evaluator(None, "voc_2007_test", str(tmp_path))
    assert isinstance(evaluator, ResultsFileWriter) and isinstance(evaluator.evaluator, PascalVOCDetectionEvaluator)
    assert evaluator.path == str(tmp_path / "voc_eval_results.json")


def test_coco_sets_keep_the_coco_evaluator(tmp_path):
    name = f"tiny_coco_eval_{os.getpid()}"
    json_file = tmp_path / "ann.json"
    json_file.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]}))
    D2DatasetCatalog.register(name, lambda: [])
    D2MetadataCatalog.get(name).set(json_file=str(json_file), evaluator_type="coco", thing_classes=["a"])
    try:
        evaluator = DetectionTrainer.build_evaluator(None, name, str(tmp_path))
        assert isinstance(evaluator.evaluator, COCOEvaluator)
        assert evaluator.path == str(tmp_path / "coco_eval_results.json")
    finally:
        D2DatasetCatalog.remove(name)
        D2MetadataCatalog.remove(name)


def test_train_net_scores_a_voc_folder_with_detectron2s_evaluator(tmp_path):
    _tiny_voc(str(tmp_path / "voc"))
    name = f"tiny_voc_{os.getpid()}"
    out = tmp_path / "out"
    args = argparse.Namespace(
        config_file="configs/faster_rcnn_r2_50.yaml", resume=False, eval_only=True, allow_untrained=True,
        num_gpus=0, num_machines=1, machine_rank=0, dist_url="auto",
        opts=["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu", "MODEL.ROI_HEADS.NUM_CLASSES", "2",
              "MODEL.RES2NET.WIDTH_PER_GROUP", "4", "MODEL.RES2NET.NORM", "BN", "MODEL.BACKBONE.FREEZE_AT", "0",
              "DATASETS.PASCAL_VOC", f"[['{name}', '{tmp_path / 'voc'}', 'test', 2007, {CLASSES}]]",
              "DATASETS.TRAIN", f"('{name}',)", "DATASETS.TEST", f"('{name}',)",
              "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0",
              "INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "96", "DATALOADER.NUM_WORKERS", "0",
              "OUTPUT_DIR", str(out)],
    )
    try:
        results = main(args)
        assert set(results["bbox"]) == {"AP", "AP50", "AP75"}  # what Detectron2's VOC evaluator reports
        saved = json.loads((out / "inference" / name / "voc_eval_results.json").read_text())
        assert saved["bbox"]["AP50"] == pytest.approx(results["bbox"]["AP50"])
        # the devkit's per-image matches beside it (what compare_runs resamples) give the same numbers
        (section,) = load_per_image(str(out / "inference" / name / "voc_eval_results.per_image.npz")).values()
        assert sorted(section["image_ids"].tolist()) == ["im0", "im1"]
        again = voc_metrics(section, np.ones((1, 2), np.float32))
        assert [again[k][0] for k in ("AP", "AP50", "AP75")] == pytest.approx(
            [results["bbox"][k] for k in ("AP", "AP50", "AP75")], abs=1e-6)
        assert D2MetadataCatalog.get(name).year == 2007 and D2MetadataCatalog.get(name).split == "test"
    finally:
        DatasetCatalog.remove(name)
        if name in D2DatasetCatalog.list():
            D2DatasetCatalog.remove(name)
            D2MetadataCatalog.remove(name)
