"""The LazyConfig twins (configs/lazy/NAME.py) build what their YAML (configs/NAME.yaml) builds.

For every pair: the same module tree, parameter and buffer shapes, trainable flags and the plain
settings each module keeps (thresholds, top-k, loss weights, matchers, box coders), the same
optimizer parameter groups, learning-rate schedule and data mapper. Models are built on the meta
device (shapes without memory), so the full-size recipes compare in a second or two.
"""
import math
import os
from collections.abc import Mapping, Sequence

import pytest
import torch

pytest.importorskip(
    "detectron2",
    reason="Detectron2 is not installed; build it from source (README.md, section Detectron2) to run these tests",
)
from detectron2.config import instantiate  # noqa: E402
from detectron2.data import DatasetMapper  # noqa: E402
from detectron2.modeling import META_ARCH_REGISTRY  # noqa: E402
from detectron2.solver import LRMultiplier, build_lr_scheduler  # noqa: E402

from res2net_det import model_zoo  # noqa: E402
from res2net_det.engines.detectron2.lazy import LazyTranslationError, lazy_config, yaml_twin_path  # noqa: E402
from res2net_det.engines.detectron2.train_net import build_config, trainer_class  # noqa: E402

LAZY = model_zoo.list_configs(lazy=True)
_PLAIN = (int, float, str, bool, type(None))


def _plain(value):
    """``value`` when it is made of plain Python values (recursively; lists and dicts of either config
    system, OmegaConf's included, alike), else None."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, Mapping):
        return _plain(sorted(value.items()))
    if isinstance(value, Sequence):
        items = [_plain(v) for v in value]
        return None if any(i is None and v is not None for i, v in zip(items, value)) else tuple(items)
    return None


def _settings(obj, depth: int = 0) -> dict:
    """The plain attributes of a module or helper object (a Matcher, a Box2BoxTransform), and one
    level into its helper objects."""
    out = {}
    for key, value in vars(obj).items():
        if key.startswith("_") and key not in ("_output_size",):
            continue
        plain = _plain(value)
        if plain is not None:
            out[key] = plain
        elif depth == 0 and isinstance(value, Sequence):  # e.g. Cascade R-CNN's list of matchers
            out[key] = [(type(v).__name__, _settings(v, depth + 1)) for v in value]
        elif depth == 0 and not isinstance(value, (torch.nn.Module, torch.Tensor)) and hasattr(value, "__dict__"):
            out[key] = (type(value).__name__, _settings(value, depth + 1))
    return out


def _describe(model: torch.nn.Module) -> dict:
    return {
        "tree": [(name, type(m).__name__) for name, m in model.named_modules()],
        "params": {n: (tuple(p.shape), p.requires_grad) for n, p in model.named_parameters()},
        "buffers": {n: tuple(b.shape) for n, b in model.named_buffers()},
        "settings": {name: _settings(m) for name, m in model.named_modules()},
    }


def _first_difference(a: dict, b: dict) -> str:
    for part in a:
        if a[part] != b[part]:
            if isinstance(a[part], dict):
                keys = sorted(set(a[part]) | set(b[part]))
                bad = next(k for k in keys if a[part].get(k) != b[part].get(k))
                return f"{part} of {bad!r}: YAML {a[part].get(bad)!r} vs lazy {b[part].get(bad)!r}"
            bad = next((x, y) for x, y in zip(a[part] + [None], b[part] + [None]) if x != y)
            return f"{part}: YAML {bad[0]!r} vs lazy {bad[1]!r}"
    return ""


def _groups(optimizer, model):
    names = {id(p): n for n, p in model.named_parameters()}
    return [(type(optimizer).__name__, sorted(names[id(p)] for p in g["params"]),
             {k: v for k, v in g.items() if k not in ("params",) and isinstance(v, (int, float, bool))})
            for g in optimizer.param_groups]


@pytest.mark.parametrize("name", LAZY)
def test_yaml_and_lazy_config_build_the_same_detector(name):
    lazy = model_zoo.get_config(name)
    cfg = build_config(yaml_twin_path(model_zoo.get_config_file(name)))
    with torch.device("meta"):
        from_yaml = META_ARCH_REGISTRY.get(cfg.MODEL.META_ARCHITECTURE)(cfg)
        from_lazy = instantiate(lazy.model)
    a, b = _describe(from_yaml), _describe(from_lazy)
    assert a == b, f"{name}: {_first_difference(a, b)}"
    assert "backbone.bottom_up.layer1.0.convs.0.weight" in a["params"] or cfg.MODEL.RES2NET.SCALE == 1
    assert list(lazy.model.pixel_mean) == list(cfg.MODEL.PIXEL_MEAN)
    assert list(lazy.model.pixel_std) == list(cfg.MODEL.PIXEL_STD)

    # The optimizer's parameter groups and the learning rate over the schedule.
    opt_yaml = trainer_class(cfg).build_optimizer(cfg, from_yaml)
    lazy.optimizer.params.model = from_lazy
    opt_lazy = instantiate(lazy.optimizer)
    assert _groups(opt_yaml, from_yaml) == _groups(opt_lazy, from_lazy)
    sched_yaml = build_lr_scheduler(cfg, opt_yaml)
    sched_lazy = LRMultiplier(opt_lazy, multiplier=instantiate(lazy.lr_multiplier), max_iter=lazy.train.max_iter)
    max_iter = cfg.SOLVER.MAX_ITER
    for it in sorted({0, 1, cfg.SOLVER.WARMUP_ITERS // 2, cfg.SOLVER.WARMUP_ITERS, max_iter - 1,
                      *[s + d for s in cfg.SOLVER.STEPS for d in (-1, 0, 1)]}):
        if 0 <= it < max_iter:
            assert math.isclose(sched_yaml._multiplier(it / max_iter), sched_lazy._multiplier(it / max_iter)), it

    # Data: the same mapper (augmentations, format, masks), sets, batch; the training loop's settings.
    for is_train, node in ((True, lazy.dataloader.train.mapper), (False, lazy.dataloader.test.mapper)):
        yaml_mapper, lazy_mapper = DatasetMapper(cfg, is_train), instantiate(node)
        assert _settings(yaml_mapper) == _settings(lazy_mapper)
        assert [(type(t).__name__, _settings(t)) for t in yaml_mapper.augmentations.augs] == [
            (type(t).__name__, _settings(t)) for t in lazy_mapper.augmentations.augs]
    assert list(lazy.dataloader.train.dataset.names) == list(cfg.DATASETS.TRAIN)
    assert lazy.dataloader.test.dataset.names == cfg.DATASETS.TEST[0]
    assert lazy.dataloader.train.total_batch_size == cfg.SOLVER.IMS_PER_BATCH
    assert lazy.dataloader.train.get("aspect_ratio_grouping", True) == cfg.DATALOADER.ASPECT_RATIO_GROUPING
    t = lazy.train
    assert (t.max_iter, t.init_checkpoint, t.output_dir, t.eval_period, t.log_period, t.device, t.seed) == (
        cfg.SOLVER.MAX_ITER, cfg.MODEL.WEIGHTS, cfg.OUTPUT_DIR, cfg.TEST.EVAL_PERIOD, cfg.SOLVER.LOG_PERIOD,
        cfg.MODEL.DEVICE, cfg.SEED)


def test_every_detection_yaml_has_a_lazy_twin():
    detection = [n for n in model_zoo.list_configs() if "/" not in n and not n.startswith("Base-")]
    assert sorted(f"lazy/{os.path.splitext(n)[0]}.py" for n in detection) == LAZY


def test_the_twin_follows_overrides_and_refuses_what_it_cannot_express(tmp_path):
    yaml_file = model_zoo.get_config_file("quickstart.yaml")
    twin = lazy_config(yaml_file, ["MODEL.ROI_HEADS.NUM_CLASSES", "7", "SOLVER.BASE_LR", "0.5"])
    assert twin.model.roi_heads.num_classes == 7 and twin.model.roi_heads.box_predictor.num_classes == 7
    assert twin.optimizer.lr == 0.5
    with pytest.raises(LazyTranslationError, match=r"quickstart.yaml: SOLVER.GRAD_ACCUM_STEPS=2 .*tools/train_net.py"):
        lazy_config(yaml_file, ["SOLVER.GRAD_ACCUM_STEPS", "2"])
    with pytest.raises(LazyTranslationError, match=r"MODEL.BACKBONE.NAME='build_res2net_backbone'"):
        lazy_config(yaml_file, ["MODEL.BACKBONE.NAME", "build_res2net_backbone"])


def test_model_zoo_get_config_is_detectron2s_loader():
    cfg = model_zoo.get_config("lazy/faster_rcnn_r2_50.py")
    assert set(cfg) >= {"model", "dataloader", "optimizer", "lr_multiplier", "train"}
    assert cfg.train.init_checkpoint == "res2net://res2net50_26w_4s"
    assert cfg.model.backbone.bottom_up.depth == 50 and cfg.model.backbone.bottom_up.scale == 4
    with pytest.raises(ValueError, match="YAML config"):
        model_zoo.get_config("faster_rcnn_r2_50.yaml")
