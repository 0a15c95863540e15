"""The one image reader of every task: its policy, errors and folder helpers."""
import logging
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from res2net_det.data.image_io import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    collect_images,
    files_by_stem,
    image_size,
    list_images,
    output_names,
    read_image,
)


def _jpeg(path, h=24, w=32, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(img).save(path, quality=95)
    return img


def test_error_type_is_both_oserror_and_valueerror():
    assert issubclass(ImageReadError, OSError) and issubclass(ImageReadError, ValueError)


def test_rgb_and_bgr(tmp_path):
    Image.fromarray(np.array([[[10, 20, 30]]], np.uint8)).save(tmp_path / "p.png")
    assert read_image(str(tmp_path / "p.png")).tolist() == [[[10, 20, 30]]]
    assert read_image(str(tmp_path / "p.png"), "BGR").tolist() == [[[30, 20, 10]]]
    with pytest.raises(ValueError, match="'RGB' or 'BGR'"):
        read_image(str(tmp_path / "p.png"), "HSV")


def test_missing_junk_and_truncated_files_are_named(tmp_path):
    with pytest.raises(ImageReadError, match=r"not found.*nope\.jpg"):
        read_image(str(tmp_path / "nope.jpg"))
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match=r"junk\.jpg"):
        read_image(str(tmp_path / "junk.jpg"))
    _jpeg(tmp_path / "good.jpg", 64, 64)
    data = (tmp_path / "good.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"truncated\.jpg.*truncated or corrupt"):
        read_image(str(tmp_path / "truncated.jpg"))


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path, caplog):
    values = np.array([[0, 257, 32896, 65535]], np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), values)
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I")  # the case PIL's convert("RGB") clips to white
    with caplog.at_level(logging.WARNING):
        img = read_image(str(tmp_path / "g16.png"))
    assert img.dtype == np.uint8 and img.shape == (1, 4, 3)
    assert img[0, :, 0].tolist() == [0, 1, 128, 255]
    assert "16-bit" in caplog.text and "g16.png" in caplog.text


def test_sixteen_bit_colour_keeps_its_high_bits(tmp_path):
    rgb = np.array([[[0, 30000, 65535]]], np.uint16)
    cv2.imwrite(str(tmp_path / "c16.png"), rgb[..., ::-1])
    assert read_image(str(tmp_path / "c16.png")).tolist() == [[[0, 30000 >> 8, 255]]]


def test_float_images_are_refused(tmp_path):
    Image.fromarray(np.full((4, 4), 0.5, np.float32), mode="F").save(tmp_path / "f.tif")
    with pytest.raises(ImageReadError, match=r"f\.tif.*floating-point"):
        read_image(str(tmp_path / "f.tif"))


def test_grayscale_is_converted_with_a_warning(tmp_path, caplog):
    Image.fromarray(np.full((5, 6), 77, np.uint8)).save(tmp_path / "g.jpg")
    with caplog.at_level(logging.WARNING):
        img = read_image(str(tmp_path / "g.jpg"))
    assert img.shape == (5, 6, 3) and (img[..., 0] == img[..., 2]).all()
    assert "g.jpg: grayscale image converted" in caplog.text


def test_rgba_policy_opaque_dropped_transparent_refused(tmp_path, caplog):
    rgba = np.full((6, 6, 4), 255, np.uint8)
    rgba[..., 0] = 9
    Image.fromarray(rgba).save(tmp_path / "opaque.png")
    rgba[0, 0, 3] = 0
    Image.fromarray(rgba).save(tmp_path / "holes.png")
    with caplog.at_level(logging.WARNING):
        img = read_image(str(tmp_path / "opaque.png"))
    assert img.shape == (6, 6, 3) and (img[..., 0] == 9).all()
    assert "opaque.png: opaque RGBA image, alpha channel dropped" in caplog.text
    with pytest.raises(ImageReadError, match=r"holes\.png has 1 transparent pixel"):
        read_image(str(tmp_path / "holes.png"))
    # a palette image with a transparent colour is the same case
    Image.fromarray(rgba).convert("RGBA").quantize(4).save(tmp_path / "pal.png", transparency=0)
    with Image.open(tmp_path / "pal.png") as im:
        assert im.mode == "P" and "transparency" in im.info


def test_extensions_in_any_case_and_sorted_listing(tmp_path):
    for ext in (".jpg", ".jpeg", ".JPEG", ".Jpg", ".png", ".PNG", ".bmp", ".BMP", ".webp", ".WEBP"):
        assert ext.lower() in IMAGE_EXTENSIONS
    names = ["b.JPEG", "a.jpeg", "c.bmp", "d.WebP", "e.PNG"]
    for i, name in enumerate(names):
        Image.fromarray(np.full((4, 4, 3), i * 40, np.uint8)).save(
            tmp_path / name,
            format={"jpeg": "JPEG", "bmp": "BMP", "webp": "WEBP", "png": "PNG"}[name.split(".")[1].lower()])
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.jpg").write_bytes(b"")
    listed = [os.path.basename(p) for p in list_images(str(tmp_path))]
    assert listed == sorted(names)
    assert all(read_image(os.path.join(tmp_path, n)).shape == (4, 4, 3) for n in names)
    assert image_size(str(tmp_path / "d.WebP")) == (4, 4)


def test_empty_and_missing_folders_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(ImageReadError, match=r"empty contains no \.jpg"):
        list_images(str(tmp_path / "empty"))
    with pytest.raises(ImageReadError, match="empty contains no"):
        collect_images([str(tmp_path / "empty")])
    with pytest.raises(FileNotFoundError, match="nowhere"):
        list_images(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"nope\.jpg"):
        collect_images([str(tmp_path / "nope.jpg")])
    with pytest.raises(FileNotFoundError, match=r"\*\.png"):
        collect_images([str(tmp_path / "*.png")])


def test_collect_images_files_folders_and_globs(tmp_path):
    (tmp_path / "d").mkdir()
    for name in ("d/x.JPEG", "d/y.jpg", "z.png"):
        (_jpeg(tmp_path / name) if not name.endswith(".png")
         else Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(tmp_path / name))
    got = collect_images([str(tmp_path / "z.png"), str(tmp_path / "d"), str(tmp_path / "d" / "*.JPEG")])
    assert [os.path.relpath(p, tmp_path) for p in got] == ["z.png", "d/x.JPEG", "d/y.jpg", "d/x.JPEG"]


def test_output_names_never_overwrite(tmp_path):
    assert output_names(["a/x.jpg", "b/y.JPEG"]) == ["x.png", "y.png"]
    with pytest.raises(ValueError, match=r"same output x\.png: a/x\.jpg and b/x\.png"):
        output_names(["a/x.jpg", "b/x.png"])


def test_files_by_stem_refuses_two_files_for_one_stem(tmp_path):
    _jpeg(tmp_path / "a.jpg")
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(tmp_path / "a.PNG")
    with pytest.raises(ValueError, match="two files for 'a'"):
        files_by_stem(str(tmp_path))
