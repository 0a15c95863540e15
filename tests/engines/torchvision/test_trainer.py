"""The generic trainer on a toy regression task: schedule, checkpoints, resume, NaN stop, metrics."""
import json
import os

import pytest
import torch
from torch import nn

from res2net_det.config import get_cfg
from res2net_det.config.solver import lr_factor_at
from res2net_det.engines.torchvision.checkpoint import Checkpointer
from res2net_det.engines.torchvision.registry import Task, get_task, register_task
from res2net_det.engines.torchvision.trainer import TaskLoopTrainer
from res2net_det.modeling.weights import CheckpointError


class ToyModel(nn.Module):
    def __init__(self, nan_at_call=None):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.calls = 0
        self.nan_at_call = nan_at_call

    def forward(self, batch):
        x = torch.stack([b["x"] for b in batch])
        pred = self.linear(x).squeeze(1)
        if not self.training:
            return [{"pred": p} for p in pred]
        self.calls += 1
        loss = ((pred - torch.stack([b["y"] for b in batch])) ** 2).mean()
        if self.nan_at_call is not None and self.calls >= self.nan_at_call:
            loss = loss * float("nan")
        return {"loss_mse": loss, "loss_zero": loss * 0}


class MSEEvaluator:
    def reset(self):
        self.errors = []

    def process(self, inputs, outputs):
        self.errors += [float((o["pred"] - i["y"]) ** 2) for i, o in zip(inputs, outputs)]

    def evaluate(self):
        return {"regression": {"mse": sum(self.errors) / len(self.errors)}}


def _data(n=16):
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(n, 2, generator=g)
    return [{"x": x, "y": x[0] * 2 - x[1]} for x in xs]


def _loader(cfg):
    return torch.utils.data.DataLoader(_data(), batch_size=4, shuffle=True, collate_fn=list)


register_task(Task("_Toy", build_model=lambda cfg: ToyModel(), build_train_loader=_loader,
                   build_test_loader=lambda cfg, name: [[d] for d in _data(4)],
                   build_evaluator=lambda cfg, name, out: MSEEvaluator()))


def _cfg(tmp_path, **solver):
    cfg = get_cfg()
    cfg.MODEL.META_ARCHITECTURE = "_Toy"
    cfg.MODEL.DEVICE = "cpu"
    cfg.OUTPUT_DIR = str(tmp_path)
    cfg.DATASETS.TEST = ("toy",)
    cfg.SOLVER.IMS_PER_BATCH = 4
    cfg.SOLVER.BASE_LR = 0.05
    cfg.SOLVER.WARMUP_ITERS = 2
    cfg.SOLVER.STEPS = (6,)
    cfg.SOLVER.MAX_ITER = 8
    cfg.SOLVER.CHECKPOINT_PERIOD = 3
    cfg.SOLVER.LOG_PERIOD = 1
    cfg.TEST.EVAL_PERIOD = 4
    for k, v in solver.items():
        setattr(cfg.SOLVER, k, v)
    return cfg


def _lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_lr_schedule_is_detectron2s():
    cfg = get_cfg()
    cfg.SOLVER.WARMUP_ITERS, cfg.SOLVER.WARMUP_FACTOR, cfg.SOLVER.STEPS, cfg.SOLVER.GAMMA = 10, 0.001, (20, 30), 0.1
    assert lr_factor_at(cfg, 0) == pytest.approx(0.001)
    assert lr_factor_at(cfg, 5) == pytest.approx(0.001 * 0.5 + 0.5)
    assert lr_factor_at(cfg, 10) == 1.0
    assert lr_factor_at(cfg, 20) == pytest.approx(0.1)
    assert lr_factor_at(cfg, 35) == pytest.approx(0.01)


def test_training_writes_checkpoints_metrics_and_evaluates(tmp_path):
    cfg = _cfg(tmp_path)
    trainer = TaskLoopTrainer(cfg, get_task("_Toy"))
    trainer.resume_or_load(resume=False)
    results = trainer.train()
    assert "mse" in results["regression"]
    files = sorted(os.listdir(tmp_path))
    assert {"model_0000002.pth", "model_0000005.pth", "model_final.pth", "last_checkpoint",
            "metrics.json"} <= set(files)
    assert not [f for f in files if ".tmp" in f]
    assert open(tmp_path / "last_checkpoint").read() == "model_final.pth"
    lines = _lines(tmp_path / "metrics.json")
    train_lines = [entry for entry in lines if "total_loss" in entry]
    assert [entry["iteration"] for entry in train_lines] == list(range(8))
    assert train_lines[7]["lr"] == pytest.approx(0.05 * 0.1)  # after STEPS (6,)
    assert train_lines[0]["lr"] == pytest.approx(0.05 * 0.001)  # warm-up
    eval_lines = [entry for entry in lines if "regression/mse" in entry]
    assert [entry["iteration"] for entry in eval_lines] == [3, 7]
    assert any(f.startswith("events.out.tfevents") for f in files)


def test_resume_continues_after_the_last_checkpoint(tmp_path):
    # an interrupted run: 5 of 8 iterations, checkpoint at iteration 2 (period 3) ...
    cfg = _cfg(tmp_path)
    cfg.SOLVER.MAX_ITER = 5
    first = TaskLoopTrainer(cfg, get_task("_Toy"))
    first.train()
    state_after_2 = torch.load(tmp_path / "model_0000002.pth", weights_only=True)
    os.remove(tmp_path / "model_final.pth")
    (tmp_path / "last_checkpoint").write_text("model_0000002.pth")
    # ... resumed with the full schedule
    cfg = _cfg(tmp_path)
    resumed = TaskLoopTrainer(cfg, get_task("_Toy"))
    resumed.resume_or_load(resume=True)
    assert resumed.start_iter == 3
    assert torch.equal(resumed.model.linear.weight, state_after_2["model"]["linear.weight"])
    assert resumed.scheduler.last_epoch == 3
    assert resumed.optimizer.state_dict()["state"]  # momentum buffers restored
    resumed.train()
    iterations = [entry["iteration"] for entry in _lines(tmp_path / "metrics.json") if "total_loss" in entry]
    # The lines the first run wrote after its checkpoint (3, 4) are dropped, not repeated.
    assert iterations == [0, 1, 2, 3, 4, 5, 6, 7]
    # without --resume the same folder starts again from 0
    fresh = TaskLoopTrainer(cfg, get_task("_Toy"))
    fresh.resume_or_load(resume=False)
    assert fresh.start_iter == 0


def test_nan_loss_stops_naming_the_iteration_and_losses(tmp_path):
    cfg = _cfg(tmp_path)
    trainer = TaskLoopTrainer(cfg, get_task("_Toy"), model=ToyModel(nan_at_call=4))
    with pytest.raises(FloatingPointError, match=r"iteration 3: loss_mse=nan, loss_zero=nan"):
        trainer.train()


def test_gradient_accumulation_counts_micro_batches(tmp_path):
    cfg = _cfg(tmp_path, GRAD_ACCUM_STEPS=2, IMS_PER_BATCH=8, MAX_ITER=2)
    cfg.TEST.EVAL_PERIOD = 0
    model = ToyModel()
    TaskLoopTrainer(cfg, get_task("_Toy"), model=model).train()
    assert model.calls == 4
    cfg = _cfg(tmp_path, GRAD_ACCUM_STEPS=3, IMS_PER_BATCH=8)
    with pytest.raises(ValueError, match="divisible"):
        TaskLoopTrainer(cfg, get_task("_Toy"))


def test_adam_and_unknown_optimizer(tmp_path):
    assert isinstance(TaskLoopTrainer(_cfg(tmp_path, OPTIMIZER="Adam"), get_task("_Toy")).optimizer, torch.optim.Adam)
    with pytest.raises(ValueError, match="SOLVER.OPTIMIZER"):
        TaskLoopTrainer(_cfg(tmp_path, OPTIMIZER="Lion"), get_task("_Toy"))


def test_unknown_meta_architecture():
    with pytest.raises(KeyError, match="NoSuchNet.*GeneralizedRCNN"):
        get_task("NoSuchNet")


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    model = ToyModel()
    ck = Checkpointer(model, str(tmp_path))
    ck.save("model_0000000", iteration=0)

    def crash(obj, f):
        f.write(b"partial")
        raise KeyboardInterrupt
    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        ck.save("model_0000000", iteration=1)
    monkeypatch.undo()
    assert torch.load(tmp_path / "model_0000000.pth", weights_only=True)["iteration"] == 0
    assert not list(tmp_path.glob("*.tmp"))  # an error in-process removes its temporary file
    # A process killed while writing leaves its temporary files; the next run removes them (and
    # nothing else).
    torn = ["model_0000001.pth." + "a" * 32 + ".tmp", "last_checkpoint." + "0" * 32 + ".tmp"]
    for name in torn + ["notes.tmp"]:
        (tmp_path / name).write_bytes(b"partial")
    Checkpointer(model, str(tmp_path))
    assert sorted(p.name for p in tmp_path.glob("*.tmp")) == ["notes.tmp"]


@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step\\(\\)` has been overridden")
def test_non_finite_weights_are_never_checkpointed(tmp_path):
    cfg = _cfg(tmp_path, CHECKPOINT_PERIOD=2)
    cfg.TEST.EVAL_PERIOD = 0
    trainer = TaskLoopTrainer(cfg, get_task("_Toy"))
    real_step = trainer.optimizer.step

    def step_that_blows_up(*args, **kwargs):  # the weights overflow in the step of iteration 5, before its checkpoint
        real_step(*args, **kwargs)
        if trainer.iter == 5:
            with torch.no_grad():
                trainer.model.linear.weight.fill_(float("inf"))
    trainer.optimizer.step = step_that_blows_up
    with pytest.raises(FloatingPointError,
                       match=r"by iteration 5 .*linear.weight.*Last good checkpoint: .*model_0000003.pth"):
        trainer.train()
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000003.pth"
    assert torch.isfinite(torch.load(tmp_path / "model_0000003.pth", weights_only=True)["model"]["linear.weight"]).all()


def test_resume_takes_the_configs_learning_rate(tmp_path, caplog):
    cfg = _cfg(tmp_path, MAX_ITER=4, CHECKPOINT_PERIOD=2, WARMUP_ITERS=0, STEPS=(100,))
    cfg.TEST.EVAL_PERIOD = 0
    first = TaskLoopTrainer(cfg, get_task("_Toy"))
    first.max_iter = 2
    first.train()
    lower = _cfg(tmp_path, MAX_ITER=4, CHECKPOINT_PERIOD=2, WARMUP_ITERS=0, STEPS=(100,), BASE_LR=0.001)
    resumed = TaskLoopTrainer(lower, get_task("_Toy"))
    with caplog.at_level("INFO"):
        resumed.resume_or_load(resume=True)
    assert resumed.start_iter == 2
    assert all(g["lr"] == pytest.approx(0.001) for g in resumed.optimizer.param_groups)
    assert "replaces the checkpoint's learning rates" in caplog.text
    resumed.train()
    lrs = [line["lr"] for line in _lines(tmp_path / "metrics.json") if "lr" in line]
    assert lrs == [pytest.approx(0.05)] * 2 + [pytest.approx(0.001)] * 2


def test_checkpoint_keep_and_a_garbled_last_checkpoint(tmp_path):
    cfg = _cfg(tmp_path, CHECKPOINT_PERIOD=1, CHECKPOINT_KEEP=2)
    cfg.TEST.EVAL_PERIOD = 0
    TaskLoopTrainer(cfg, get_task("_Toy")).train()
    assert sorted(p.name for p in tmp_path.glob("model_*.pth")) == ["model_0000005.pth", "model_0000006.pth",
                                                                    "model_final.pth"]
    (tmp_path / "last_checkpoint").write_bytes(b"\x00\xffgarbage\n")
    with pytest.raises(CheckpointError, match=r"last_checkpoint is garbled"):
        TaskLoopTrainer(cfg, get_task("_Toy")).resume_or_load(resume=True)


def test_resuming_another_architectures_checkpoint_names_the_file(tmp_path):
    cfg = _cfg(tmp_path, MAX_ITER=2)
    cfg.TEST.EVAL_PERIOD = 0
    TaskLoopTrainer(cfg, get_task("_Toy"), model=ToyModel()).train()

    class Wider(ToyModel):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 3)
    with pytest.raises(CheckpointError, match=r"model_final.pth was written by another model.*"
                                              r"linear.weight' has shape \(1, 2\) in the checkpoint but \(3, 2\)"):
        TaskLoopTrainer(cfg, get_task("_Toy"), model=Wider()).resume_or_load(resume=True)


def test_metrics_json_is_strict(tmp_path):
    cfg = _cfg(tmp_path, MAX_ITER=2)
    cfg.TEST.EVAL_PERIOD = 0
    TaskLoopTrainer(cfg, get_task("_Toy")).train()
    text = (tmp_path / "metrics.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    for line in text.splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


def test_the_old_name_still_imports_with_a_warning():
    from res2net_det.engines.torchvision import trainer

    with pytest.warns(DeprecationWarning, match="TaskLoopTrainer"):
        assert trainer.Trainer is TaskLoopTrainer
