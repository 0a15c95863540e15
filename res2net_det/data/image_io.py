"""Reading image files: the one reader every task, tool and engine adapter uses.

One decoder (PIL: unlike OpenCV it raises on a truncated JPEG instead of returning a partly
grey picture), one error type naming the file, one list of image extensions (matched in any
case: ILSVRC's files are ``.JPEG``), one folder lister and one check that two inputs never
write the same output file.

Policy, the same for detection, saliency and classification/CAM:

* **Pixels as stored.** EXIF orientation is not applied: boxes and masks are drawn on the
  stored pixels (DUTS, COCO annotation tools), and every task must see the same picture.
* **Grayscale, palette, CMYK** images are converted to RGB with a logged warning (the standard
  test sets hold a few grayscale pictures; refusing them would change published image counts).
* **16-bit images** are read at full depth and scaled to 8 bits (``round(v / 257)``), never
  clipped: PIL's own ``convert("RGB")`` clips 16-bit grayscale to white. 16-bit colour PNGs are
  decoded by PIL to their 8 high bits. Float images have no defined range and are refused.
* **Alpha.** An alpha channel that is fully opaque is dropped with a logged warning. An image
  with any transparent pixel is refused: the colour under transparent pixels is undefined (often
  black or leftover editing), and boxes and masks were drawn on what a viewer sees, not on it.
  Compositing onto an arbitrary background would invent pixels silently; flattening is the
  user's call (the error says how).
"""
from __future__ import annotations

import glob
import logging
import os
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError

logger = logging.getLogger(__name__)

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "collect_images",
    "files_by_stem",
    "has_extension",
    "image_size",
    "list_files",
    "list_images",
    "open_image",
    "output_names",
    "read_image",
]

#: Lower-case image file extensions; :func:`has_extension` matches them in any case.
IMAGE_EXTENSIONS: Tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
_TRANSPARENT_MODES = ("RGBA", "LA", "PA", "La", "RGBa")


class ImageReadError(OSError, ValueError):
    """An image file that is missing, unreadable, or not an image this project can use.

    The message names the file and what is wrong. It is an ``OSError`` (a file problem) and a
    ``ValueError`` (bad input data), so code catching either keeps working.
    """


def has_extension(name: str, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> bool:
    """Whether ``name`` ends with one of ``extensions`` (compared in lower case)."""
    return os.path.splitext(name)[1].lower() in extensions


def open_image(path: str, decode: bool = False):
    """``PIL.Image.open(path)`` with the project's errors: :class:`ImageReadError` naming the file
    when it is missing, not an image or (with ``decode``) truncated or corrupt. Use it as a context
    manager. Without ``decode`` only the header is read (sizes, mode)."""
    if not os.path.isfile(path):
        raise ImageReadError(f"image file not found: {path}")
    try:
        img = Image.open(path)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(f"image file {path} is not an image PIL can read ({e})") from e
    if decode:
        try:
            img.load()
        except (OSError, SyntaxError, ValueError) as e:
            img.close()
            raise ImageReadError(f"image file {path} can't be decoded ({e}); is it truncated or corrupt?") from e
    return img


def image_size(path: str) -> Tuple[int, int]:
    """``(width, height)`` of an image, from its header only."""
    with open_image(path) as img:
        return img.size


def _warn(path: str, what: str) -> None:
    logger.warning("%s: %s", path, what)


def _sixteen_bit_to_8(arr: np.ndarray) -> np.ndarray:
    """Scales 0..65535 to 0..255 with rounding (``v / 257``): full depth is kept, nothing clipped."""
    return ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _decode_rgb(img, path: str) -> np.ndarray:
    """HxWx3 uint8 RGB pixels of an opened PIL image, by the module's policy."""
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        arr = np.asarray(img)
        lo, hi = int(arr.min(initial=0)), int(arr.max(initial=0))
        if lo < 0 or hi > 65535:
            raise ImageReadError(f"image file {path}: 32-bit integer image with values {lo}..{hi}; "
                                 "expected 8- or 16-bit pixels")
        _warn(path, f"16-bit grayscale image ({mode}) scaled to 8 bits and converted to RGB")
        return np.repeat(_sixteen_bit_to_8(arr)[..., None], 3, axis=2)
    if mode == "F":
        raise ImageReadError(f"image file {path}: floating-point image (mode F) has no defined pixel range; "
                             "save it as an 8- or 16-bit image")
    if mode in _TRANSPARENT_MODES or (mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"))
        transparent = int(np.count_nonzero(rgba[..., 3] < 255))
        if transparent:
            raise ImageReadError(
                f"image file {path} has {transparent} transparent pixel(s) (mode {mode}); the colour under "
                "them is undefined. Flatten it onto the background you want first, e.g. "
                "PIL: Image.alpha_composite(Image.new('RGBA', im.size, 'white'), im).convert('RGB')"
            )
        _warn(path, f"opaque {mode} image, alpha channel dropped")
        return rgba[..., :3]
    if mode in ("L", "1", "P", "CMYK", "YCbCr", "LAB", "HSV"):
        _warn(path, f"{'grayscale' if mode in ('L', '1') else mode} image converted to RGB")
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
    raise ImageReadError(f"image file {path}: unsupported image mode {mode!r}")


def read_image(path: str, format: str = "RGB") -> np.ndarray:
    """Reads an image file as an ``H x W x 3`` uint8 array in ``format`` (``"RGB"`` or ``"BGR"``).

    Raises :class:`ImageReadError` naming the file when it is missing, not an image, truncated or
    corrupt, has transparent pixels, or is a float image (see the module docstring for the policy).
    """
    if format not in ("RGB", "BGR"):
        raise ValueError(f"image format must be 'RGB' or 'BGR' (INPUT.FORMAT), got {format!r}")
    with open_image(path, decode=True) as img:
        arr = _decode_rgb(img, path)
    if format == "BGR":
        arr = arr[:, :, ::-1]
    return np.ascontiguousarray(arr)


# ---------------------------------------------------------------------------- folders and inputs
def list_files(folder: str, extensions: Sequence[str] = IMAGE_EXTENSIONS, what: str = "image") -> List[str]:
    """Sorted paths of the files in ``folder`` with one of ``extensions`` (any case; hidden files
    skipped). Raises ``FileNotFoundError`` naming a missing folder and :class:`ImageReadError`
    naming an empty one (an empty input would otherwise "succeed" with nothing done)."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"{what} folder {folder} does not exist (expected layouts: datasets/README.md; "
            "the data root is $DETECTRON2_DATASETS or ./datasets)"
        )
    names = sorted(n for n in os.listdir(folder) if not n.startswith(".") and has_extension(n, extensions)
                   and os.path.isfile(os.path.join(folder, n)))
    if not names:
        raise ImageReadError(f"{what} folder {folder} contains no {'/'.join(extensions)} files (in any case)")
    return [os.path.join(folder, n) for n in names]


def list_images(folder: str, what: str = "image") -> List[str]:
    """Sorted image paths of ``folder`` (:data:`IMAGE_EXTENSIONS`, any case); errors as :func:`list_files`."""
    return list_files(folder, IMAGE_EXTENSIONS, what)


def files_by_stem(folder: str, extensions: Sequence[str] = IMAGE_EXTENSIONS, what: str = "image") -> Dict[str, str]:
    """``{stem: path}`` of :func:`list_files`; two files with one stem (``a.jpg``, ``a.png``) raise,
    naming both, since files pair up (image <-> mask <-> prediction) by stem."""
    files: Dict[str, str] = {}
    for path in list_files(folder, extensions, what):
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in files:
            raise ValueError(f"{what} folder {folder} has two files for {stem!r}: "
                             f"{os.path.basename(files[stem])}, {os.path.basename(path)}")
        files[stem] = path
    return files


def collect_images(inputs: Iterable[str], what: str = "input") -> List[str]:
    """Image paths from files, folders (their images, sorted) and glob patterns, in the given order.

    Raises ``FileNotFoundError`` for a path or pattern that matches nothing and
    :class:`ImageReadError` for a folder without images.
    """
    paths: List[str] = []
    for item in inputs:
        if os.path.isdir(item):
            paths += list_images(item, what)
        elif os.path.isfile(item):
            paths.append(item)
        elif glob.has_magic(item):
            matched = sorted(p for p in glob.glob(item) if os.path.isfile(p) and has_extension(p))
            if not matched:
                raise FileNotFoundError(f"{what} {item}: the pattern matches no image file")
            paths += matched
        else:
            raise FileNotFoundError(f"{what} {item} does not exist")
    return paths


def output_names(inputs: Sequence[str], suffix: str = ".png", what: str = "output") -> List[str]:
    """One output file name per input (``<stem><suffix>``), raising ``ValueError`` naming both inputs
    when two would write the same file (``a/x.jpg`` and ``b/x.png``), so no output is overwritten."""
    names: List[str] = []
    seen: Dict[str, str] = {}
    for path in inputs:
        name = os.path.splitext(os.path.basename(path))[0] + suffix
        if name in seen:
            raise ValueError(f"two inputs would write the same {what} {name}: {seen[name]} and {path}; "
                             "rename one or process them separately")
        seen[name] = path
        names.append(name)
    return names
