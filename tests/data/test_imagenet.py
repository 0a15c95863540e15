"""res2net_det.data.imagenet: the three on-disk layouts give the same labelled samples (class index =
sorted wnid), and bad input is an error naming the file."""
import os
import shutil

import pytest
import torch
from PIL import Image
from torchvision import transforms

from res2net_det.data.imagenet import (
    ImageNetDataError,
    ImageNetValDataset,
    eval_transform,
    find_imagenet_val,
    read_ground_truth,
    read_synsets,
)
from tests.helpers import IMAGENET_CLASSES, IMAGENET_ID_ORDER, imagenet_labels, write_imagenet_val

pytest.importorskip("scipy")


@pytest.fixture
def roots(tmp_path):
    return write_imagenet_val(tmp_path)


def _labels(val):
    return {os.path.basename(path): label for path, label in val.samples}


@pytest.mark.parametrize("layout", ["class", "loc", "devkit"])
def test_layouts_give_the_sorted_wnid_labels(roots, layout):
    val = find_imagenet_val(str(roots[layout]))
    assert val.classes == list(IMAGENET_CLASSES)
    assert _labels(val) == imagenet_labels()
    names = [os.path.basename(p) for p, _ in val.samples]
    assert names == sorted(names)  # same order in every layout: --limit takes the same images


def test_layouts_found_from_their_inner_folders(roots):
    assert find_imagenet_val(str(roots["class"] / "val")).layout == "class folders"
    flat = find_imagenet_val(str(roots["loc"] / "ILSVRC2012_img_val"),
                             labels=str(roots["loc"] / "LOC_val_solution.csv"))
    assert _labels(flat) == imagenet_labels()


def test_meta_mat_and_synsets_text_agree(roots):
    data = roots["devkit"] / "ILSVRC2012_devkit_t12" / "data"
    assert read_synsets(str(data / "meta.mat")) == list(IMAGENET_ID_ORDER)  # the non-leaf entry is dropped
    assert read_synsets(str(roots["devkit"] / "synsets.txt")) == list(IMAGENET_ID_ORDER)
    os.remove(data / "meta.mat")
    with pytest.raises(ImageNetDataError, match="ILSVRC2012_validation_ground_truth.txt needs the devkit"):
        find_imagenet_val(str(roots["devkit"]))
    val = find_imagenet_val(str(roots["devkit"]), synsets=str(roots["devkit"] / "synsets.txt"))
    assert _labels(val) == imagenet_labels()


def test_sorted_synset_order_refused_for_the_ground_truth(roots, tmp_path):
    wnids = [f"n{i:08d}" for i in range(1000)]
    with pytest.raises(ImageNetDataError, match="sorted order.*ILSVRC2012_ID order"):
        read_ground_truth(str(roots["devkit"] / "ILSVRC2012_img_val"),
                          str(roots["devkit"] / "ILSVRC2012_devkit_t12" / "data"
                              / "ILSVRC2012_validation_ground_truth.txt"),
                          wnids)


def test_unknown_wnid_names_the_file(roots):
    bad = roots["class"] / "val" / "dogs"
    bad.mkdir()
    with pytest.raises(ImageNetDataError, match=f"{bad}.*unknown wnid"):
        find_imagenet_val(str(roots["class"]))

    csv = roots["loc"] / "LOC_val_solution.csv"
    text = csv.read_text()
    csv.write_text(text.replace("n02119789", "n09999999"))  # rows run 7..1: image 6 is on line 3
    with pytest.raises(ImageNetDataError, match=f"{csv} line 3: unknown wnid n09999999"):
        find_imagenet_val(str(roots["loc"]))
    csv.write_text(text.replace("n02119789", "n09999999", 1))
    with pytest.raises(ImageNetDataError, match=f"{csv} line 3: the boxes of ILSVRC2012_val_00000006 name different"):
        find_imagenet_val(str(roots["loc"]))

    truth = roots["devkit"] / "ILSVRC2012_devkit_t12" / "data" / "ILSVRC2012_validation_ground_truth.txt"
    truth.write_text(truth.read_text().replace("1\n", "4\n", 1))
    with pytest.raises(ImageNetDataError, match=f"{truth} line \\d+: '4' is not an ILSVRC2012_ID in 1..3"):
        find_imagenet_val(str(roots["devkit"]))


def test_missing_and_unlabelled_images_name_the_file(roots):
    image_dir = roots["loc"] / "ILSVRC2012_img_val"
    os.remove(image_dir / "ILSVRC2012_val_00000004.JPEG")
    with pytest.raises(ImageNetDataError, match=f"image {image_dir / 'ILSVRC2012_val_00000004'}.JPEG is missing"):
        find_imagenet_val(str(roots["loc"]))
    shutil.copy(image_dir / "ILSVRC2012_val_00000001.JPEG", image_dir / "ILSVRC2012_val_00000004.JPEG")
    shutil.copy(image_dir / "ILSVRC2012_val_00000001.JPEG", image_dir / "ILSVRC2012_val_00000099.JPEG")
    with pytest.raises(ImageNetDataError, match="ILSVRC2012_val_00000099.JPEG has no label in .*LOC_val_solution.csv"):
        find_imagenet_val(str(roots["loc"]))


def test_no_layout_names_the_folder(tmp_path):
    with pytest.raises(ImageNetDataError, match=f"{tmp_path}: no ImageNet validation layout found"):
        find_imagenet_val(str(tmp_path))


def test_dataset_matches_torchvision_reference_preprocessing(roots):
    val = find_imagenet_val(str(roots["loc"]))
    dataset = ImageNetValDataset(val, eval_transform(), limit=5)
    assert len(dataset) == 5
    # The official evaluation: torchvision on PIL images (ImageFolder's loader converts to RGB).
    reference = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                                    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    for i in (0, 4):  # image 5 is greyscale
        image, label, index = dataset[i]
        path, expected_label = val.samples[i]
        with Image.open(path) as im:
            expected = reference(im.convert("RGB"))
        assert image.shape == (3, 224, 224) and index == i and label == expected_label
        torch.testing.assert_close(image, expected, rtol=0, atol=0)
    bicubic = ImageNetValDataset(val, eval_transform(interpolation="bicubic"))[0][0]
    assert not torch.equal(bicubic, dataset[0][0])
    with pytest.raises(ValueError, match="interpolation must be one of"):
        eval_transform(interpolation="cubic")
