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
    syn.register_synthetic_saliency()  # as register_builtin_datasets does; the root is read on loading
    assert "sod_synthetic_train" in DatasetCatalog and "sod_synthetic_test" in DatasetCatalog
    assert not (tmp_path / "generated").exists()
    assert len(DatasetCatalog.get("sod_synthetic_test")) == 3
    assert (tmp_path / "generated" / "sod_synthetic" / "DUTS-TE" / "DUTS-TE-Mask").is_dir()


_RACER = """
import os, sys, time
from res2net_det.data import synthetic_saliency as syn
root, log, ready, go = sys.argv[1:]
syn.SYNTHETIC_SALIENCY_SPLITS = {"sod_synthetic_train": ("DUTS-TR", 4, 0), "sod_synthetic_test": ("DUTS-TE", 2, 10**6)}
draw = syn._draw_sample
def counted(seed):
    with open(log, "a") as f:
        f.write(f"{os.getpid()} {seed}\\n")
    time.sleep(0.05)
    return draw(seed)
syn._draw_sample = counted
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.01)
syn.generate_saliency_dataset(root)
"""


def test_two_processes_asking_at_once_generate_the_set_once(tmp_path):
    """DDP ranks or test workers asking for the set together: one writes it, the other waits and
    takes it, so a finished set is never replaced under a process already reading it."""
    import subprocess
    import sys
    import time

    root, log, go = tmp_path / "sod", tmp_path / "draws.log", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(root), str(log), str(tmp_path / f"ready{i}"), str(go)])
             for i in range(2)]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a racer did not start"
        time.sleep(0.05)
    go.touch()  # both start generating at the same moment
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    draws = log.read_text().split()
    assert len(set(draws[0::2])) == 1 and len(draws) // 2 == 6  # one process drew the 6 images, once
    assert (root / "COMPLETE.v1").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".sod_synthetic.")) == []
