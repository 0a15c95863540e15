"""Helpers shared by the tests: the repository's paths, tiny configs and tiny data on disk."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from res2net_det.config import get_cfg, merge_config_file
from res2net_det.config.defaults import ConfigKeyError, merge_config_list
from res2net_det.data.synthetic import SHAPE_CLASSES, generate_shapes_coco
from res2net_det.engines import detectron2_available
from res2net_det.model_zoo import resolve_config_file
from res2net_det.modeling.detection import fasterrcnn_res2net_fpn

REPO = Path(__file__).resolve().parents[1]
# Real reference data from peers, kept outside the project next to the checkout (../shared);
# tests using it skip when it is absent.
SHARED_TESTDATA = REPO.parent / "shared" / "testdata"
# Real masks + predictions with their pysodmetrics values.
SHARED_SOD = SHARED_TESTDATA / "sod-pysodmetrics"


def shipped_config(name: str, *opts: str, skip: bool = True):
    """A shipped YAML config in the tree that can hold it: ours (the torchvision engine's keys), or
    for a Detectron2-only config (Panoptic FPN's MODEL.SEM_SEG_HEAD ...) Detectron2's ``get_cfg()`` +
    our keys. Without Detectron2 such a config skips the test (``skip``) or gives None."""
    try:
        return merge_config_list(merge_config_file(get_cfg(), resolve_config_file(name)), list(opts))
    except ConfigKeyError:
        if not detectron2_available():
            if not skip:
                return None
            import pytest

            pytest.skip(f"{name} has Detectron2-only keys and Detectron2 is not installed")
        from res2net_det.engines.detectron2.train_net import build_config

        return build_config(resolve_config_file(name), list(opts))


def tiny_sod_cfg():
    """configs/sod/Base-PoolNet-Res2Net.yaml made small and fast (narrow, trainable BN, CPU)."""
    cfg = merge_config_file(get_cfg(), str(REPO / "configs" / "sod" / "Base-PoolNet-Res2Net.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.RES2NET.NORM = "BN"
    cfg.MODEL.RES2NET.WIDTH_PER_GROUP = 4
    cfg.MODEL.RES2NET.RES5_DILATION = 2
    cfg.MODEL.SALIENCY.IN_FEATURES = ["stem", "res2", "res3", "res4", "res5"]
    cfg.MODEL.SALIENCY.CONVERT_CHANNELS = [8, 8, 16, 16, 16]
    return cfg


def write_pair(image_dir, mask_dir, stem, size=(40, 48), mask_value=255, image_mode="RGB", seed=0):
    """Writes ``stem.jpg`` (a random image) and ``stem.png`` (a centred square mask); size is (H, W)."""
    rng = np.random.default_rng(seed)
    h, w = size
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(mask_dir, exist_ok=True)
    img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    if image_mode != "RGB":
        img = img.convert(image_mode)
    img.save(os.path.join(image_dir, stem + (".png" if image_mode in ("RGBA", "LA") else ".jpg")))
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = mask_value
    Image.fromarray(mask).save(os.path.join(mask_dir, stem + ".png"))
    return mask


def randomize_norm_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN statistics and affine parameters, so that loading them is actually checked.

    The ranges keep activations of 100+ layer networks in a sane range (residual branches
    shrink a little, so a missed key or a wrong op still moves outputs by far more than 1e-4).
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, FrozenBatchNorm2d)):
                n = m.weight.numel()
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) * 0.5 + 0.25)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
    return model


# A tiny ImageNet validation set: 3 synsets listed in the devkit's ILSVRC2012_ID order, which is
# not the sorted (class index) order, so a mapping through the wrong order shows.
IMAGENET_ID_ORDER = ("n02119789", "n01440764", "n01443537")
IMAGENET_CLASSES = tuple(sorted(IMAGENET_ID_ORDER))
# file stem -> (wnid, dominant colour channel, (H, W), PIL mode); class sizes 2/2/3 and some
# colours off their class, so accuracy is neither 0 nor 100 and the classes differ in size. One
# image is greyscale, as a few ImageNet images are (read as RGB).
IMAGENET_IMAGES = {
    "ILSVRC2012_val_00000001": ("n01443537", 1, (300, 260), "RGB"),
    "ILSVRC2012_val_00000002": ("n02119789", 2, (240, 320), "RGB"),
    "ILSVRC2012_val_00000003": ("n01440764", 0, (180, 200), "RGB"),
    "ILSVRC2012_val_00000004": ("n01443537", 0, (256, 256), "RGB"),
    "ILSVRC2012_val_00000005": ("n01440764", 2, (333, 250), "L"),  # grey reads as blue after mean/std
    "ILSVRC2012_val_00000006": ("n02119789", 1, (260, 300), "RGB"),
    "ILSVRC2012_val_00000007": ("n01443537", 2, (230, 270), "RGB"),
}


def _imagenet_image(stem: str) -> Image.Image:
    _, channel, (h, w), mode = IMAGENET_IMAGES[stem]
    rng = np.random.default_rng(int(stem[-8:]))
    pixels = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    pixels[..., channel] += 180  # a dominant channel: what the colour classifier reads
    return Image.fromarray(pixels).convert(mode)


def write_imagenet_val(root) -> dict:
    """Writes the same JPEGs in the three layouts under ``root``: ``class/val/<wnid>/``,
    ``loc/`` (ILSVRC2012_img_val + LOC_val_solution.csv + LOC_synset_mapping.txt) and ``devkit/``
    (ILSVRC2012_img_val + ILSVRC2012_devkit_t12/data/{ground truth, meta.mat} + synsets.txt).
    Returns the three roots by name."""
    import scipy.io

    root = Path(root)
    roots = {name: root / name for name in ("class", "loc", "devkit")}
    data = roots["devkit"] / "ILSVRC2012_devkit_t12" / "data"
    for folder in [roots["loc"] / "ILSVRC2012_img_val", roots["devkit"] / "ILSVRC2012_img_val", data]:
        folder.mkdir(parents=True)
    for stem, (wnid, _, _, _) in IMAGENET_IMAGES.items():
        image = _imagenet_image(stem)
        (roots["class"] / "val" / wnid).mkdir(parents=True, exist_ok=True)
        for folder in (roots["class"] / "val" / wnid, roots["loc"] / "ILSVRC2012_img_val",
                       roots["devkit"] / "ILSVRC2012_img_val"):
            image.save(folder / f"{stem}.JPEG", quality=95)
    # Kaggle's files: rows in no particular order, one "wnid x0 y0 x1 y1" per box.
    rows = [f"{stem},{wnid} 10 20 110 120" + (f" {wnid} 5 5 50 60" if i % 2 else "")
            for i, (stem, (wnid, *_)) in enumerate(reversed(list(IMAGENET_IMAGES.items())))]
    (roots["loc"] / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + "\n".join(rows) + "\n")
    (roots["loc"] / "LOC_synset_mapping.txt").write_text("".join(f"{w} words, more words\n" for w in IMAGENET_CLASSES))
    # The devkit: line i is the ILSVRC2012_ID of image i; meta.mat lists the synsets (leaves first).
    ids = [IMAGENET_ID_ORDER.index(wnid) + 1 for wnid, *_ in IMAGENET_IMAGES.values()]
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("".join(f"{i}\n" for i in ids))
    synsets = np.zeros((len(IMAGENET_ID_ORDER) + 1, 1),
                       dtype=[(f, "O") for f in ("ILSVRC2012_ID", "WNID", "words", "num_children")])
    for i, wnid in enumerate(IMAGENET_ID_ORDER):
        synsets[i, 0] = (np.array([[i + 1]], np.uint16), wnid, "words", np.array([[0]], np.uint8))
    synsets[-1, 0] = (np.array([[1001]], np.uint16), "n00001740", "entity", np.array([[3]], np.uint8))  # not a class
    scipy.io.savemat(str(data / "meta.mat"), {"synsets": synsets})
    (roots["devkit"] / "synsets.txt").write_text("".join(f"{w}\n" for w in IMAGENET_ID_ORDER))
    return roots


def imagenet_labels() -> dict:
    """File name -> class index (sorted wnids) of the tiny set."""
    return {f"{stem}.JPEG": IMAGENET_CLASSES.index(wnid) for stem, (wnid, *_) in IMAGENET_IMAGES.items()}


def imagenet_colours() -> dict:
    """File name -> the dominant colour channel of the tiny set's image."""
    return {f"{stem}.JPEG": channel for stem, (_, channel, *_) in IMAGENET_IMAGES.items()}


class ColourClassifier(nn.Module):
    """Logits = per-channel mean of the normalised image: predicts the dominant channel."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(2, 3))


def tiny_retinanet_args(tmp_path, engine: str, iterations: int = 3):
    """``tools/train_net.py`` arguments that train configs/retinanet_r2_50.yaml for a few iterations on
    a tiny generated shapes set (8 train, 4 val images, registered through DATASETS.COCO_INSTANCES)
    with a narrow Res2Net, from scratch, on the CPU, then evaluate COCO AP and draw one image's
    predictions. Both engines read them."""
    files = generate_shapes_coco(str(tmp_path / "shapes"), splits={"train": (8, 0), "val": (4, 1)})
    tag = f"retina_{engine}_{os.getpid()}_{tmp_path.name}"
    sets = [[f"{tag}_{split}", *files[split]] for split in ("train", "val")]
    opts = [
        "ENGINE", engine, "OUTPUT_DIR", str(tmp_path / "out"), "MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu",
        # from scratch: batch norm that learns (frozen BN of a random init diverges)
        "MODEL.RES2NET.NORM", "BN", "MODEL.BACKBONE.FREEZE_AT", "0", "MODEL.RES2NET.WIDTH_PER_GROUP", "4",
        "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.RETINANET.NUM_CLASSES", str(len(SHAPE_CLASSES)),
        "MODEL.RETINANET.SCORE_THRESH_TEST", "0.0",  # an untrained model's boxes still reach COCOeval
        "DATASETS.COCO_INSTANCES", repr(sets), "DATASETS.TRAIN", f"('{sets[0][0]}',)",
        "DATASETS.TEST", f"('{sets[1][0]}',)",
        "INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "96", "INPUT.MIN_SIZE_TEST", "64",
        "INPUT.MAX_SIZE_TEST", "96", "DATALOADER.NUM_WORKERS", "0", "SOLVER.IMS_PER_BATCH", "2",
        "SOLVER.BASE_LR", "0.001", "SOLVER.STEPS", "()", "SOLVER.WARMUP_ITERS", "0",
        "SOLVER.MAX_ITER", str(iterations), "SOLVER.CHECKPOINT_PERIOD", "1000", "SOLVER.LOG_PERIOD", "1", "SEED", "0",
        "TEST.VIS_IMAGES", "1",
    ]
    return argparse.Namespace(
        config_file=str(REPO / "configs" / "retinanet_r2_50.yaml"), resume=False, eval_only=False,
        allow_untrained=False, num_gpus=0, num_machines=1, machine_rank=0, dist_url="auto", opts=opts,
    )


class FileServer:
    """A local HTTP server on 127.0.0.1 (a free port) serving ``files`` (URL path -> bytes) from a
    thread, for the download tests; nothing else is reachable from them. ``requests`` counts the
    GETs per path; a path in ``cut`` sends its full ``Content-Length`` but only half the bytes
    before closing the connection; ``delay`` seconds pass before each answer. Use as a context
    manager: the server stops on exit."""

    def __init__(self, files=None):
        import http.server
        import threading
        import time

        self.files = dict(files or {})
        self.cut = set()
        self.requests = {}
        self.delay = 0.0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                server.requests[self.path] = server.requests.get(self.path, 0) + 1
                time.sleep(server.delay)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "not here")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if self.path in server.cut else body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def file_bytes(obj, fmt: str = "pth") -> bytes:
    """A state dict as the bytes of a ``.pth`` (torch.save) or ``.safetensors`` file."""
    import io

    if fmt == "safetensors":
        import safetensors.torch

        return safetensors.torch.save({k: v.contiguous() for k, v in obj.items()})
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def tiny_detector(seed: int = 0):
    """A random Faster R-CNN small enough for unit tests: Res2Net res2-res3 (base width 4), FPN
    p2-p3 plus the max-pooled p4, 64 px inputs, every box kept (score threshold 0)."""
    torch.manual_seed(seed)
    return fasterrcnn_res2net_fpn(num_classes=3, out_features=("res2", "res3"), backbone_kwargs={"base_width": 4},
                                  fpn_channels=8, box_head_fc_dims=(16,), min_size=64, max_size=64,
                                  box_score_thresh=0.0, box_detections_per_img=5, norm="BN").eval()
