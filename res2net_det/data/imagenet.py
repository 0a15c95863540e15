"""The ImageNet-1k (ILSVRC2012) validation set as users have it on disk, and its evaluation transform.

Layouts read (:func:`find_imagenet_val` picks one from a root folder):

* **class folders**: ``val/n01440764/*.JPEG`` (torchvision ``ImageFolder``, timm, mmcls);
* **flat + LOC_val_solution.csv**: ``ILSVRC2012_img_val/*.JPEG`` (or Kaggle's
  ``ILSVRC/Data/CLS-LOC/val``) with Kaggle's ``LOC_val_solution.csv`` (``ImageId,PredictionString``,
  the wnid first in every box);
* **flat + ground truth**: ``ILSVRC2012_validation_ground_truth.txt`` (line i: the ILSVRC2012_ID of
  ``ILSVRC2012_val_{i:08d}``) with the devkit's synset order: ``meta.mat`` (read with scipy) or a
  text file listing the wnids in ILSVRC2012_ID order, one per line.

Class order is the sorted wnids, the order of the official Res2Net, timm and mmcls checkpoints
(the devkit's ILSVRC2012_ID order is a different one). Samples are ordered by file name in
every layout, so ``limit`` takes the same images whichever layout holds them.
"""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms
from torchvision.transforms import InterpolationMode

from ..modeling.pretrained import IMAGENET_MEAN, IMAGENET_STD
from .image_io import has_extension, read_image

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "INTERPOLATIONS", "ImageNetDataError", "ImageNetVal",
           "ImageNetValDataset", "eval_transform", "find_imagenet_val", "read_class_folders",
           "read_ground_truth", "read_loc_solution", "read_synsets"]

# PIL filters through torchvision; "bilinear" is what the official Res2Net evaluation
# (torchvision Resize(256) on PIL images), mmcls (ResizeEdge backend="pillow") and timm use.
INTERPOLATIONS = {m.value: m for m in (InterpolationMode.NEAREST, InterpolationMode.BILINEAR,
                                      InterpolationMode.BICUBIC, InterpolationMode.BOX,
                                      InterpolationMode.HAMMING, InterpolationMode.LANCZOS)}
_WNID = re.compile(r"^n\d{8}$")
_GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"


class ImageNetDataError(ValueError):
    """An ImageNet file or folder that can't be read as a validation set; the message names it."""


@dataclass
class ImageNetVal:
    """A validation set: ``samples`` are ``(image path, class index)`` sorted by file name,
    ``classes`` the sorted wnids, ``source`` the folder or label file the labels came from."""

    samples: List[Tuple[str, int]]
    classes: List[str]
    layout: str
    source: str


def read_synsets(path: str) -> List[str]:
    """The wnids of a synset file, in its order: the devkit's ``meta.mat`` (the 1000 leaf synsets
    in ILSVRC2012_ID order; needs scipy) or a text file with a wnid first on every non-empty line
    (``LOC_synset_mapping.txt``, ``synsets.txt``)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"synset file not found: {path}")
    if path.lower().endswith(".mat"):
        try:
            import scipy.io
        except ImportError as e:
            raise ImportError(f"reading {path} needs scipy (pip install scipy); or pass a text file "
                              "with the wnids in ILSVRC2012_ID order, one per line") from e
        try:
            synsets = scipy.io.loadmat(path, squeeze_me=True)["synsets"]
            leaves = sorted((int(s["ILSVRC2012_ID"]), str(s["WNID"])) for s in synsets if int(s["num_children"]) == 0)
        except (KeyError, ValueError, TypeError) as e:
            raise ImageNetDataError(f"{path} is not the devkit's meta.mat (a 'synsets' struct with "
                                    f"ILSVRC2012_ID, WNID, num_children): {e}") from e
        if [i for i, _ in leaves] != list(range(1, len(leaves) + 1)):
            raise ImageNetDataError(f"{path}: the leaf synsets' ILSVRC2012_IDs are not 1..{len(leaves)}")
        wnids = [w for _, w in leaves]
    else:
        with open(path, encoding="utf-8") as f:
            wnids = [line.split()[0].rstrip(",") for line in f if line.strip()]
    for i, wnid in enumerate(wnids):
        if not _WNID.match(wnid):
            raise ImageNetDataError(f"{path}: entry {i + 1} {wnid!r} is not a wnid (n + 8 digits)")
    if len(set(wnids)) != len(wnids):
        raise ImageNetDataError(f"{path} lists a wnid twice")
    return wnids


def _classes(found: Sequence[str], synsets: Optional[Sequence[str]], where: str) -> List[str]:
    """Sorted class wnids: the synset list's when given (every found wnid must be in it)."""
    if synsets is None:
        return sorted(set(found))
    unknown = sorted(set(found) - set(synsets))
    if unknown:
        raise ImageNetDataError(f"{where}: unknown wnid {unknown[0]} ({len(unknown)} not in the synset list)")
    return sorted(synsets)


def read_class_folders(folder: str, synsets: Optional[Sequence[str]] = None) -> ImageNetVal:
    """``folder/<wnid>/*.JPEG``; every sub-folder must be named by a wnid."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"ImageNet class folder not found: {folder}")
    wnids = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    for d in wnids:
        if not _WNID.match(d):
            raise ImageNetDataError(f"{os.path.join(folder, d)}: unknown wnid {d!r} "
                                    "(class folders are named n + 8 digits)")
    classes = _classes(wnids, synsets, folder)
    index = {w: i for i, w in enumerate(classes)}
    samples = [(os.path.join(folder, w, f), index[w]) for w in wnids
               for f in os.listdir(os.path.join(folder, w)) if has_extension(f)]
    if not samples:
        raise ImageNetDataError(f"no images in the class folders of {folder}")
    return ImageNetVal(_by_file_name(samples), classes, "class folders", folder)


def _by_file_name(samples: List[Tuple[str, int]]) -> List[Tuple[str, int]]:
    return sorted(samples, key=lambda s: (os.path.basename(s[0]), s[0]))


def _match_images(image_dir: str, labels: Dict[str, str], classes: List[str], label_file: str) -> List[Tuple[str, int]]:
    """Pairs every labelled image id with its file in ``image_dir``; a missing or unlabelled
    image is an error naming the file."""
    if not os.path.isdir(image_dir):
        raise FileNotFoundError(f"ImageNet image folder not found: {image_dir}")
    files = {os.path.splitext(f)[0]: f for f in os.listdir(image_dir) if has_extension(f)}
    missing = sorted(set(labels) - set(files))
    if missing:
        raise ImageNetDataError(f"image {os.path.join(image_dir, missing[0])}.JPEG is missing: {label_file} "
                                f"labels it ({len(missing)} labelled images missing in {image_dir})")
    unlabelled = sorted(set(files) - set(labels))
    if unlabelled:
        raise ImageNetDataError(f"image {os.path.join(image_dir, files[unlabelled[0]])} has no label in {label_file} "
                                f"({len(unlabelled)} unlabelled images)")
    index = {w: i for i, w in enumerate(classes)}
    return _by_file_name([(os.path.join(image_dir, files[k]), index[w]) for k, w in labels.items()])


def read_loc_solution(image_dir: str, csv_path: str, synsets: Optional[Sequence[str]] = None) -> ImageNetVal:
    """Flat images labelled by Kaggle's ``LOC_val_solution.csv``."""
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"label file not found: {csv_path}")
    labels: Dict[str, str] = {}
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None or [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
            raise ImageNetDataError(f"{csv_path}: expected the header 'ImageId,PredictionString', got {header}")
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            where = f"{csv_path} line {line}"
            tokens = row[1].split() if len(row) > 1 else []
            if not tokens:
                raise ImageNetDataError(f"{where}: no label for {row[0]}")
            if len(set(tokens[::5])) != 1:  # "wnid x0 y0 x1 y1" per box
                raise ImageNetDataError(f"{where}: the boxes of {row[0]} name different wnids: {row[1]!r}")
            if not _WNID.match(tokens[0]):
                raise ImageNetDataError(f"{where}: unknown wnid {tokens[0]!r} (not n + 8 digits)")
            if row[0] in labels:
                raise ImageNetDataError(f"{where}: {row[0]} is labelled twice")
            labels[row[0]] = tokens[0]
            if synsets is not None and tokens[0] not in synsets:
                raise ImageNetDataError(f"{where}: unknown wnid {tokens[0]} (not in the synset list)")
    classes = _classes(list(labels.values()), synsets, csv_path)
    return ImageNetVal(_match_images(image_dir, labels, classes, csv_path), classes, "flat + LOC_val_solution.csv",
                       csv_path)


def read_ground_truth(image_dir: str, ground_truth: str, id_order: Sequence[str]) -> ImageNetVal:
    """Flat images labelled by the devkit's ``ILSVRC2012_validation_ground_truth.txt``; ``id_order``
    is the wnid of each ILSVRC2012_ID (1-based), see :func:`read_synsets`."""
    if not os.path.isfile(ground_truth):
        raise FileNotFoundError(f"label file not found: {ground_truth}")
    if len(id_order) == 1000 and list(id_order) == sorted(id_order):
        # The devkit's ID order is not sorted; a sorted list (LOC_synset_mapping.txt) would
        # silently mislabel every image.
        raise ImageNetDataError(f"the synset list for {ground_truth} is in sorted order; it must be the devkit's "
                                "ILSVRC2012_ID order (meta.mat)")
    labels: Dict[str, str] = {}
    with open(ground_truth, encoding="utf-8") as f:
        for line, text in enumerate(f, start=1):
            try:
                class_id = int(text)
            except ValueError:
                class_id = 0
            if not 1 <= class_id <= len(id_order):
                raise ImageNetDataError(f"{ground_truth} line {line}: {text.strip()!r} is not an ILSVRC2012_ID "
                                        f"in 1..{len(id_order)} (unknown wnid)")
            labels[f"ILSVRC2012_val_{line:08d}"] = id_order[class_id - 1]
    classes = sorted(id_order)
    return ImageNetVal(_match_images(image_dir, labels, classes, ground_truth), classes,
                       "flat + ground truth", ground_truth)


def _first(paths: Sequence[str], test=os.path.isfile) -> Optional[str]:
    return next((p for p in paths if test(p)), None)


def find_imagenet_val(root: str, labels: Optional[str] = None, synsets: Optional[str] = None) -> ImageNetVal:
    """The validation set under ``root``: class folders (``root`` or ``root/val``), else flat images
    (``root/ILSVRC2012_img_val``, ``root/ILSVRC/Data/CLS-LOC/val``, ``root/val`` or ``root``) with
    ``labels`` or a label file found in ``root`` (``LOC_val_solution.csv``, the devkit's ground
    truth). ``synsets``: a synset file (:func:`read_synsets`); required in ILSVRC2012_ID order with
    the ground truth when no ``meta.mat`` is found, elsewhere the expected classes (order ignored)."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"ImageNet folder not found: {root}")
    synset_list = read_synsets(synsets) if synsets else None
    if labels is None:
        for folder in (root, os.path.join(root, "val")):
            if os.path.isdir(folder) and any(_WNID.match(d) and os.path.isdir(os.path.join(folder, d))
                                             for d in os.listdir(folder)):
                return read_class_folders(folder, synset_list)
    image_dir = _first([os.path.join(root, *p)
                        for p in (("ILSVRC2012_img_val",), ("ILSVRC", "Data", "CLS-LOC", "val"), ("val",), ())],
                       os.path.isdir)
    devkit = os.path.join(root, "ILSVRC2012_devkit_t12", "data")
    labels = labels or _first([os.path.join(root, "LOC_val_solution.csv"), os.path.join(root, _GROUND_TRUTH),
                               os.path.join(devkit, _GROUND_TRUTH)])
    if labels is None:
        raise ImageNetDataError(f"{root}: no ImageNet validation layout found (class folders n01440764/..., or flat "
                                f"images with LOC_val_solution.csv or {_GROUND_TRUTH})")
    if labels.lower().endswith(".csv"):
        if synset_list is None and os.path.isfile(os.path.join(root, "LOC_synset_mapping.txt")):
            synset_list = read_synsets(os.path.join(root, "LOC_synset_mapping.txt"))
        return read_loc_solution(image_dir, labels, synset_list)
    if synset_list is None:
        meta = _first([os.path.join(os.path.dirname(labels), "meta.mat"), os.path.join(root, "meta.mat"),
                       os.path.join(devkit, "meta.mat")])
        if meta is None:
            raise ImageNetDataError(f"{labels} needs the devkit's synset order: put meta.mat beside it or pass a "
                                    "synsets file (wnids in ILSVRC2012_ID order)")
        synset_list = read_synsets(meta)
    return read_ground_truth(image_dir, labels, synset_list)


def eval_transform(resize: int = 256, crop: int = 224, interpolation: str = "bilinear") -> transforms.Compose:
    """Resize the short side to ``resize`` (PIL filter ``interpolation``), centre-crop ``crop``,
    ImageNet mean/std: the official Res2Net / mmcls / timm evaluation."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {interpolation!r}")
    return transforms.Compose([
        transforms.Resize(resize, interpolation=INTERPOLATIONS[interpolation]),
        transforms.CenterCrop(crop),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


class ImageNetValDataset(Dataset):
    """``(image tensor, class index, sample index)`` of the first ``limit`` samples of ``val``."""

    def __init__(self, val: ImageNetVal, transform, limit: Optional[int] = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        self.val = val
        self.samples = val.samples[:limit] if limit else val.samples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Tuple[torch.Tensor, int, int]:
        path, label = self.samples[i]
        return self.transform(Image.fromarray(read_image(path, "RGB"))), label, i
