"""Every key of the config tree is honoured by the torchvision engine, refused, or listed as not applying.

For each leaf key of ``res2net_det.config.get_cfg()`` (the torchvision engine's tree) one of:

* **honoured**: changing it, in a small working config of the task that reads it, changes what the
  engine builds or runs, seen by a probe: ``model`` (the task's model: its modules and their
  arguments, their attributes, which parameters train, its initial weights), ``data`` (the training
  and test loaders: items, batch size, sampler), ``evaluator``, ``run`` (a short training run of a
  stub task through the real ``TaskLoopTrainer``: files written, metrics lines, final weights, warnings),
  ``runtime`` (torch threads, cuDNN), ``catalog`` (data sets registered), ``engine`` (the engine
  picked), ``weights`` (what ``--eval-only`` loads) or ``device``;
* **refused**: ``check_torchvision_support`` rejects a value other than the supported ones,
  naming the key (for keys whose supported values are several, the other supported value must
  also be honoured); a few keys whose only valid value follows from other keys are refused by
  the builders instead, naming the key (:data:`REFUSED_AT_BUILD`);
* **not applying**: listed in ``TORCHVISION_NOT_APPLICABLE`` with the refused key it depends on.

A key added to the tree without one of these fails here: its generic change (a flipped bool, an
int + 1, a float halved) changes nothing, and a string or list key has no alternative value.
Small configs (the quickstarts'), structures and arguments only, no training but the stub's:
the whole walk takes well under a minute.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
from typing import Any, Dict, List, NamedTuple, Tuple

import pytest
import torch
from torch import nn

from res2net_det.config import get_cfg, merge_config_file, merge_config_list
from res2net_det.config.weights import check_weights_preprocessing
from res2net_det.data.builtin import register_datasets_from_cfg
from res2net_det.data.catalog import DatasetCatalog
from res2net_det.engines import select_engine
from res2net_det.engines.torchvision.checkpoint import Checkpointer
from res2net_det.engines.torchvision.data import MappedDataset, build_batch_test_loader, build_batch_train_loader
from res2net_det.engines.torchvision.registry import Task, get_task
from res2net_det.engines.torchvision.support import (
    TORCHVISION_NOT_APPLICABLE,
    TORCHVISION_SUPPORTED_VALUES,
    TORCHVISION_SUPPORTED_VALUES_RETINANET,
    check_torchvision_support,
)
from res2net_det.engines.torchvision.train_net import apply_runtime_settings
from res2net_det.engines.torchvision.trainer import TaskLoopTrainer, images_per_process, model_device
from tests.engines.test_trainer_keys import _task_opts
from tests.helpers import REPO, FileServer


def _leaves(node, prefix: str = ""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


KEYS = sorted(_leaves(get_cfg()))


class Alt(NamedTuple):
    """The changed value, settings both runs need (``context``) and ones only the changed value
    needs to build at all (``extra``: used sparingly, each with its reason)."""

    value: Any
    context: Dict[str, Any] = {}
    extra: Dict[str, Any] = {}


SINGLE_LEVEL = {"MODEL.BACKBONE.NAME": "build_res2net_backbone", "MODEL.RES2NET.OUT_FEATURES": ["res4"],
                "MODEL.FPN.IN_FEATURES": [], "MODEL.RPN.IN_FEATURES": ["res4"], "MODEL.ROI_HEADS.IN_FEATURES": ["res4"],
                "MODEL.ANCHOR_GENERATOR.SIZES": [[32, 64]]}
DEFORM = {"MODEL.RES2NET.DEFORM_ON_PER_STAGE": [False, True, False, False]}
CLIP = {"SOLVER.CLIP_GRADIENTS.ENABLED": True}
SGD = {"SOLVER.OPTIMIZER": "SGD"}

# Alternative values where the generic change (bool flipped, int + 1, float halved) does not fit.
ALTERNATIVES: Dict[str, Alt] = {
    "MODEL.DEVICE": Alt("cuda"),  # on a CPU-only machine: the CPU with a warning
    "MODEL.META_ARCHITECTURE": Alt("Res2NetClassifier"),
    "MODEL.WEIGHTS": Alt("<backbone-only file>"),
    "MODEL.WEIGHTS_ALLOW_PARTIAL": Alt(True, {"MODEL.WEIGHTS": "<backbone-only file>"}),
    # a download whose sha256 disagrees with its name: refused, or kept on purpose
    "MODEL.WEIGHTS_ACCEPT_CHECKSUM_MISMATCH": Alt(True, {"MODEL.WEIGHTS": "<backbone-only file, wrong-hash URL>"}),
    # published weights with Detectron2's BGR input: refused, or accepted on purpose
    "MODEL.WEIGHTS_ALLOW_OTHER_PREPROCESSING": Alt(True, {"MODEL.WEIGHTS": "<an official file name>",
                                                          "INPUT.FORMAT": "BGR"}),
    "MODEL.PIXEL_MEAN": Alt([0.0, 0.0, 0.0]),
    "MODEL.PIXEL_STD": Alt([2.0, 2.0, 2.0]),
    # the other supported backbone: a single level needs its own feature names downstream
    "MODEL.BACKBONE.NAME": Alt("build_res2net_backbone", extra={k: v for k, v in SINGLE_LEVEL.items()
                                                                 if k != "MODEL.BACKBONE.NAME"}),
    # one more FPN input: one more level for the RPN, which must list them all
    "MODEL.FPN.IN_FEATURES": Alt(["res2", "res3", "res4"], {"MODEL.RES2NET.OUT_FEATURES": ["res2", "res3", "res4"],
                                                            "MODEL.ANCHOR_GENERATOR.SIZES": [[16, 24]]},
                                 {"MODEL.RPN.IN_FEATURES": ["p2", "p3", "p4", "p5"]}),
    "MODEL.ANCHOR_GENERATOR.SIZES": Alt([[16, 32], [32, 64], [64, 128]]),
    "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS": Alt([[1.0, 2.0]]),
    "MODEL.RPN.IOU_THRESHOLDS": Alt([0.4, 0.6]),
    "MODEL.RPN.BBOX_REG_WEIGHTS": Alt((2.0, 2.0, 1.0, 1.0)),
    "MODEL.ROI_HEADS.IN_FEATURES": Alt(["p2", "p3"]),
    "MODEL.ROI_HEADS.IOU_THRESHOLDS": Alt([0.6]),
    "MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS": Alt((5.0, 5.0, 2.0, 2.0)),
    "MODEL.ROI_BOX_HEAD.POOLER_TYPE": Alt("ROIAlign"),
    "MODEL.ROI_BOX_HEAD.CONV_DIM": Alt(128, {"MODEL.ROI_BOX_HEAD.NUM_CONV": 1}),
    "MODEL.ROI_BOX_HEAD.NORM": Alt("GN", {"MODEL.ROI_BOX_HEAD.NUM_CONV": 1}),
    "MODEL.ROI_MASK_HEAD.NORM": Alt("GN"),
    "MODEL.ROI_MASK_HEAD.POOLER_TYPE": Alt("ROIAlign"),
    "MODEL.RETINANET.IOU_THRESHOLDS": Alt([0.3, 0.6]),
    "MODEL.RETINANET.BBOX_REG_LOSS_TYPE": Alt("giou"),
    "MODEL.RETINANET.NORM": Alt("GN"),
    "MODEL.RES2NET.DEPTH": Alt(101),
    "MODEL.RES2NET.NORM": Alt("GN"),
    "MODEL.RES2NET.STEM_WIDTH": Alt(16, {"MODEL.RES2NET.DEEP_STEM": True}),
    "MODEL.RES2NET.STRIDE_IN_1X1": Alt(True, {"MODEL.RES2NET.SCALE": 1}),
    "MODEL.RES2NET.RES5_DILATION": Alt(2),
    # what a single-level detector runs on (with an FPN, FPN.IN_FEATURES picks the stages)
    "MODEL.RES2NET.OUT_FEATURES": Alt(["res3"], SINGLE_LEVEL, {"MODEL.RPN.IN_FEATURES": ["res3"],
                                                               "MODEL.ROI_HEADS.IN_FEATURES": ["res3"]}),
    "MODEL.RES2NET.DEFORM_ON_PER_STAGE": Alt([False, True, False, False]),
    "MODEL.RES2NET.DEFORM_MODULATED": Alt(True, DEFORM),
    "MODEL.RES2NET.DEFORM_NUM_GROUPS": Alt(2, DEFORM),
    "MODEL.CLASSIFIER.BLOCKS_PER_STAGE": Alt([1, 1, 2, 1]),
    # one level fewer, with its channels
    "MODEL.SALIENCY.IN_FEATURES": Alt(["res2", "res3", "res4", "res5"],
                                      extra={"MODEL.SALIENCY.CONVERT_CHANNELS": [32, 32, 64, 64]}),
    "MODEL.SALIENCY.CONVERT_CHANNELS": Alt([16, 16, 32, 32, 64]),
    "MODEL.SALIENCY.PPM_BINS": Alt([1, 2]),
    "MODEL.SALIENCY.FAM_POOL_SIZES": Alt([2, 4]),
    "MODEL.SALIENCY.LOSS_REDUCTION": Alt("sum"),
    "INPUT.MIN_SIZE_TRAIN": Alt((80,)),
    "INPUT.MAX_SIZE_TRAIN": Alt(70),
    "INPUT.MAX_SIZE_TEST": Alt(70),
    "INPUT.RANDOM_FLIP": Alt("none"),
    "INPUT.FORMAT": Alt("BGR"),
    "INPUT.CLASSIFIER.RESIZE": Alt((40, 40)),
    "INPUT.SALIENCY.RESIZE": Alt([40, 40]),
    "DATASETS.TRAIN": Alt("<training and test sets>"),
    "DATASETS.TEST": Alt("<train set>"),
    "DATASETS.COCO_INSTANCES": Alt("<one more COCO set>"),
    "DATASETS.PASCAL_VOC": Alt([["walk_voc_extra", "/nonexistent/VOC2007", "test", 2007]]),
    "DATASETS.WSOL_SPLITS": Alt("<one more WSOL split>"),
    "DATASETS.SALIENCY_FOLDERS": Alt("<one more saliency folder>"),
    "SOLVER.LR_SCHEDULER_NAME": Alt("WarmupCosineLR"),
    "SOLVER.OPTIMIZER": Alt("AdamW"),
    "SOLVER.MOMENTUM": Alt(0.5, SGD),  # SGD's (the quickstart trains with Adam)
    "SOLVER.NESTEROV": Alt(True, SGD),
    "SOLVER.STEPS": Alt((2,)),
    "SOLVER.GAMMA": Alt(0.5, {"SOLVER.STEPS": (2,)}),
    "SOLVER.WARMUP_ITERS": Alt(2),
    "SOLVER.WARMUP_METHOD": Alt("constant"),
    "SOLVER.WEIGHT_DECAY_BIAS": Alt(0.5),
    "SOLVER.CHECKPOINT_PERIOD": Alt(2),
    "SOLVER.CHECKPOINT_KEEP": Alt(1, {"SOLVER.CHECKPOINT_PERIOD": 2}),
    "SOLVER.IMS_PER_BATCH": Alt(8),
    "SOLVER.GRAD_ACCUM_STEPS": Alt(2),
    "SOLVER.LOG_PERIOD": Alt(2),
    "SOLVER.CLIP_GRADIENTS.CLIP_TYPE": Alt("norm", CLIP),
    "SOLVER.CLIP_GRADIENTS.CLIP_VALUE": Alt(0.1, CLIP),
    "SOLVER.CLIP_GRADIENTS.NORM_TYPE": Alt(1.0, {**CLIP, "SOLVER.CLIP_GRADIENTS.CLIP_TYPE": "norm"}),
    "TEST.EVAL_PERIOD": Alt(2),
    "TEST.VIS_IMAGES": Alt(2),
    "OUTPUT_DIR": Alt("elsewhere/out"),
    "SEED": Alt(1),
    "ENGINE": Alt("detectron2"),
    "NUM_THREADS": Alt(2),
}

# Keys whose one valid value follows from other keys: the builders refuse any other, naming the key.
REFUSED_AT_BUILD: Dict[str, Any] = {
    "MODEL.RPN.IN_FEATURES": ["p2", "p3"],  # must list every FPN level (torchvision's RPN runs on all)
    "MODEL.RETINANET.IN_FEATURES": ["p3", "p4", "p5"],  # the same for RetinaNet's head
}

# Values outside the supported ones, where the generic one (bool flipped, "unsupported", int + 1) doesn't fit.
REFUSED_VALUES: Dict[str, Any] = {
    "MODEL.ANCHOR_GENERATOR.ANGLES": [[0]],
    "MODEL.RPN.IOU_LABELS": [0, 1],
    "MODEL.RPN.CONV_DIMS": [64],
    "MODEL.ROI_HEADS.IOU_LABELS": [0, -1, 1],
    "MODEL.RETINANET.IOU_LABELS": [0, 1],
    "MODEL.RETINANET.BBOX_REG_WEIGHTS": (2.0, 2.0, 1.0, 1.0),
    "MODEL.RETINANET.SMOOTH_L1_LOSS_BETA": 0.1,
    "DATASETS.PROPOSAL_FILES_TRAIN": ("proposals.pkl",),
    "DATASETS.PROPOSAL_FILES_TEST": ("proposals.pkl",),
    "TEST.EXPECTED_RESULTS": [["bbox", "AP", 40.0, 0.1]],
}

# Which probe sees a key: by prefix (first match), some keys by name.
PROBES: Dict[str, Tuple[str, ...]] = {
    "MODEL.DEVICE": ("device",),
    "MODEL.WEIGHTS": ("weights",),
    "MODEL.WEIGHTS_ALLOW_PARTIAL": ("weights",),
    "MODEL.WEIGHTS_ACCEPT_CHECKSUM_MISMATCH": ("weights",),
    "MODEL.WEIGHTS_ALLOW_OTHER_PREPROCESSING": ("preprocessing",),
    "TEST.DETECTIONS_PER_IMAGE": ("model",),
    "INPUT.SALIENCY.MASK_TOLERANCE": ("evaluator",),
    "DATASETS.COCO_INSTANCES": ("catalog",),
    "DATASETS.PASCAL_VOC": ("catalog",),
    "DATASETS.WSOL_SPLITS": ("catalog",),
    "DATASETS.SALIENCY_FOLDERS": ("catalog",),
    "ENGINE": ("engine",),
    "NUM_THREADS": ("runtime",),
    "CUDNN_BENCHMARK": ("runtime",),
}
PREFIX_PROBES = (("MODEL.", ("model",)), ("INPUT.", ("data",)), ("DATALOADER.", ("data",)), ("DATASETS.", ("data",)),
                 ("", ("run",)))


def _task_of(key: str) -> str:
    """The small config (task) whose build reads the key."""
    if key.startswith("MODEL.RETINANET."):
        return "retinanet"
    if key.startswith("MODEL.ROI_MASK_HEAD."):
        return "mask"
    if key.startswith(("MODEL.SALIENCY.", "INPUT.SALIENCY.")) or key == "DATASETS.SALIENCY_FOLDERS":
        return "saliency"
    if key.startswith(("MODEL.CLASSIFIER.", "INPUT.CLASSIFIER.")) or key == "DATASETS.WSOL_SPLITS":
        return "classification"
    return "rcnn"


def _probes_of(key: str) -> Tuple[str, ...]:
    return PROBES.get(key) or next(probes for prefix, probes in PREFIX_PROBES if key.startswith(prefix))


# ---------------------------------------------------------------------------- configs
def _get(cfg, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _with(cfg, changes: Dict[str, Any]):
    cfg = cfg.clone()
    cfg.defrost()
    for key, value in changes.items():
        *parents, last = key.split(".")
        node = cfg
        for part in parents:
            node = node[part]
        node[last] = value
    return cfg


class World:
    """The small configs of every task, their data on disk, and cached baselines."""

    def __init__(self, root: str) -> None:
        self.root = root
        common = ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "DATALOADER.NUM_WORKERS", "0", "SEED", "0",
                  "SOLVER.MAX_ITER", "6", "SOLVER.IMS_PER_BATCH", "4", "OUTPUT_DIR", "out"]
        self.configs = {}
        for task, name in (("rcnn", "detection"), ("saliency", "saliency"), ("classification", "classification")):
            config_file, opts = _task_opts(name, os.path.join(root, "data_" + name))
            opts = [o.replace("keys_", "walk_") for o in opts]  # that test's names are registered with its files
            self.configs[task] = merge_config_list(merge_config_file(get_cfg(), str(REPO / config_file)), opts + common)
        rcnn = self.configs["rcnn"]
        self._add_empty_image(rcnn)
        self.configs["mask"] = _with(rcnn, {"MODEL.MASK_ON": True})
        retinanet = merge_config_file(get_cfg(), str(REPO / "configs" / "retinanet_r2_50.yaml"))
        self.configs["retinanet"] = merge_config_list(retinanet, [
            "MODEL.RES2NET.WIDTH_PER_GROUP", "4", "MODEL.RES2NET.NORM", "BN", "MODEL.BACKBONE.FREEZE_AT", "0",
            "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.RETINANET.NUM_CLASSES", "3",
            *[str(v) for k in ("DATASETS.COCO_INSTANCES", "DATASETS.TRAIN", "DATASETS.TEST", "INPUT.MIN_SIZE_TEST",
                               "INPUT.MAX_SIZE_TEST") for v in (k, _get(rcnn, k))], *common])
        for cfg in self.configs.values():
            check_torchvision_support(cfg)
            register_datasets_from_cfg(cfg)
        torch.manual_seed(1)
        state = get_task("GeneralizedRCNN").build_model(rcnn).state_dict()
        self.backbone_file = os.path.join(root, "backbone_only.pth")
        torch.save({"model": {k: v for k, v in state.items() if k.startswith("backbone.bottom_up.")}},
                   self.backbone_file)
        with open(self.backbone_file, "rb") as f:
            self.server = FileServer({"/w/backbone-deadbeef.pth": f.read()}).__enter__()
        self._baselines: Dict[Any, Any] = {}
        self._runs = itertools.count()

    def _add_empty_image(self, cfg) -> None:
        """One training image without annotations (DATALOADER.FILTER_EMPTY_ANNOTATIONS drops it)."""
        _, json_file, image_root = cfg.DATASETS.COCO_INSTANCES[0]
        with open(json_file, encoding="utf-8") as f:
            coco = json.load(f)
        empty = dict(coco["images"][0], id=max(i["id"] for i in coco["images"]) + 1)
        coco["images"].append(empty)
        with_empty = os.path.join(self.root, "train_with_empty.json")
        with open(with_empty, "w", encoding="utf-8") as f:
            json.dump(coco, f)
        cfg.DATASETS.COCO_INSTANCES = [*cfg.DATASETS.COCO_INSTANCES,
                                       ["walk_coco_train_with_empty", with_empty, image_root]]
        cfg.DATASETS.TRAIN = ("walk_coco_train_with_empty",)

    def resolve(self, task: str, value: Any) -> Any:
        """Placeholders of :data:`ALTERNATIVES` that need the data on disk."""
        cfg = self.configs[task]
        if value == "<backbone-only file>":
            return self.backbone_file
        if value == "<backbone-only file, wrong-hash URL>":
            return f"{self.server.url}/w/backbone-deadbeef.pth"
        if value == "<an official file name>":  # the preprocessing check knows it by its name alone
            return os.path.join(self.root, "res2net50_26w_4s-06e79181.pth")
        if value == "<training and test sets>":
            return (*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST)
        if value == "<train set>":
            return tuple(cfg.DATASETS.TRAIN)
        if value == "<one more COCO set>":
            return [*cfg.DATASETS.COCO_INSTANCES, ["walk_coco_extra", *cfg.DATASETS.COCO_INSTANCES[0][1:]]]
        if value == "<one more WSOL split>":
            return [*cfg.DATASETS.WSOL_SPLITS, ["walk_wsol_extra", *cfg.DATASETS.WSOL_SPLITS[0][1:]]]
        if value == "<one more saliency folder>":
            return [*cfg.DATASETS.SALIENCY_FOLDERS, ["walk_sod_extra", *cfg.DATASETS.SALIENCY_FOLDERS[0][1:]]]
        return value

    def fingerprint(self, cfg, probes: Tuple[str, ...], cache_key=None) -> Dict[str, Any]:
        if cache_key is not None and cache_key in self._baselines:
            return self._baselines[cache_key]
        found = {probe: globals()[f"_probe_{probe}"](cfg, self) for probe in probes}
        if cache_key is not None:
            self._baselines[cache_key] = found
        return found


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    cache = os.environ.get("RES2NET_DET_CACHE")
    os.environ["RES2NET_DET_CACHE"] = str(tmp_path_factory.mktemp("weights_cache"))
    built = World(str(tmp_path_factory.mktemp("every_key")))
    yield built
    built.server.__exit__(None, None, None)
    if cache is None:
        os.environ.pop("RES2NET_DET_CACHE", None)
    else:
        os.environ["RES2NET_DET_CACHE"] = cache


# ---------------------------------------------------------------------------- probes
_MODULE_STATE = set(vars(nn.Module()))


def _describe(value: Any, depth: int = 0) -> Any:
    """A comparable description of a value: tensors by shape and sum, objects by their attributes."""
    if isinstance(value, torch.Tensor):  # every element counts (a flip or a channel swap keeps the sum)
        data = value.detach().cpu().contiguous()
        return ("tensor", tuple(data.shape), str(data.dtype), hashlib.sha1(data.numpy().tobytes()).hexdigest()[:16])
    if isinstance(value, (bool, int, float, str, type(None), torch.dtype, torch.device)):
        return value
    if isinstance(value, dict):
        return {str(k): _describe(v, depth) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_describe(v, depth) for v in value]
    if isinstance(value, nn.Module):
        return f"<module {type(value).__name__}>"
    if callable(value) and not hasattr(value, "__dict__") or getattr(value, "__qualname__", None):
        return f"<callable {getattr(value, '__qualname__', type(value).__name__)}>"
    if depth < 2 and hasattr(value, "__dict__"):
        return {"type": type(value).__name__, **{k: _describe(v, depth + 1) for k, v in sorted(vars(value).items())}}
    return type(value).__name__


def _attributes(obj: Any) -> Dict[str, Any]:
    """Every plain attribute of an object (a module: not torch's own bookkeeping), described."""
    return {k: _describe(v) for k, v in sorted(vars(obj).items()) if k not in _MODULE_STATE}


def _probe_model(cfg, world) -> Dict[str, Any]:
    torch.manual_seed(0)
    model = get_task(cfg.MODEL.META_ARCHITECTURE).build_model(cfg)
    return {
        "modules": repr(model),
        "attributes": {name or "<model>": _attributes(m) for name, m in model.named_modules()},
        "trainable": [n for n, p in model.named_parameters() if p.requires_grad],
        "weights": {k: _describe(v) for k, v in model.state_dict().items()},
    }


def _items(loader, count: int) -> List[Any]:
    keys = itertools.islice(iter(loader.sampler), count)
    return [_describe(loader.dataset[k]) for k in keys]


def _probe_data(cfg, world) -> Dict[str, Any]:
    task = get_task(cfg.MODEL.META_ARCHITECTURE)
    train = task.build_train_loader(cfg)
    test = task.build_test_loader(cfg, cfg.DATASETS.TEST[0])
    return {"train": {"size": len(train.dataset), "batch_size": train.batch_size, "workers": train.num_workers,
                      "sampler": type(train.sampler).__name__, "items": _items(train, 8)},
            "test": {"size": len(test.dataset), "items": [_describe(test.dataset[i]) for i in range(2)]}}


def _probe_evaluator(cfg, world) -> Dict[str, Any]:
    evaluator = get_task(cfg.MODEL.META_ARCHITECTURE).build_evaluator(
        cfg, cfg.DATASETS.TEST[0], os.path.join(world.root, "evaluator"))
    return _attributes(evaluator)


class _StubModel(nn.Module):
    """A model with a weight, a bias and a norm, so that every parameter group of the solver exists."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))

    def forward(self, batch):
        out = self.net(torch.stack([b["x"] for b in batch])).squeeze(1)
        if self.training:
            return {"loss": ((out - torch.stack([b["y"] for b in batch])) ** 2).mean() * 50}
        return [{"out": o} for o in out]


_STUB_RECORDS = [{"k": k} for k in range(16)]


def _stub_map(record, rng):
    return {"x": torch.tensor(rng.normal(size=3), dtype=torch.float32) + record["k"] / 8,
            "y": torch.tensor(float(record["k"] % 3))}


class _StubEvaluator:
    def reset(self):
        self.outputs = []

    def process(self, inputs, outputs):
        self.outputs += [float(o["out"]) for o in outputs]

    def evaluate(self):
        return {"mean": sum(self.outputs) / len(self.outputs)}


def _stub_pictures(cfg, model, name, output_dir, num_images):
    os.makedirs(output_dir, exist_ok=True)
    for i in range(num_images):
        open(os.path.join(output_dir, f"{i}.png"), "w").close()


STUB_TASK = Task(
    name="walk_stub",
    build_model=lambda cfg: _StubModel(),
    build_train_loader=lambda cfg: build_batch_train_loader(MappedDataset(_STUB_RECORDS, _stub_map),
                                                            images_per_process(cfg), 0, cfg.SEED),
    build_test_loader=lambda cfg, name: build_batch_test_loader(MappedDataset(_STUB_RECORDS[:4], _stub_map), 0),
    build_evaluator=lambda cfg, name, output_dir: _StubEvaluator(),
    visualize=_stub_pictures,
)


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: List[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _probe_run(cfg, world) -> Dict[str, Any]:
    """A short run of the real TaskLoopTrainer on a stub task, in a fresh folder (OUTPUT_DIR is relative)."""
    folder = os.path.join(world.root, f"run{next(world._runs)}")
    os.makedirs(folder)
    cwd, warnings = os.getcwd(), _Warnings()
    logging.getLogger("res2net_det").addHandler(warnings)
    os.chdir(folder)
    try:
        torch.manual_seed(0)
        trainer = TaskLoopTrainer(cfg, STUB_TASK)
        trainer.resume_or_load(resume=False)
        trainer.train()
        files = sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs
                       if "tfevents" not in f)
        metrics_file = os.path.join(folder, cfg.OUTPUT_DIR, "metrics.json")
        with open(metrics_file, encoding="utf-8") as f:
            metrics = [{k: v for k, v in json.loads(line).items() if k not in ("time", "data_time", "eta_seconds")}
                       for line in f]
        return {"files": files, "metrics": _describe(metrics), "weights": _describe(trainer.model.state_dict()),
                "warnings": warnings.messages}
    finally:
        os.chdir(cwd)
        logging.getLogger("res2net_det").removeHandler(warnings)


def _probe_runtime(cfg, world) -> Dict[str, Any]:
    threads, benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    try:
        apply_runtime_settings(cfg)
        return {"threads": torch.get_num_threads(), "cudnn_benchmark": torch.backends.cudnn.benchmark}
    finally:
        torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = benchmark


def _probe_catalog(cfg, world) -> List[str]:
    register_datasets_from_cfg(cfg)
    return sorted(DatasetCatalog.names())


def _probe_engine(cfg, world) -> str:
    try:
        return select_engine(cfg)
    except RuntimeError as e:  # Detectron2 asked for but not installed
        return f"refused: {e}"


def _probe_weights(cfg, world) -> Any:
    """What --eval-only does with MODEL.WEIGHTS (and MODEL.WEIGHTS_ALLOW_PARTIAL)."""
    torch.manual_seed(0)
    model = get_task(cfg.MODEL.META_ARCHITECTURE).build_model(cfg)
    try:
        Checkpointer(model, os.path.join(world.root, "weights_probe")).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=False, allow_partial=cfg.MODEL.WEIGHTS_ALLOW_PARTIAL, inference=True,
            accept_checksum_mismatch=cfg.MODEL.WEIGHTS_ACCEPT_CHECKSUM_MISMATCH)
    except Exception as e:  # noqa: BLE001 - the refusal is the observable behaviour
        return f"{type(e).__name__}: {e}"
    return _describe(model.state_dict())


def _probe_preprocessing(cfg, world) -> str:
    """What both engines' set-up says of MODEL.WEIGHTS against INPUT.FORMAT / PIXEL_MEAN / PIXEL_STD."""
    try:
        check_weights_preprocessing(cfg)
    except ValueError as e:
        return f"refused: {e}"
    return "accepted"


def _probe_device(cfg, world) -> Any:
    warnings = _Warnings()
    logging.getLogger("res2net_det").addHandler(warnings)
    try:
        return str(model_device(cfg)), warnings.messages
    finally:
        logging.getLogger("res2net_det").removeHandler(warnings)


# ---------------------------------------------------------------------------- decisions
def _generic_change(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if value else 0.5
    return None  # strings, lists, None: an alternative must be chosen (ALTERNATIVES)


def _refusal_tables(task: str) -> Dict[str, Tuple[Any, ...]]:
    if task == "retinanet":
        table = {k: v for k, v in TORCHVISION_SUPPORTED_VALUES.items()
                 if not k.startswith(("MODEL.BACKBONE.NAME", "MODEL.PROPOSAL_GENERATOR.", "MODEL.RPN.", "MODEL.ROI_"))}
        table.update(TORCHVISION_SUPPORTED_VALUES_RETINANET)
        table["MODEL.RETINANET.SMOOTH_L1_LOSS_BETA"] = (0.0,)  # with the smooth_l1 loss of the config
        return table
    return dict(TORCHVISION_SUPPORTED_VALUES)


def _refused_value(key: str, allowed: Tuple[Any, ...]) -> Any:
    if key in REFUSED_VALUES:
        return REFUSED_VALUES[key]
    first = allowed[0]
    if isinstance(first, bool):
        return not first
    if isinstance(first, str):
        return "Unsupported"
    if isinstance(first, (int, float)):
        return max(allowed) + 1
    raise AssertionError(f"{key}: give a refused value in REFUSED_VALUES")


def _assert_honoured(world: World, key: str, alt: Alt) -> None:
    task = _task_of(key)
    base = _with(world.configs[task], {k: world.resolve(task, v) for k, v in alt.context.items()})
    value = world.resolve(task, alt.value)
    changed = _with(base, {key: value, **{k: world.resolve(task, v) for k, v in alt.extra.items()}})
    probes = _probes_of(key)
    before = world.fingerprint(base, probes, cache_key=(task, probes, repr(sorted(alt.context.items())))
                               if "catalog" not in probes else None)
    after = world.fingerprint(changed, probes)
    assert after != before, (
        f"{key}: changing it from {_get(base, key)!r} to {value!r} ({task} config) changed nothing the torchvision "
        f"engine builds or runs (probes: {', '.join(probes)}); it is neither refused by check_torchvision_support "
        "(TORCHVISION_SUPPORTED_VALUES) nor listed in TORCHVISION_NOT_APPLICABLE. Honour it, refuse it, or list it."
    )


@pytest.mark.parametrize("key", KEYS)
def test_every_key_is_honoured_refused_or_listed(world, key):
    task = _task_of(key)
    if key in TORCHVISION_NOT_APPLICABLE:
        reason = TORCHVISION_NOT_APPLICABLE[key]
        gates = [k for k in re.findall(r"[A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)+", reason) if k in KEYS]
        assert gates, f"{key}: the reason {reason!r} names no key it depends on"
        tables = _refusal_tables(task)
        assert any(g in tables or g in REFUSED_AT_BUILD for g in gates), f"{key}: {gates} are not refused"
        return
    if key in REFUSED_AT_BUILD:
        with pytest.raises(ValueError, match=re.escape(key)):
            _probe_model(_with(world.configs[task], {key: REFUSED_AT_BUILD[key]}), world)
        return
    table = _refusal_tables(task)
    if key in table:
        allowed = table[key]
        refused = _refused_value(key, allowed)
        with pytest.raises(ValueError, match=re.escape(key)):
            check_torchvision_support(_with(world.configs[task], {key: refused}))
        if len(allowed) == 1:
            return
        current = _get(world.configs[task], key)
        other = ALTERNATIVES.get(key) or Alt(next(a for a in allowed if a != current))
        _assert_honoured(world, key, other)
        return
    alt = ALTERNATIVES.get(key)
    if alt is None:
        value = _generic_change(_get(world.configs[task], key))
        assert value is not None, (
            f"{key} = {_get(world.configs[task], key)!r}: no decision. Give it an alternative value in "
            "ALTERNATIVES (and make the torchvision engine honour it), refuse it in TORCHVISION_SUPPORTED_VALUES, "
            "or list it in TORCHVISION_NOT_APPLICABLE."
        )
        alt = Alt(value)
    _assert_honoured(world, key, alt)


def test_the_decision_tables_name_only_keys_of_the_tree():
    named = [*ALTERNATIVES, *REFUSED_AT_BUILD, *REFUSED_VALUES, *PROBES, *TORCHVISION_NOT_APPLICABLE,
             *TORCHVISION_SUPPORTED_VALUES, *TORCHVISION_SUPPORTED_VALUES_RETINANET]
    assert not [k for k in named if k not in KEYS]
    for alt in ALTERNATIVES.values():
        assert not [k for k in [*alt.context, *alt.extra] if k not in KEYS]
