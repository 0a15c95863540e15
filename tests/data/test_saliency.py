import logging
import os

import numpy as np
import pytest
import torch
from PIL import Image

from res2net_det.data.catalog import DatasetCatalog
from res2net_det.data.saliency import (
    SALIENCY_DATASETS,
    SaliencyDatasetMapper,
    load_saliency_folder,
    read_mask,
    register_saliency_folder,
    register_saliency_folders_from_cfg,
    register_standard_saliency_datasets,
)
from tests.helpers import tiny_sod_cfg, write_pair


@pytest.fixture
def folder(tmp_path):
    img, msk = tmp_path / "Image", tmp_path / "Mask"
    for i in range(3):
        write_pair(img, msk, f"im{i}", size=(30 + i, 40), seed=i)
    return str(img), str(msk)


def test_reads_pairs_in_detectron2_format(folder):
    dicts = load_saliency_folder(*folder)
    assert [d["image_id"] for d in dicts] == ["im0", "im1", "im2"]
    assert [(d["height"], d["width"]) for d in dicts] == [(30, 40), (31, 40), (32, 40)]
    assert all(d["sem_seg_file_name"].endswith(d["image_id"] + ".png") for d in dicts)


def test_image_without_mask_is_an_error_naming_it(folder):
    os.remove(os.path.join(folder[1], "im1.png"))
    with pytest.raises(ValueError, match=r"image without mask: .*im1\.jpg"):
        load_saliency_folder(*folder)


def test_mask_without_image_is_an_error_naming_it(folder):
    os.remove(os.path.join(folder[0], "im2.jpg"))
    with pytest.raises(ValueError, match=r"mask without image: .*im2\.png"):
        load_saliency_folder(*folder)


def test_unpaired_skip_logs_each_file(folder, caplog):
    os.remove(os.path.join(folder[1], "im1.png"))
    with caplog.at_level(logging.WARNING):
        dicts = load_saliency_folder(*folder, unpaired="skip")
    assert [d["image_id"] for d in dicts] == ["im0", "im2"]
    assert "im1.jpg" in caplog.text and "skipped 1 unpaired" in caplog.text


def test_mask_of_other_size_is_an_error_naming_both(folder):
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(os.path.join(folder[1], "im0.png"))
    with pytest.raises(ValueError, match=r"im0\.png is 10x10 but its image .*im0\.jpg is 40x30"):
        load_saliency_folder(*folder)


def test_empty_and_missing_folders(tmp_path, folder):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty.*contains no"):
        load_saliency_folder(folder[0], str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="nowhere.*datasets/README.md"):
        load_saliency_folder(str(tmp_path / "nowhere"), folder[1])


def test_sixteen_bit_mask_is_an_error(tmp_path):
    path = str(tmp_path / "m16.png")
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    with pytest.raises(ValueError, match=r"m16\.png.*16-bit"):
        read_mask(path)


def test_soft_map_as_mask_is_an_error(tmp_path):
    path = str(tmp_path / "soft.png")
    Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (16, 1))).save(path)
    with pytest.raises(ValueError, match=r"soft\.png: mask is not binary"):
        read_mask(path)


def test_mask_with_low_values_only_is_an_error(tmp_path):
    path = str(tmp_path / "low.png")
    Image.fromarray(np.where(np.eye(8) > 0, 38, 0).astype(np.uint8)).save(path)
    with pytest.raises(ValueError, match=r"low\.png.*at most 38"):
        read_mask(path)


def test_mask_encodings_and_graded_masks(tmp_path):
    square = np.zeros((20, 20), np.uint8)
    square[5:15, 5:15] = 1
    Image.fromarray(square).save(tmp_path / "01.png")
    np.testing.assert_array_equal(read_mask(str(tmp_path / "01.png")), square * 255)
    # PASCAL-S style graded mask: a few grey levels over many pixels, binarised at > 128.
    graded = np.zeros((20, 20), np.uint8)
    graded[:, :8], graded[:, 8:12], graded[:, 12:] = 0, 113, 227
    Image.fromarray(graded).save(tmp_path / "graded.png")
    np.testing.assert_array_equal(read_mask(str(tmp_path / "graded.png")), np.where(graded > 128, 255, 0))
    # RGB mask with equal channels is fine; a colour one is not.
    Image.fromarray(np.stack([square * 255] * 3, -1)).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_mask(str(tmp_path / "rgb.png")), square * 255)
    colour = np.zeros((20, 20, 3), np.uint8)
    colour[..., 0] = 255
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(ValueError, match=r"colour\.png: colour mask"):
        read_mask(str(tmp_path / "colour.png"))


def test_mapper_resize_flip_and_targets(folder):
    d = load_saliency_folder(*folder)[0]
    mapper = SaliencyDatasetMapper(is_train=True, resize=(16, 24), hflip=False)
    out = mapper(d)
    assert out["image"].dtype == torch.uint8 and out["image"].shape == (3, 16, 24)
    assert out["sem_seg"].shape == (16, 24) and set(out["sem_seg"].unique().tolist()) == {0.0, 1.0}
    assert (out["height"], out["width"]) == (30, 40)  # original size kept for the output
    test_out = SaliencyDatasetMapper(is_train=False)(d)
    assert "sem_seg" not in test_out and test_out["image"].shape == (3, 30, 40)


def test_horizontal_flip_flips_image_and_mask_together(tmp_path):
    img = np.zeros((8, 10, 3), np.uint8)
    img[:, :3] = 255
    Image.fromarray(img).save(tmp_path / "a.png")
    mask = np.zeros((8, 10), np.uint8)
    mask[:, :3] = 255
    Image.fromarray(mask).save(tmp_path / "a_mask.png")
    d = {"file_name": str(tmp_path / "a.png"), "sem_seg_file_name": str(tmp_path / "a_mask.png"),
         "height": 8, "width": 10}
    mapper = SaliencyDatasetMapper(is_train=True, hflip=True)
    torch.manual_seed(0)
    outs = [mapper(d) for _ in range(20)]
    flipped = [o for o in outs if o["sem_seg"][0, -1] == 1]
    assert 0 < len(flipped) < 20  # both outcomes occur
    for o in outs:
        assert torch.equal(o["image"][0] == 255, o["sem_seg"] == 1)


def test_registration_by_path_and_by_name(folder, tmp_path, monkeypatch):
    register_saliency_folder("sod_test_by_path", *folder)
    try:
        assert len(DatasetCatalog.get("sod_test_by_path")) == 3
        assert DatasetCatalog.metadata("sod_test_by_path")["evaluator_type"] == "saliency"
    finally:
        DatasetCatalog.remove("sod_test_by_path")
    # standard names (registered with the builtin names) resolve under $DETECTRON2_DATASETS when loaded
    register_standard_saliency_datasets()
    image_rel, mask_rel = SALIENCY_DATASETS["ecssd"]
    for i in range(2):
        write_pair(tmp_path / "root" / image_rel, tmp_path / "root" / mask_rel, f"e{i}", seed=i)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "root"))
    assert [d["image_id"] for d in DatasetCatalog.get("ecssd")] == ["e0", "e1"]
    assert {"duts_tr", "duts_te", "ecssd", "pascal_s", "hku_is", "dut_omron", "sod"} <= set(DatasetCatalog.names())


def test_config_folders_register_once_and_refuse_other_paths(folder):
    cfg = tiny_sod_cfg()
    cfg.DATASETS.SALIENCY_FOLDERS = [["sod_cfg_folders", *folder]]
    try:
        register_saliency_folders_from_cfg(cfg)
        register_saliency_folders_from_cfg(cfg)  # same paths again: fine
        assert len(DatasetCatalog.get("sod_cfg_folders")) == 3
        cfg.DATASETS.SALIENCY_FOLDERS = [["sod_cfg_folders", folder[0], "/elsewhere"]]
        with pytest.raises(KeyError, match="already registered with other folders"):
            register_saliency_folders_from_cfg(cfg)
        cfg.DATASETS.SALIENCY_FOLDERS = [["only_a_name"]]
        with pytest.raises(ValueError, match=r"\[name, image_dir, mask_dir\]"):
            register_saliency_folders_from_cfg(cfg)
    finally:
        DatasetCatalog.remove("sod_cfg_folders")
