import os

import numpy as np
import pytest
from PIL import Image

from res2net_det.data import synthetic_saliency as syn
from res2net_det.data.catalog import DatasetCatalog
from res2net_det.data.saliency import load_saliency_folder, read_mask


@pytest.fixture
def small_splits(monkeypatch):
    monkeypatch.setattr(syn, "SYNTHETIC_SALIENCY_SPLITS", {
        "sod_synthetic_train": ("DUTS-TR", 6, 0), "sod_synthetic_test": ("DUTS-TE", 3, 1_000_000)})


def test_generates_the_duts_layout_deterministically(tmp_path, small_splits):
    a = syn.generate_saliency_dataset(str(tmp_path / "a"))
    b = syn.generate_saliency_dataset(str(tmp_path / "b"))
    for split, n in (("DUTS-TR", 6), ("DUTS-TE", 3)):
        dicts = load_saliency_folder(os.path.join(a, split, f"{split}-Image"), os.path.join(a, split, f"{split}-Mask"))
        assert len(dicts) == n
        for d in dicts:
            assert d["file_name"].endswith(".jpg") and d["sem_seg_file_name"].endswith(".png")
            raw = np.asarray(Image.open(d["sem_seg_file_name"]))
            assert set(np.unique(raw)) <= {0, 255}  # binary as written
            fg = (read_mask(d["sem_seg_file_name"]) > 0).mean()
            assert 0.03 < fg < 0.7  # a salient object, not the whole picture
            twin = d["sem_seg_file_name"].replace(str(a), str(b))
            assert np.array_equal(raw, np.asarray(Image.open(twin)))
    assert os.path.isfile(os.path.join(a, "COMPLETE.v1"))


def test_train_and_test_differ_and_images_vary_in_size(tmp_path, small_splits):
    root = syn.generate_saliency_dataset(str(tmp_path))
    tr = load_saliency_folder(f"{root}/DUTS-TR/DUTS-TR-Image", f"{root}/DUTS-TR/DUTS-TR-Mask")
    te = load_saliency_folder(f"{root}/DUTS-TE/DUTS-TE-Image", f"{root}/DUTS-TE/DUTS-TE-Mask")
    assert len({(d["height"], d["width"]) for d in tr}) > 1
    first_tr = np.asarray(Image.open(tr[0]["sem_seg_file_name"]))
    first_te = np.asarray(Image.open(te[0]["sem_seg_file_name"]))
    assert first_tr.shape != first_te.shape or not np.array_equal(first_tr, first_te)


def test_registered_names_generate_on_first_use(tmp_path, small_splits, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    assert "sod_synthetic_train" in DatasetCatalog and "sod_synthetic_test" in DatasetCatalog
    assert not (tmp_path / "generated").exists()
    assert len(DatasetCatalog.get("sod_synthetic_test")) == 3
    assert (tmp_path / "generated" / "sod_synthetic" / "DUTS-TE" / "DUTS-TE-Mask").is_dir()
