"""The generated panoptic shapes: COCO panoptic PNG + JSON, things as COCO instances, and the stuff
maps of Detectron2's separated format agree with one another, pixel by pixel."""
import json
import os

import numpy as np
from PIL import Image

from res2net_det.data.builtin import register_builtin_datasets
from res2net_det.data.catalog import DatasetCatalog
from res2net_det.data.synthetic_panoptic import STUFF_CLASSES, generate_shapes_panoptic, panoptic_metadata


def test_panoptic_png_json_instances_and_stuff_maps_agree(tmp_path):
    paths = generate_shapes_panoptic(str(tmp_path), splits={"val": (4, 11)})["val"]
    with open(paths["panoptic_json"], encoding="utf-8") as f:
        panoptic = json.load(f)
    with open(paths["json_file"], encoding="utf-8") as f:
        instances = json.load(f)
    categories = {c["id"]: c for c in panoptic["categories"]}
    assert [c["name"] for c in categories.values() if not c["isthing"]] == list(STUFF_CLASSES)
    stuff_ids = panoptic_metadata()["stuff_dataset_id_to_contiguous_id"]
    sizes = {im["id"]: (im["height"], im["width"]) for im in panoptic["images"]}
    for ann in panoptic["annotations"]:
        rgb = np.asarray(Image.open(os.path.join(paths["panoptic_root"], ann["file_name"])), dtype=np.uint32)
        ids = rgb[..., 0] + 256 * rgb[..., 1] + 256 ** 2 * rgb[..., 2]
        assert ids.shape == sizes[ann["image_id"]]
        segments = {s["id"]: s for s in ann["segments_info"]}
        assert sorted(np.unique(ids).tolist()) == sorted(segments)  # every pixel in exactly one listed segment
        stuff = np.asarray(Image.open(os.path.join(paths["sem_seg_root"], ann["file_name"])))
        for segment_id, s in segments.items():
            mask = ids == segment_id
            ys, xs = np.nonzero(mask)
            assert s["area"] == mask.sum()
            assert s["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            expected = 0 if categories[s["category_id"]]["isthing"] else stuff_ids[s["category_id"]]
            assert (stuff[mask] == expected).all()
        things = [s for s in segments.values() if categories[s["category_id"]]["isthing"]]
        image_instances = [a for a in instances["annotations"] if a["image_id"] == ann["image_id"]]
        assert sorted(a["category_id"] for a in image_instances) == sorted(s["category_id"] for s in things)
        assert things, "every image holds at least one shape"
    assert os.path.isfile(os.path.join(paths["image_root"], "000001.jpg"))


def test_the_separated_sets_are_registered_with_detectron2s_metadata():
    register_builtin_datasets()
    meta = DatasetCatalog.metadata("shapes_panoptic_val_separated")
    assert meta["evaluator_type"] == "coco_panoptic_seg" and meta["ignore_label"] == 255
    assert meta["stuff_classes"] == ["things", "sky", "ground"]
    assert meta["thing_classes"] == ["circle", "square", "triangle"]
    assert {"panoptic_root", "panoptic_json", "sem_seg_root", "json_file", "image_root"} <= set(meta)
