"""The saliency task in the torchvision engine's registry: loaders, accumulation, evaluator."""
import pytest
import torch

from res2net_det.data.catalog import DatasetCatalog
from res2net_det.engines.torchvision.registry import get_task
from res2net_det.engines.torchvision.trainer import TaskLoopTrainer
from tests.helpers import tiny_sod_cfg, write_pair


@pytest.fixture
def cfg(tmp_path):
    for i in range(3):
        write_pair(tmp_path / "Image", tmp_path / "Mask", f"im{i}", size=(30 + i, 40), seed=i)
    cfg = tiny_sod_cfg()
    cfg.MODEL.META_ARCHITECTURE = "PoolNetSaliency"
    cfg.DATASETS.SALIENCY_FOLDERS = [["sod_engine_tiny", str(tmp_path / "Image"), str(tmp_path / "Mask")]]
    cfg.DATASETS.TRAIN = ("sod_engine_tiny",)
    cfg.DATASETS.TEST = ("sod_engine_tiny",)
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.INPUT.SALIENCY.RESIZE = [16, 16]
    cfg.OUTPUT_DIR = str(tmp_path / "out")
    yield cfg
    DatasetCatalog.remove("sod_engine_tiny")


def test_task_is_found_by_meta_architecture(cfg):
    task = get_task("PoolNetSaliency")
    assert task.build_model is not None and task.name == "PoolNetSaliency"


def test_loaders_from_config(cfg):
    task = get_task("PoolNetSaliency")
    cfg.SOLVER.IMS_PER_BATCH = 4
    cfg.SOLVER.GRAD_ACCUM_STEPS = 2  # micro-batches of 2
    batch = next(iter(task.build_train_loader(cfg)))
    assert len(batch) == 2 and all(b["image"].shape == (3, 16, 16) and "sem_seg" in b for b in batch)
    test = list(task.build_test_loader(cfg, "sod_engine_tiny"))
    assert [len(b) for b in test] == [1, 1, 1]
    assert [b[0]["image_id"] for b in test] == ["im0", "im1", "im2"]
    assert all("sem_seg" not in b[0] for b in test)


def test_generic_trainer_trains_and_evaluates(cfg):
    cfg.SOLVER.OPTIMIZER = "Adam"
    cfg.SOLVER.BASE_LR = 1e-3
    cfg.INPUT.SALIENCY.RESIZE = [32, 32]  # trainable BN needs > 1 value per channel at res5
    cfg.SOLVER.IMS_PER_BATCH = 4
    cfg.SOLVER.GRAD_ACCUM_STEPS = 2
    cfg.SOLVER.MAX_ITER = 2
    cfg.SOLVER.STEPS = ()
    cfg.SOLVER.WARMUP_ITERS = 0
    cfg.SOLVER.CHECKPOINT_PERIOD = 0
    cfg.SEED = 0
    results = TaskLoopTrainer(cfg, get_task("PoolNetSaliency")).train()
    assert set(results["saliency"]) >= {"MAE", "maxF", "Sm", "maxE", "wF"}
    assert 0 <= results["saliency"]["MAE"] <= 1


def test_model_weights_accepts_a_plain_res2net_checkpoint(cfg, tmp_path):
    """MODEL.WEIGHTS may be an ImageNet Res2Net file: it goes into the saliency model's backbone."""
    from res2net_det.engines.torchvision.checkpoint import load_model_weights

    source = get_task("PoolNetSaliency").build_model(cfg)
    torch.save(source.backbone.state_dict(), tmp_path / "res2net.pth")
    target = get_task("PoolNetSaliency").build_model(cfg)
    load_model_weights(target, str(tmp_path / "res2net.pth"))
    assert torch.equal(target.backbone.conv1.weight, source.backbone.conv1.weight)
    assert torch.equal(target.backbone.layer4[0].conv3.weight, source.backbone.layer4[0].conv3.weight)
    assert not torch.equal(target.score.weight, source.score.weight)  # the decoder starts fresh
