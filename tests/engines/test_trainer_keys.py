"""Every documented trainer key means the same on every task and both engines (docs/engines.md).

Each (engine, task) trains its tiny config twice, through the engine's own ``setup`` and
``build_trainer`` (what ``tools/train_net.py`` runs), with two settings of the keys:

=========================  ==============  ==============
key                        run "a"         run "b"
=========================  ==============  ==============
``SOLVER.LOG_PERIOD``      1               2
``SOLVER.OPTIMIZER``       SGD             AdamW
``SOLVER.GRAD_ACCUM_STEPS`` 2 (of 4 images) 1
``TEST.VIS_IMAGES``        2               0
``NUM_THREADS``            1               2
=========================  ==============  ==============

and each test checks one key's effect in both runs. Detectron2 cases skip without Detectron2.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Dict, Iterable, List, Tuple

import pytest
import torch

from res2net_det.config.solver import optimizer_param_groups
from res2net_det.data.shapes_wsol import generate_shapes_wsol
from res2net_det.data.synthetic import generate_shapes_coco
from res2net_det.engines import default_argument_parser, detectron2_available
from tests.helpers import REPO, write_pair

MAX_ITER = 4
IMS_PER_BATCH = 4
SETTINGS = {
    "a": {"SOLVER.LOG_PERIOD": 1, "SOLVER.OPTIMIZER": "SGD", "SOLVER.GRAD_ACCUM_STEPS": 2,
          "TEST.VIS_IMAGES": 2, "NUM_THREADS": 1},
    "b": {"SOLVER.LOG_PERIOD": 2, "SOLVER.OPTIMIZER": "AdamW", "SOLVER.GRAD_ACCUM_STEPS": 1,
          "TEST.VIS_IMAGES": 0, "NUM_THREADS": 2},
}
TASKS = ("detection", "saliency", "classification")
_NO_D2 = pytest.mark.skipif(
    not detectron2_available(),
    reason="Detectron2 is not installed; build it from source (README.md, section Detectron2) to run the "
    "Detectron2 half of these tests",
)
CASES = [pytest.param(engine, task, id=f"{engine}-{task}", marks=[_NO_D2] if engine == "detectron2" else [])
         for engine in ("torchvision", "detectron2") for task in TASKS]


# ---------------------------------------------------------------------------- tiny data and configs
def _task_opts(task: str, root: str) -> Tuple[str, List[str]]:
    """The task's quickstart config made tiny, with data sets declared in the config (the same
    keys reach both engines' catalogs)."""
    if task == "detection":
        splits = generate_shapes_coco(os.path.join(root, "coco"), seed=5, splits={"train": (8, 0), "val": (3, 100)})
        sets = [[f"keys_coco_{s}", json_file, image_root] for s, (json_file, image_root) in splits.items()]
        return "configs/quickstart.yaml", [
            "DATASETS.COCO_INSTANCES", str(sets), "DATASETS.TRAIN", "('keys_coco_train',)",
            "DATASETS.TEST", "('keys_coco_val',)", "INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "96",
            "INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "96", "SOLVER.STEPS", "()",
        ]
    if task == "saliency":
        folders = []
        for split, count in (("train", 8), ("test", 3)):
            image_dir, mask_dir = os.path.join(root, "sod", split, "Image"), os.path.join(root, "sod", split, "Mask")
            for i in range(count):
                write_pair(image_dir, mask_dir, f"{split}{i}", size=(36, 40), seed=i)
            folders.append([f"keys_sod_{split}", image_dir, mask_dir])
        return "configs/sod/quickstart.yaml", [
            "DATASETS.SALIENCY_FOLDERS", str(folders), "DATASETS.TRAIN", "('keys_sod_train',)",
            "DATASETS.TEST", "('keys_sod_test',)", "INPUT.SALIENCY.RESIZE", "[32, 32]", "SOLVER.STEPS", "()",
        ]
    wsol = generate_shapes_wsol(os.path.join(root, "wsol"), num_train=8, num_val=3, image_size=48, seed=5)
    return "configs/cam/quickstart.yaml", [
        "DATASETS.WSOL_SPLITS", str([["keys_wsol_train", wsol, "train"], ["keys_wsol_val", wsol, "val"]]),
        "DATASETS.TRAIN", "('keys_wsol_train',)", "DATASETS.TEST", "('keys_wsol_val',)",
        "INPUT.CLASSIFIER.RESIZE", "(32, 32)",
    ]


class _CountingLoader:
    """Wraps a training data loader and records the size of every batch drawn from it."""

    def __init__(self, loader: Iterable) -> None:
        self.loader = loader
        self.batch_sizes: List[int] = []

    def __getattr__(self, name):  # sampler, batch_size, ...: the wrapped loader's
        return getattr(self.loader, name)

    def __iter__(self):
        for batch in self.loader:
            self.batch_sizes.append(len(batch))
            yield batch


@dataclasses.dataclass
class Run:
    cfg: object
    output_dir: str
    test_set: str
    optimizer: torch.optim.Optimizer
    model: torch.nn.Module
    batch_sizes: List[int]
    threads_after_setup: int

    def training_lines(self) -> List[dict]:
        with open(os.path.join(self.output_dir, "metrics.json"), encoding="utf-8") as f:
            return [line for line in map(json.loads, f) if "total_loss" in line]

    def pictures(self) -> List[str]:
        folder = os.path.join(self.output_dir, "vis", self.test_set)
        return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def _train(engine: str, config_file: str, opts: List[str]) -> Run:
    args = default_argument_parser().parse_args(["--config-file", str(REPO / config_file), *opts])
    torch.set_num_threads(3)  # neither setting: NUM_THREADS must change it (conftest restores it)
    if engine == "torchvision":
        from res2net_det.engines.torchvision.train_net import build_trainer, setup

        cfg = setup(args)
        threads = torch.get_num_threads()
        trainer = build_trainer(cfg)
        counter: Dict[str, _CountingLoader] = {}

        def counting(cfg, build=trainer.task.build_train_loader):
            counter["loader"] = _CountingLoader(build(cfg))
            return counter["loader"]

        trainer.task = dataclasses.replace(trainer.task, build_train_loader=counting)
        trainer.resume_or_load(resume=False)
        trainer.train()
        batch_sizes = counter["loader"].batch_sizes
    else:
        from res2net_det.engines.detectron2.train_net import build_trainer, setup

        cfg = setup(args)
        threads = torch.get_num_threads()
        trainer = build_trainer(cfg)
        loop = trainer._trainer  # Detectron2's SimpleTrainer (or our AccumulatingTrainer) draws the batches
        loop.data_loader = _CountingLoader(loop.data_loader)
        loop._data_loader_iter_obj = None
        trainer.resume_or_load(resume=False)
        trainer.train()
        batch_sizes = loop.data_loader.batch_sizes
    return Run(cfg, cfg.OUTPUT_DIR, cfg.DATASETS.TEST[0], trainer.optimizer, trainer.model, batch_sizes, threads)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Callable[[str, str, str], Run]:
    """``run(engine, task, setting)``: trains once per combination (cached for the module)."""
    data: Dict[str, Tuple[str, List[str]]] = {}
    done: Dict[Tuple[str, str, str], Run] = {}

    def get(engine: str, task: str, setting: str) -> Run:
        key = (engine, task, setting)
        if key not in done:
            if task not in data:
                data[task] = _task_opts(task, str(tmp_path_factory.mktemp(f"data_{task}")))
            config_file, opts = data[task]
            keys = [str(v) for kv in SETTINGS[setting].items() for v in kv]
            out = str(tmp_path_factory.mktemp(f"{engine}_{task}_{setting}"))
            done[key] = _train(engine, config_file, [
                *opts, *keys, "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "SOLVER.MAX_ITER", str(MAX_ITER),
                "SOLVER.IMS_PER_BATCH", str(IMS_PER_BATCH), "SOLVER.WARMUP_ITERS", "0",
                "SOLVER.CHECKPOINT_PERIOD", "0", "TEST.EVAL_PERIOD", "0", "DATALOADER.NUM_WORKERS", "0",
                "SEED", "0", "OUTPUT_DIR", out,
            ])
        return done[key]

    return get


# ---------------------------------------------------------------------------- one test per key
@pytest.mark.parametrize("engine,task", CASES)
def test_log_period_sets_the_lines_of_metrics_json(run, engine, task):
    assert [line["iteration"] for line in run(engine, task, "a").training_lines()] == [0, 1, 2, 3]
    assert [line["iteration"] for line in run(engine, task, "b").training_lines()] == [1, 3]


@pytest.mark.parametrize("engine,task", CASES)
def test_optimizer_names_the_class_over_the_one_group_policy(run, engine, task):
    def groups(param_groups):  # the scheduler has moved "lr" since; "initial_lr" is the group's own
        return sorted((g.get("initial_lr", g["lr"]), g["weight_decay"], sorted(map(id, g["params"])))
                      for g in param_groups)

    sgd, adamw = run(engine, task, "a"), run(engine, task, "b")
    assert isinstance(sgd.optimizer, torch.optim.SGD)
    assert isinstance(adamw.optimizer, torch.optim.AdamW)
    for result in (sgd, adamw):
        model = result.model.module if hasattr(result.model, "module") else result.model
        s = result.cfg.SOLVER
        expected = optimizer_param_groups(model, s.BASE_LR, s.WEIGHT_DECAY, s.WEIGHT_DECAY_NORM, s.BIAS_LR_FACTOR,
                                          s.WEIGHT_DECAY_BIAS)
        assert groups(result.optimizer.param_groups) == groups(expected)


@pytest.mark.parametrize("engine,task", CASES)
def test_grad_accum_steps_draws_micro_batches(run, engine, task):
    # MAX_ITER optimizer steps of IMS_PER_BATCH images: in 2 micro-batches of 2, or 1 batch of 4
    assert run(engine, task, "a").batch_sizes == [IMS_PER_BATCH // 2] * (2 * MAX_ITER)
    assert run(engine, task, "b").batch_sizes == [IMS_PER_BATCH] * MAX_ITER


@pytest.mark.parametrize("engine,task", CASES)
def test_vis_images_draws_that_many_pictures(run, engine, task):
    pictures = run(engine, task, "a").pictures()
    assert len(pictures) == 2 and all(p.endswith(".png") for p in pictures)
    assert run(engine, task, "b").pictures() == []


@pytest.mark.parametrize("engine,task", CASES)
def test_num_threads_sets_torch_threads(run, engine, task):
    assert run(engine, task, "a").threads_after_setup == 1
    assert run(engine, task, "b").threads_after_setup == 2
