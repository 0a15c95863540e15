"""The embedded default WSOL data set: shapes of several classes on cluttered backgrounds.

Each image holds one object at a random position, size, aspect, rotation and pair of colours on
a background of colour gradients, noise, line segments and small blobs, so neither the
position nor the colour gives the class or the box away. Like real object classes, each class
differs in outline *and* surface (circle: stripes, square: checks, triangle: dots, cross:
diagonal stripes): a small network trained from scratch on CPU picks the surface up within a
few hundred steps, and the surface covers the whole object, which is what CAMs should find. The
pictures are painted by the project's one scene painter (:mod:`.synthetic`, ``localization``
background). Images are real JPEG files with
ILSVRC-style XML boxes, read back by :mod:`res2net_det.data.wsol` like real data. The same
seed gives the same files: each image draws from its own generator seeded by
``(seed, split, index)``.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import xml.etree.ElementTree as ET
from typing import Dict, Optional, Tuple

import numpy as np

from .catalog import datasets_root
from .synthetic import blend, coverage, generation_lock, paint_background, shape_outline, to_uint8, write_jpeg
from .wsol import register_wsol_split

logger = logging.getLogger(__name__)

__all__ = ["SHAPE_CLASSES", "draw_shape_image", "generate_shapes_wsol", "ensure_shapes_wsol", "default_data_root",
           "register_shapes_wsol"]

SHAPE_CLASSES = ("circle", "square", "triangle", "cross")
_SPLIT_IDS = {"train": 0, "val": 1}


def default_data_root() -> str:
    """Where generated data sets live: ``generated/`` under the data sets root (``$DETECTRON2_DATASETS``)."""
    return os.path.join(datasets_root(), "generated")


def _shape_polygon(cls: str, size: float, aspect: float, angle: float) -> np.ndarray:
    """Outline of a shape centred at the origin, ``size`` across, as float ``(K, 2)`` points."""
    width, height = size * aspect, size / aspect
    if cls == "circle":
        return shape_outline("ellipse", a=0.5 * width, b=0.5 * height, angle=angle)
    if cls == "square":
        return shape_outline("box", a=0.5 * width, b=0.5 * height, angle=angle)
    if cls in ("triangle", "cross"):
        return shape_outline(cls, width=width, height=height, angle=angle)
    raise KeyError(f"unknown shape class {cls!r}; choose from {SHAPE_CLASSES}")


def _class_pattern(cls: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size x size`` map in {0, 1}: the class's surface pattern at a random scale and phase."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    period = rng.uniform(0.07, 0.11) * size
    angle = rng.uniform(-0.25, 0.25)
    u = np.cos(angle) * x + np.sin(angle) * y + rng.uniform(0, period)
    v = -np.sin(angle) * x + np.cos(angle) * y + rng.uniform(0, period)
    if cls == "circle":  # stripes
        return (np.mod(v, period) < period / 2).astype(np.float32)
    if cls == "square":  # checks
        return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    if cls == "triangle":  # dots
        du, dv = np.mod(u, period) - period / 2, np.mod(v, period) - period / 2
        return (du * du + dv * dv < (0.3 * period) ** 2).astype(np.float32)
    if cls == "cross":  # diagonal stripes
        return (np.mod(u + v, period * 1.2) < period * 0.6).astype(np.float32)
    raise KeyError(f"unknown shape class {cls!r}; choose from {SHAPE_CLASSES}")


def draw_shape_image(rng: np.random.Generator, cls: str, size: int = 128) -> Tuple[np.ndarray, list]:
    """One RGB uint8 image of ``cls`` and its tight box ``[x0, y0, x1, y1]`` (pixel edges)."""
    image = paint_background(rng, "localization", size, size)
    shape_size = rng.uniform(0.3, 0.6) * size
    aspect = rng.uniform(0.8, 1.25)
    angle = rng.uniform(-0.5, 0.5)
    poly = _shape_polygon(cls, shape_size, aspect, angle)
    lo, hi = poly.min(0), poly.max(0)
    # Keep the whole shape inside the image, anywhere.
    centre = np.array([rng.uniform(-lo[0] + 1, size - hi[0] - 1), rng.uniform(-lo[1] + 1, size - hi[1] - 1)])
    mask = coverage(size, size, poly + centre, antialias=True, subpixel_bits=4)
    colour = rng.uniform(0, 255, 3)
    # Contrast with the local background so the shape is always visible.
    local = image[mask > 127].mean(0) if (mask > 127).any() else image.mean((0, 1))
    colour = np.where(np.abs(colour - local) < 60, (local + 128) % 256, colour)
    second = np.where(colour > 127, colour - rng.uniform(70, 120), colour + rng.uniform(70, 120))
    pattern = _class_pattern(cls, size, rng)[..., None]
    surface = colour * (1 - pattern) + second * pattern
    shading = 1.0 + 0.1 * rng.standard_normal((size, size, 1))
    image = to_uint8(blend(image, surface * shading, mask))
    ys, xs = np.nonzero(mask > 127)
    box = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
    return image, box


def _write_xml(path: str, stem: str, folder: str, cls: str, box: list, size: int) -> None:
    ann = ET.Element("annotation")
    ET.SubElement(ann, "folder").text = folder
    ET.SubElement(ann, "filename").text = stem
    ET.SubElement(ET.SubElement(ann, "source"), "database").text = "res2net-det shapes"
    size_node = ET.SubElement(ann, "size")
    for tag, value in (("width", size), ("height", size), ("depth", 3)):
        ET.SubElement(size_node, tag).text = str(value)
    ET.SubElement(ann, "segmented").text = "0"
    obj = ET.SubElement(ann, "object")
    ET.SubElement(obj, "name").text = cls
    ET.SubElement(obj, "pose").text = "Unspecified"
    ET.SubElement(obj, "truncated").text = "0"
    ET.SubElement(obj, "difficult").text = "0"
    bnd = ET.SubElement(obj, "bndbox")
    for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box):
        ET.SubElement(bnd, tag).text = str(value)
    ET.indent(ann)
    ET.ElementTree(ann).write(path, encoding="utf-8", xml_declaration=False)


def generate_shapes_wsol(
    root: str,
    num_train: int = 800,
    num_val: int = 200,
    image_size: int = 128,
    seed: int = 0,
) -> str:
    """Writes ``root/classes.txt`` and ``root/{train,val}/{images,annotations}/`` and returns ``root``.

    Classes are balanced and shuffled. Files are written to a temporary folder first and
    renamed at the end, so an interrupted run leaves no half data set behind.
    """
    tmp = root.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    with open(os.path.join(tmp, "classes.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{c} {c}\n" for c in SHAPE_CLASSES))
    for split, count in (("train", num_train), ("val", num_val)):
        image_dir = os.path.join(tmp, split, "images")
        xml_dir = os.path.join(tmp, split, "annotations")
        os.makedirs(image_dir)
        os.makedirs(xml_dir)
        order = np.random.default_rng([seed, _SPLIT_IDS[split], 1 << 20]).permutation(count)
        for i in range(count):
            rng = np.random.default_rng([seed, _SPLIT_IDS[split], i])
            cls = SHAPE_CLASSES[order[i] % len(SHAPE_CLASSES)]
            image, box = draw_shape_image(rng, cls, image_size)
            stem = f"shapes_{split}_{i:06d}"
            write_jpeg(os.path.join(image_dir, stem + ".JPEG"), image, 92)
            _write_xml(os.path.join(xml_dir, stem + ".xml"), stem, split, cls, box, image_size)
    params = dict(num_train=num_train, num_val=num_val, image_size=image_size, seed=seed, classes=SHAPE_CLASSES)
    with open(os.path.join(tmp, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(params, f, indent=1)
    shutil.rmtree(root, ignore_errors=True)
    os.replace(tmp, root)
    return root


def _default_root(num_train: int = 800, num_val: int = 200, image_size: int = 128, seed: int = 0) -> str:
    return os.path.join(default_data_root(), f"wsol_shapes_{image_size}px_s{seed}_{num_train}_{num_val}")


def ensure_shapes_wsol(
    root: Optional[str] = None,
    num_train: int = 800,
    num_val: int = 200,
    image_size: int = 128,
    seed: int = 0,
) -> str:
    """The generated data set's root, generating it on first use.

    The default root names the parameters (``<data root>/wsol_shapes_<size>px_s<seed>_<train>_<val>``),
    so different settings never overwrite each other.
    """
    if root is None:
        root = _default_root(num_train, num_val, image_size, seed)
    params: Dict = dict(num_train=num_train, num_val=num_val, image_size=image_size, seed=seed,
                        classes=list(SHAPE_CLASSES))
    meta = os.path.join(root, "meta.json")

    def found() -> Optional[Dict]:
        if not os.path.isfile(meta):
            return None
        with open(meta, encoding="utf-8") as f:
            return json.load(f)

    if found() == params:
        return root
    # Several processes (Detectron2's --num-gpus ranks, torchrun) may ask at once: one writes, the
    # others wait, then find it done. The lock sits beside the data set, which is replaced whole.
    with generation_lock(os.path.dirname(os.path.abspath(root))):
        previous = found()
        if previous == params:
            return root
        if previous is not None:
            logger.info("regenerating %s: parameters changed (%s -> %s)", root, previous, params)
        logger.info("generating the WSOL shapes data set in %s", root)
        return generate_shapes_wsol(root, num_train, num_val, image_size, seed)


#: Data set names of the generated set with :func:`ensure_shapes_wsol`'s default parameters.
SHAPES_WSOL_SPLITS = {"wsol_shapes_train": "train", "wsol_shapes_val": "val"}


def register_shapes_wsol() -> None:
    """Registers ``wsol_shapes_train`` / ``wsol_shapes_val`` (the CAM quickstart's data, default
    parameters of :func:`ensure_shapes_wsol`); the files are generated when first loaded."""
    root = _default_root()
    for name, split in SHAPES_WSOL_SPLITS.items():
        register_wsol_split(name, root, split, prepare=lambda: ensure_shapes_wsol(root))
