"""Salient object detection data: DUTS-style image folder + mask folder pairs.

Every data set is an image folder and a mask folder whose files pair up by file stem
(``0001.jpg`` <-> ``0001.png``). :func:`load_saliency_folder` turns such a pair into
Detectron2's list-of-dicts format::

    {"file_name": ".../0001.jpg", "sem_seg_file_name": ".../0001.png",
     "image_id": "0001", "height": 300, "width": 400}

:func:`read_mask` is the one place where masks are read, shared by the training mapper, the
evaluators and ``tools/eval_saliency.py``, so a bad file gets the same treatment everywhere;
images are read by :func:`res2net_det.data.image_io.read_image`, the reader of every task.

Bad-input policy (never a silent wrong number; datasets/README.md has the table):

* mask size differs from its image, 16-bit or colour mask, mask whose values are all
  <= 128 (it would binarise to nothing), a soft map or lossy file in the mask folder (many
  grey pixels over many grey levels), empty or missing folder: ``ValueError`` /
  ``FileNotFoundError`` naming the file.
* images (transparency, 16-bit, grayscale, truncated files): the policy of
  :mod:`res2net_det.data.image_io`, the same for every task.
* grey mask pixels otherwise (anti-aliased rims, PASCAL-S's graded masks): binarised at
  > 128, exactly as pysodmetrics and the published evaluation code do.
* image without a mask or mask without an image: an error by default; ``unpaired="skip"``
  logs every skipped file and the count (for users who train on a partly annotated folder).
"""
from __future__ import annotations

import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .catalog import (
    DatasetCatalog,
    datasets_root,  # the data root, shared with detection
)
from .image_io import IMAGE_EXTENSIONS, files_by_stem, image_size, open_image, read_image

logger = logging.getLogger(__name__)

__all__ = [
    "MASK_EXTENSIONS",
    "SALIENCY_DATASETS",
    "load_saliency_folder",
    "read_mask",
    "register_saliency_folder",
    "register_standard_saliency_datasets",
]

MASK_EXTENSIONS = (".png", ".bmp")

# Masks are binarised at > 128, as pysodmetrics and the published evaluation code do. Grey
# pixels are legitimate in two forms: a thin anti-aliased rim (DUTS, HKU-IS) and graded
# annotations with a few levels (PASCAL-S: the fraction of annotators, ~15% grey pixels in
# 5 levels). A mask with more than MASK_TOLERANCE grey pixels spread over more than
# _MAX_GRADED_LEVELS levels is a soft saliency map or a lossy (JPEG) file, not an annotation:
# it is rejected rather than silently thresholded.
_MAX_GRADED_LEVELS = 32
DEFAULT_MASK_TOLERANCE = 0.05

# name -> (image folder, mask folder) relative to the data root. DUTS keeps its official
# layout; the other test sets use <NAME>/Image + <NAME>/Mask (see datasets/README.md).
SALIENCY_DATASETS: Dict[str, Tuple[str, str]] = {
    "duts_tr": ("DUTS/DUTS-TR/DUTS-TR-Image", "DUTS/DUTS-TR/DUTS-TR-Mask"),
    "duts_te": ("DUTS/DUTS-TE/DUTS-TE-Image", "DUTS/DUTS-TE/DUTS-TE-Mask"),
    "ecssd": ("ECSSD/Image", "ECSSD/Mask"),
    "pascal_s": ("PASCAL-S/Image", "PASCAL-S/Mask"),
    "hku_is": ("HKU-IS/Image", "HKU-IS/Mask"),
    "dut_omron": ("DUT-OMRON/Image", "DUT-OMRON/Mask"),
    "sod": ("SOD/Image", "SOD/Mask"),
}


# ---------------------------------------------------------------------------- pixels
def read_mask(path: str, tolerance: float = DEFAULT_MASK_TOLERANCE) -> np.ndarray:
    """Reads a ground-truth mask as an ``H x W`` uint8 array with values 0 and 255.

    Accepts 8-bit masks in 0/255 or 0/1 encoding (a 0/1 mask thresholded at 128 would silently
    be all background), graded masks with a few grey levels, and RGB masks whose channels are
    equal; binarises at > 128 like pysodmetrics. Raises ``ValueError`` naming the file for a
    16-bit or colour mask, a mask whose objects are all <= 128, and a soft map (more than
    ``tolerance`` grey pixels over more than 32 levels).
    """
    with open_image(path, decode=True) as img:
        mode = img.mode
        if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            raise ValueError(f"{path}: {mode} mask (16-bit or wider); save masks as 8-bit PNG with values 0/255")
        if mode == "1":
            arr = np.asarray(img.convert("L"))
        elif mode == "L":
            arr = np.asarray(img)
        elif mode in ("RGB", "RGBA", "LA", "P"):
            rgb = np.asarray(img.convert("RGB"))
            if not ((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()):
                raise ValueError(f"{path}: colour mask (mode {mode} with different channels); "
                                 "expected a grayscale 0/255 mask")
            arr = rgb[..., 0]
        else:
            raise ValueError(f"{path}: unsupported mask mode {mode!r}; expected an 8-bit grayscale PNG")
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    top = int(arr.max(initial=0))
    if top == 1:
        arr = arr * np.uint8(255)  # 0/1 encoding
    elif 1 < top <= 128:
        raise ValueError(
            f"{path}: mask values are at most {top}; binarising at > 128 (the SOD convention) would leave "
            "it empty. Expected 0/255 (or 0/1) masks."
        )
    grey = (arr != 0) & (arr != 255)
    n_grey = int(np.count_nonzero(grey))
    if n_grey > tolerance * arr.size:
        levels = np.unique(arr[grey]).size
        if levels > _MAX_GRADED_LEVELS:
            raise ValueError(
                f"{path}: mask is not binary: {n_grey / arr.size:.1%} of its pixels are grey, in {levels} levels "
                f"(accepted: anti-aliased edges up to {tolerance:.1%} or graded masks with <= {_MAX_GRADED_LEVELS} "
                "levels). Is this a saliency map or a JPEG-compressed mask?"
            )
        logger.debug("%s: graded mask (%d grey levels) binarised at > 128", path, levels)
    return np.where(arr > 128, np.uint8(255), np.uint8(0))


# ---------------------------------------------------------------------------- folders
def load_saliency_folder(
    image_dir: str,
    mask_dir: Optional[str],
    unpaired: str = "error",
    check_sizes: bool = True,
) -> List[dict]:
    """Dataset dicts for an image folder and its mask folder, sorted by file stem.

    Args:
        image_dir: folder of images (:data:`~res2net_det.data.image_io.IMAGE_EXTENSIONS`, any case).
        mask_dir: folder of ``.png/.bmp`` masks with the same stems; None for prediction
            only (no ``sem_seg_file_name``).
        unpaired: ``"error"`` (default) raises on an image without a mask or a mask without
            an image, naming the files; ``"skip"`` logs each and leaves it out.
        check_sizes: compare every mask's size with its image's (reads headers only).
    """
    if unpaired not in ("error", "skip"):
        raise ValueError(f"unpaired must be 'error' or 'skip', got {unpaired!r}")
    images = files_by_stem(image_dir, IMAGE_EXTENSIONS, "image")
    masks = files_by_stem(mask_dir, MASK_EXTENSIONS, "mask") if mask_dir is not None else None

    if masks is not None:
        no_mask = sorted(set(images) - set(masks))
        no_image = sorted(set(masks) - set(images))
        problems = [f"image without mask: {images[s]}" for s in no_mask]
        problems += [f"mask without image: {masks[s]}" for s in no_image]
        if problems and unpaired == "error":
            shown = "\n  ".join(problems[:20]) + (
                f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
            raise ValueError(
                f"{len(problems)} unpaired file(s) between {image_dir} and {mask_dir} "
                f"(pass unpaired='skip' to leave them out):\n  {shown}"
            )
        for p in problems:
            logger.warning("skipped %s", p)
        if problems:
            logger.warning("skipped %d unpaired file(s) in %s / %s", len(problems), image_dir, mask_dir)
        stems = sorted(set(images) & set(masks))
        if not stems:
            raise ValueError(f"no image in {image_dir} has a mask in {mask_dir}")
    else:
        stems = sorted(images)

    dicts = []
    for stem in stems:
        width, height = image_size(images[stem])
        record = {"file_name": images[stem], "image_id": stem, "height": height, "width": width}
        if masks is not None:
            record["sem_seg_file_name"] = masks[stem]
            if check_sizes:
                mask_w, mask_h = image_size(masks[stem])
                if (mask_w, mask_h) != (width, height):
                    raise ValueError(
                        f"mask {masks[stem]} is {mask_w}x{mask_h} but its image {images[stem]} "
                        f"is {width}x{height} (W x H)"
                    )
        dicts.append(record)
    return dicts


def register_saliency_folder(
    name: str, image_dir: str, mask_dir: str, unpaired: str = "error", **metadata
) -> None:
    """Registers an image folder + mask folder under ``name`` in :data:`DatasetCatalog`.

    Loading is lazy: folders are read when the data set is first used.
    """
    DatasetCatalog.register(
        name,
        lambda: load_saliency_folder(image_dir, mask_dir, unpaired=unpaired),
        image_root=image_dir,
        mask_root=mask_dir,
        evaluator_type="saliency",
        **metadata,
    )


def register_standard_saliency_datasets(root: Optional[str] = None) -> None:
    """Registers DUTS-TR/TE, ECSSD, PASCAL-S, HKU-IS, DUT-OMRON and SOD under the data root.

    With ``root=None`` the root is looked up when a data set is loaded, so setting
    ``$DETECTRON2_DATASETS`` after import still works.
    """
    for name, (image_rel, mask_rel) in SALIENCY_DATASETS.items():
        if name in DatasetCatalog:
            continue

        def load(image_rel=image_rel, mask_rel=mask_rel) -> List[dict]:
            base = datasets_root() if root is None else root
            return load_saliency_folder(os.path.join(base, image_rel), os.path.join(base, mask_rel))

        DatasetCatalog.register(name, load, image_root=image_rel, mask_root=mask_rel, evaluator_type="saliency")


def register_saliency_folders_from_cfg(cfg) -> None:
    """Registers ``DATASETS.SALIENCY_FOLDERS`` entries ``[name, image_dir, mask_dir]``.

    Re-registering a name with the same folders is a no-op, so builders may call this freely.
    """
    for entry in getattr(cfg.DATASETS, "SALIENCY_FOLDERS", None) or []:
        if len(entry) != 3:
            raise ValueError(f"DATASETS.SALIENCY_FOLDERS entries are [name, image_dir, mask_dir], got {entry!r}")
        name, image_dir, mask_dir = entry
        if name in DatasetCatalog:
            meta = DatasetCatalog.metadata(name)
            if (meta.get("image_root"), meta.get("mask_root")) != (image_dir, mask_dir):
                raise KeyError(f"data set {name!r} is already registered with other folders: {meta}")
            continue
        register_saliency_folder(name, image_dir, mask_dir)


# ---------------------------------------------------------------------------- mapper
class SaliencyDatasetMapper:
    """Dataset dict -> model input dict, Detectron2's ``DatasetMapper`` convention.

    Output: the dict's fields plus ``"image"`` (``3 x H x W`` uint8 RGB tensor) and, when
    training, ``"sem_seg"`` (``H x W`` float tensor of 0/1). ``"height"``/``"width"`` keep the
    original size, at which the model returns its saliency map.

    Args:
        is_train: load the mask and apply random flips.
        resize: ``(height, width)`` to resize every image to (the batched recipe), or None to
            keep full size (the PoolNet recipe, batch 1).
        hflip: random horizontal flip with probability 0.5 when training.
        mask_tolerance: see :func:`read_mask`.
    """

    def __init__(
        self,
        is_train: bool,
        resize: Optional[Tuple[int, int]] = None,
        hflip: bool = False,
        mask_tolerance: float = DEFAULT_MASK_TOLERANCE,
    ) -> None:
        if resize is not None and (len(resize) != 2 or min(resize) <= 0):
            raise ValueError(f"resize must be (height, width) with positive sizes, got {resize!r}")
        self.is_train = is_train
        self.resize = tuple(int(s) for s in resize) if resize is not None else None
        self.hflip = hflip
        self.mask_tolerance = mask_tolerance

    @classmethod
    def from_config(cls, cfg, is_train: bool) -> "SaliencyDatasetMapper":
        size = tuple(cfg.INPUT.SALIENCY.RESIZE)
        return cls(
            is_train=is_train,
            resize=size if size else None,
            hflip=cfg.INPUT.SALIENCY.HFLIP,
            mask_tolerance=cfg.INPUT.SALIENCY.MASK_TOLERANCE,
        )

    def __call__(self, dataset_dict: dict, rng: Optional[np.random.Generator] = None) -> dict:
        """Maps one dict; random choices come from ``rng`` when given (the torchvision engine's
        ``MappedDataset`` passes a seeded one), else from torch's global generator."""
        import cv2
        import torch

        out = dict(dataset_dict)
        image = read_image(dataset_dict["file_name"])
        mask = None
        if self.is_train:
            if "sem_seg_file_name" not in dataset_dict:
                raise KeyError(f"training needs a mask for {dataset_dict['file_name']} (no 'sem_seg_file_name')")
            mask = read_mask(dataset_dict["sem_seg_file_name"], self.mask_tolerance)
            if mask.shape != image.shape[:2]:
                raise ValueError(
                    f"mask {dataset_dict['sem_seg_file_name']} is {mask.shape[1]}x{mask.shape[0]} but its image "
                    f"{dataset_dict['file_name']} is {image.shape[1]}x{image.shape[0]} (W x H)"
                )
        if self.resize is not None:
            h, w = self.resize
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
            if mask is not None:
                # Linear then threshold keeps the mask binary with smooth, unshifted borders.
                mask = np.where(cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR) > 127, 255, 0).astype(np.uint8)
        coin = rng.random() if rng is not None else float(torch.rand(()))
        if self.is_train and self.hflip and coin < 0.5:
            image = image[:, ::-1]
            mask = mask[:, ::-1]
        out["image"] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if mask is not None:
            out["sem_seg"] = torch.from_numpy(np.ascontiguousarray(mask)).float().div_(255.0)
        return out


# ---------------------------------------------------------------------------- by name
def get_saliency_dicts(names: Sequence[str]) -> List[dict]:
    """Concatenated dataset dicts of registered saliency data sets."""
    dicts: List[dict] = []
    for name in names:
        part = DatasetCatalog.get(name)
        if not part:
            raise ValueError(f"data set {name!r} is empty")
        dicts.extend(part)
    return dicts

